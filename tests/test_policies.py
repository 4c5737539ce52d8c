"""Policy resolution (SPEC §4): the most specific active match wins; windows parse strictly."""

from __future__ import annotations

import pytest

from escalations.models import SlaPolicy
from escalations.policies import effective_matrix, resolve_many, resolve_policy
from escalations.windows import WindowError, parse_window


@pytest.fixture
def layered(org):
    return {
        "default": SlaPolicy.objects.create(state="NEW", window="4h"),
        "source": SlaPolicy.objects.create(state="NEW", source=org.paid_social, window="1h"),
        "market": SlaPolicy.objects.create(state="NEW", market=org.india, window="3h"),
        "both": SlaPolicy.objects.create(
            state="NEW", market=org.india, source=org.inbound_web, window="2h"
        ),
    }


@pytest.mark.parametrize(
    ("market", "source", "expected"),
    [
        ("india", "inbound_web", "both"),  # (market, source, state)
        ("india", "paid_social", "market"),  # (market, state) beats (source, state)
        ("de", "paid_social", "source"),
        ("de", "inbound_web", "default"),
    ],
)
def test_most_specific_active_policy_wins(org, layered, market, source, expected):
    resolved = resolve_policy(
        state="NEW", market_id=getattr(org, market).pk, source_id=getattr(org, source).pk
    )
    assert resolved.policy == layered[expected]
    assert resolved.version == layered[expected].version


def test_inactive_policy_falls_back_to_the_next_match(org, layered):
    layered["both"].active = False
    layered["both"].save()
    resolved = resolve_policy(state="NEW", market_id=org.india.pk, source_id=org.inbound_web.pk)
    assert resolved.policy == layered["market"]


def test_no_match_is_no_sla_not_a_crash(org, layered):
    assert resolve_policy(state="PROPOSAL", market_id=org.de.pk, source_id=None) is None


def test_resolving_many_at_once_agrees_with_one_by_one(org, layered):
    keys = [
        (state, m.pk, s.pk)
        for state in ("NEW", "CONTACTED")
        for m in (org.de, org.india)
        for s in (org.paid_social, org.inbound_web)
    ]
    many = resolve_many(keys)
    for state, market_id, source_id in keys:
        one = resolve_policy(state=state, market_id=market_id, source_id=source_id)
        assert many[(state, market_id, source_id)] == one


def test_every_save_bumps_the_version(org, layered):
    policy = layered["default"]
    policy.window = "5h"
    policy.save()
    policy.save()
    assert policy.version == 3
    assert policy.history.count() == 3


def test_two_policies_for_the_same_scope_are_refused(org, layered):
    from django.core.exceptions import ValidationError

    duplicate = SlaPolicy(state="NEW", window="1h")
    with pytest.raises(ValidationError, match="default policy for this state exists"):
        duplicate.full_clean()
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        duplicate.save()


def test_matrix_names_the_policy_that_supplies_each_window(org, layered):
    matrix = effective_matrix(org.india)
    assert matrix[("NEW", "inbound_web")] == layered["both"]
    assert matrix[("NEW", "paid_social")] == layered["market"]
    assert ("CONTACTED", "paid_social") not in matrix


@pytest.mark.parametrize(
    ("text", "unit", "amount"),
    [("90m", "m", 90), ("4h", "h", 4), ("2bd", "bd", 2), (" 10bd ", "bd", 10)],
)
def test_window_syntax(text, unit, amount):
    window = parse_window(text)
    assert (window.unit, window.amount) == (unit, amount)


@pytest.mark.parametrize("text", ["", "90", "1d", "2 days", "0h", "-1h", "1.5h", "bd", "400bd"])
def test_bad_window_is_refused_with_the_syntax(text):
    with pytest.raises(WindowError, match="90m|longer than"):
        parse_window(text)
