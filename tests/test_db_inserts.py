"""A new row's INSERT statement is built once per process (`leadops.db.inserts`): the rows
written are those Django would write, with each row's own values, and anything whose text may
depend on its values (an expression, several rows) goes through Django unchanged."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine
from django.db.models import Value
from django.db.models.functions import Concat, Now
from django.db.models.sql import compiler

from leadops.db import inserts
from leadops.models import Lead, Source
from tests.factories import make_lead

pytestmark = pytest.mark.django_db


def test_the_second_row_of_a_model_reuses_the_first_ones_statement_with_its_own_values(
    monkeypatch,
):
    built = []  # the models whose INSERT Django's compiler built
    django_as_sql = compiler.SQLInsertCompiler.as_sql

    def spy(self):
        built.append(self.query.model)
        return django_as_sql(self)

    monkeypatch.setattr(compiler.SQLInsertCompiler, "as_sql", spy)
    inserts._STATEMENTS.clear()
    first = Source.objects.create(code="web", name="Web form")
    second = Source.objects.create(code="fair", name="Trade fair")
    third = Source.objects.create(code="ads", name="Ads")
    assert built == [Source, Source.history.model]  # once each, for the first row
    assert list(Source.objects.order_by("pk").values_list("pk", "code", "name")) == [
        (first.pk, "web", "Web form"),
        (second.pk, "fair", "Trade fair"),
        (third.pk, "ads", "Ads"),
    ]
    # Each history row has its own values too, and each row its own new primary key.
    assert [h.code for h in Source.history.order_by("history_id")] == ["web", "fair", "ads"]
    assert len({first.pk, second.pk, third.pk}) == 3


def test_a_kept_statement_still_runs_each_rows_pre_save(org):
    with time_machine.travel(datetime(2026, 3, 2, 9, 0, tzinfo=UTC), tick=False):
        make_lead(team=org.berlin_team, source=org.inbound_web)
    with time_machine.travel(datetime(2026, 3, 2, 10, 0, tzinfo=UTC), tick=False):
        later = make_lead(team=org.berlin_team, source=org.inbound_web)
    later.refresh_from_db()
    assert later.updated_at == datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # auto_now, per row


def test_an_expression_value_is_compiled_by_django_not_sent_as_a_parameter():
    Source.objects.create(code="web", name="Web form")  # the plain statement is kept
    fair = Source.objects.create(code="fair", name=Concat(Value("Trade "), Value("fair")))
    fair.refresh_from_db()
    assert fair.name == "Trade fair"
    assert Source.objects.create(code="ads", name="Ads").name == "Ads"


def test_a_database_function_for_a_date_is_evaluated_by_the_database(org):
    lead = make_lead(team=org.berlin_team, source=org.inbound_web)
    before = Lead.objects.get(pk=lead.pk).created_at
    copy = Lead.objects.create(
        name="Copy", market=lead.market, source=lead.source, team=lead.team, created_at=Now()
    )
    copy.refresh_from_db()
    assert copy.created_at >= before


def test_several_rows_at_once_go_through_django_unchanged():
    made = Source.objects.bulk_create([Source(code=f"s{i}", name=f"Source {i}") for i in range(3)])
    assert sorted(Source.objects.values_list("code", flat=True)) == ["s0", "s1", "s2"]
    assert len(made) == 3
