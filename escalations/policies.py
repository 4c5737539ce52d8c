"""Which SLA policy applies to a lead, and the global thresholds (SPEC §4)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q

from escalations.models import SlaPolicy, SlaThresholds
from leadops.models import Source
from teams import reference


@dataclass(frozen=True)
class Resolved:
    policy: SlaPolicy
    version: int


def resolve_policy(*, state: str, market_id: int | None, source_id: int | None) -> Resolved | None:
    """The most specific active policy: (market, source, state) > (market, state) >
    (source, state) > (state). None when nothing matches ("no SLA")."""

    def load() -> Resolved | None:
        candidates = SlaPolicy.objects.filter(
            Q(market_id=market_id) | Q(market__isnull=True),
            Q(source_id=source_id) | Q(source__isnull=True),
            state=state,
            active=True,
        )
        best = max(candidates, key=lambda p: p.specificity, default=None)
        return None if best is None else Resolved(best, best.version)

    return reference.cached(("policy", state, market_id, source_id), load)


def best_match(policies, *, state: str, market_id: int | None, source_id: int | None):
    """The most specific of `policies` (anything with state, market_id, source_id and
    specificity) that applies to a lead in `state` of that market and source, or None. The one
    rule, for the database's active policies and for a draft (the what-if)."""
    matching = [
        p
        for p in policies
        if p.state == state
        and p.market_id in (None, market_id)
        and p.source_id in (None, source_id)
    ]
    return max(matching, key=lambda p: p.specificity, default=None)


def resolve_many(keys) -> dict[tuple, Resolved | None]:
    """`resolve_policy` for many (state, market_id, source_id) keys in one query."""
    keys = set(keys)
    if not keys:
        return {}
    policies = list(SlaPolicy.objects.filter(state__in={k[0] for k in keys}, active=True))
    out = {}
    for state, market_id, source_id in keys:
        best = best_match(policies, state=state, market_id=market_id, source_id=source_id)
        out[(state, market_id, source_id)] = None if best is None else Resolved(best, best.version)
    return out


def resolve_for_lead(lead, state: str | None = None) -> Resolved | None:
    return resolve_policy(
        state=state or lead.state, market_id=lead.market_id, source_id=lead.source_id
    )


def current_thresholds() -> SlaThresholds:
    """The thresholds row, created with the defaults (80/100/150) on first use."""
    return reference.cached(("thresholds",), _thresholds_row)


def _thresholds_row() -> SlaThresholds:
    thresholds = SlaThresholds.objects.filter(pk=1).first()
    if thresholds is None:
        thresholds, _ = SlaThresholds.objects.get_or_create(pk=1)
    return thresholds


def effective_matrix(market) -> dict[tuple[str, str | None], SlaPolicy | None]:
    """For a market: (state, source code) -> the policy that supplies the window (admin matrix)."""
    policies = list(
        SlaPolicy.objects.filter(
            Q(market=market) | Q(market__isnull=True), active=True
        ).select_related("market", "source")
    )
    matrix = {}
    for source in Source.objects.order_by("code"):
        for policy in policies:
            if policy.source_id not in (None, source.pk):
                continue
            key = (policy.state, source.code)
            if key not in matrix or policy.specificity > matrix[key].specificity:
                matrix[key] = policy
    return matrix
