"""The console at scale (SPEC §10): every large list costs the same number of queries for 20
rows as for 100, for an ops manager and a team lead; the lead list is most urgent first, sorts
only by indexed columns in both directions, reads deep pages by their ids, and its search uses
the indexes on PostgreSQL (`bench admin` measures it at a million leads)."""

from __future__ import annotations

import re

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit.models import AuditEvent
from escalations.models import Notification, Reassignment, SlaTimer
from escalations.reassign import reassign_lead
from leadops import lifecycle
from leadops.admin.leads import search_leads
from leadops.admin_kit import EstimatedCountPaginator
from leadops.models import Activity, Lead
from tests.conftest import berlin
from tests.factories import make_lead, ops_manager, team_lead

MONDAY_10 = berlin(2026, 3, 2, 10, 0)
LARGE_LISTS = [Lead, SlaTimer, Reassignment, Notification, AuditEvent, Activity]


@pytest.fixture
def clock():
    with time_machine.travel(MONDAY_10, tick=False) as traveller:
        yield traveller


@pytest.fixture
def users(org):
    olga = ops_manager()
    jonas = team_lead(org.jonas, "jonas")
    return {"ops manager": olga, "team lead": jonas}


def _grow(org, total: int) -> None:
    """Berlin leads up to `total`, each with a timer, an activity, a reassignment (and so its
    audit rows) and a notification: a row in every large list per lead."""
    have = Lead.objects.count()
    for n in range(have, total):
        lead = make_lead(
            team=org.berlin_team,
            source=org.paid_social,
            owner=org.lena,
            name=f"Lead {n}",
            company=f"Co {n}",
        )
        lifecycle.record_activity(lead, "note", actor=org.lena, notes="Left a voicemail")
        reassign_lead(lead, org.felix, cause="manual", actor=None)
        Notification.objects.create(
            dedupe_key=f"scale:{n}",
            kind="warning",
            persona="owner",
            lead=lead,
            team=org.berlin_team,
            recipient=org.felix,
        )


def _changelist(model) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def _queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


@pytest.mark.parametrize("persona", ["ops manager", "team lead"])
def test_every_large_list_costs_the_same_queries_for_20_and_100_rows(
    client, org, policies, users, clock, persona
):
    client.force_login(users[persona])
    _grow(org, 20)
    urls = [_changelist(model) for model in LARGE_LISTS]
    for url in urls:
        client.get(url)  # content types and other first-request caches
    at_20 = {url: _queries(client, url) for url in urls}
    _grow(org, 100)
    at_100 = {url: _queries(client, url) for url in urls}
    assert at_100 == at_20
    assert max(at_100.values()) <= 12, at_100


def test_lead_page_reads_the_lead_once_with_its_relations(client, org, policies, users, clock):
    client.force_login(users["team lead"])
    _grow(org, 1)
    lead = Lead.objects.get()
    url = reverse("admin:leadops_lead_change", args=[lead.pk])
    client.get(url)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    lead_reads = [q for q in queries if q["sql"].startswith('SELECT "leadops_lead"."id"')]
    assert len(lead_reads) == 1
    assert len(queries) <= 12, "\n".join(q["sql"][:100] for q in queries)


def _names_in_order(html: str) -> list[str]:
    return re.findall(r'<th class="field-name"><a href="[^"]+">([^<]+)</a>', html)


def test_lead_list_is_most_urgent_first_with_no_sla_last(client, org, policies, users, clock):
    client.force_login(users["ops manager"])
    with time_machine.travel(berlin(2026, 3, 2, 9, 0), tick=False):
        early = make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena, name="E")
    lost = make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena, name="Lost")
    lifecycle.transition(lost, "LOST", actor=org.lena)
    with time_machine.travel(berlin(2026, 3, 2, 9, 30), tick=False):
        middle = make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena, name="M")
    # Inbound web: a 2 h window, so its warning comes last although it is the oldest lead.
    with time_machine.travel(berlin(2026, 3, 2, 8, 0), tick=False):
        make_lead(team=org.berlin_team, source=org.inbound_web, owner=org.lena, name="Late")
    html = client.get(_changelist(Lead)).content.decode()
    assert _names_in_order(html) == ["E", "M", "Late", "Lost"]
    assert "column-next_stage" in html and "warning" in html
    early.refresh_from_db()
    middle.refresh_from_db()
    assert early.next_stage_at < middle.next_stage_at


def test_lead_list_sorts_by_next_stage_both_ways_with_the_tie_break_following(
    client, org, policies, users, clock
):
    client.force_login(users["ops manager"])
    _grow(org, 3)
    html = client.get(_changelist(Lead)).content.decode()
    index = re.search(r'column-next_stage">.*?href="\?o=(\d+)"', html, re.S).group(1)
    with CaptureQueriesContext(connection) as queries:
        client.get(_changelist(Lead) + f"?o=-{index}")
    page = next(q["sql"] for q in queries if q["sql"].startswith('SELECT "leadops_lead"."id"'))
    assert re.search(r'"next_stage_at" DESC NULLS FIRST, "leadops_lead"."id" ASC', page), page


def test_only_indexed_columns_of_the_lead_list_are_sortable(client, org, policies, users):
    client.force_login(users["ops manager"])
    _grow(org, 1)
    html = client.get(_changelist(Lead)).content.decode()
    sortable = set(re.findall(r'class="sortable column-(\w+)', html))
    assert sortable == {"name", "next_stage", "created_local"}


def test_deep_pages_read_by_ids_show_the_same_rows_as_plain_paging(
    client, org, policies, users, clock, monkeypatch
):
    client.force_login(users["ops manager"])
    _grow(org, 7)
    url = _changelist(Lead) + "?p=2"
    monkeypatch.setattr("leadops.admin.leads.LeadAdmin.list_per_page", 3)
    plain = _names_in_order(client.get(url).content.decode())
    monkeypatch.setattr(EstimatedCountPaginator, "deferred_from", 0)
    with CaptureQueriesContext(connection) as queries:
        deferred = _names_in_order(client.get(url).content.decode())
    assert deferred == plain and len(plain) == 3
    assert any('"leadops_lead"."id" IN (SELECT' in q["sql"] for q in queries)


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="trigram indexes: PostgreSQL")
@pytest.mark.parametrize(
    "term, index",
    [
        ("lena.hoffmann@EXAMPLE.com", "lead_email_upper"),
        ("crm-42", "leadops_lead_external_id"),
        ("preewor", "lead_name_trgm"),
        ("preewor", "lead_company_trgm"),
    ],
)
def test_lead_search_can_use_its_indexes_on_postgresql(org, policies, term, index):
    make_lead(team=org.berlin_team, source=org.paid_social, name="Spreeworks", company="Spreeworks")
    sql, params = search_leads(Lead.objects.order_by(), term).query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert index in plan, plan
