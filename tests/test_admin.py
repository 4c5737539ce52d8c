"""The admin console (SPEC §10): every page renders for each persona, the lead list stays cheap,
team leads see and revert only their team's work, and every state-changing admin path goes
through the domain functions (lifecycle, timers, reassignment)."""

from __future__ import annotations

import csv
import io

import pytest
import time_machine
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Group
from django.db import connection
from django.test.client import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit.models import AuditEvent, AuditKind
from escalations.models import Outcome, Reassignment, SlaPolicy, SlaTimer
from escalations.policies import current_thresholds
from escalations.reassign import find_candidate, reassign_lead
from leadops import lifecycle
from leadops.admin_kit import EstimatedCountPaginator
from leadops.models import Lead
from teams.admin_forms import week_to_text
from teams.models import Rep, TimeOff
from tests.conftest import berlin
from tests.factories import UserFactory, make_lead, ops_manager, team_lead

# Monday 2 March 2026, 10:00 in Berlin (14:30 in Bangalore): both markets are open.
MONDAY_10 = berlin(2026, 3, 2, 10, 0)
OUR_APPS = ("teams", "leadops", "escalations", "audit")


@pytest.fixture
def clock():
    with time_machine.travel(MONDAY_10, tick=False) as traveller:
        yield traveller


@pytest.fixture
def people(org):
    """root (superuser), olga (ops manager), jonas (team lead of Berlin, linked to his rep)."""
    root = UserFactory(username="root", is_superuser=True)
    olga = ops_manager()
    jonas = team_lead(org.jonas, "jonas")
    return {"root": root, "olga": olga, "jonas": jonas}


@pytest.fixture
def leads(org, policies, clock):
    """Berlin: Lena's and Felix's leads; Bangalore: Asha's lead."""
    return {
        "lena": make_lead(
            team=org.berlin_team,
            source=org.paid_social,
            owner=org.lena,
            name="Lukas Schmidt",
            company="Spreeworks",
        ),
        "felix": make_lead(
            team=org.berlin_team,
            source=org.inbound_web,
            owner=org.felix,
            name="Anna Müller",
            company="Havelberg Bau",
        ),
        "asha": make_lead(
            team=org.india_team,
            source=org.paid_social,
            owner=org.asha,
            name="Kavya Reddy",
            company="Zomato",
        ),
    }


@pytest.fixture
def berlin_reassignment(org, leads):
    return reassign_lead(leads["lena"], org.felix, cause="manual", actor=None)


@pytest.fixture
def india_reassignment(org, leads):
    return reassign_lead(leads["asha"], org.rahul, cause="manual", actor=None)


@pytest.fixture
def everything(org, leads, berlin_reassignment, india_reassignment):
    """At least one row of every model, in both teams."""
    lifecycle.record_activity(leads["felix"], "note", actor=org.felix, notes="Left a voicemail")
    lifecycle.record_activity(leads["asha"], "note", actor=org.asha, notes="Asked for a deck")
    TimeOff.objects.create(rep=org.lena, start=berlin(2026, 4, 1), end=berlin(2026, 4, 3))
    TimeOff.objects.create(rep=org.asha, start=berlin(2026, 4, 1), end=berlin(2026, 4, 3))
    return leads


def login(client, user):
    client.force_login(user)
    return client


def admin_url(model, view, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def visible_object(model, user):
    """The first row the user's admin list would show (through the admin's own scoping)."""
    request = RequestFactory().get("/")
    request.user = user
    return admin.site._registry[model].get_queryset(request).order_by("pk").first()


def form_errors(response) -> str:
    context = response.context or {}
    if "adminform" in context:
        return str(context["adminform"].form.errors)
    if "form" in context:
        return str(context["form"].errors)
    return response.content.decode()[:2000]


def post_ok(client, url, data):
    response = client.post(url, data)
    assert response.status_code == 302, form_errors(response)
    return response


# --- every page renders ---------------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["root", "olga", "jonas"])
def test_every_changelist_change_and_history_page_renders_for_each_persona(
    client, people, everything, persona
):
    user = people[persona]
    login(client, user)
    for model in admin.site._registry:
        if model._meta.app_label not in OUR_APPS:
            continue
        response = client.get(admin_url(model, "changelist"))
        assert response.status_code == 200, (persona, model)
        obj = visible_object(model, user)
        assert obj is not None, (persona, model)
        response = client.get(admin_url(model, "change", obj.pk))
        assert response.status_code == 200, (persona, model, obj.pk)
        response = client.get(admin_url(model, "history", obj.pk))
        assert response.status_code == 200, (persona, model, obj.pk)


@pytest.mark.parametrize("persona", ["root", "olga", "jonas"])
def test_lead_action_pages_and_policy_matrix_render_for_each_persona(
    client, people, everything, persona
):
    login(client, people[persona])
    lead = everything["felix"]
    for action in ("transition", "hold", "reassign", "activity"):
        response = client.get(reverse(f"admin:leadops_lead_{action}", args=[lead.pk]))
        assert response.status_code == 200, action
    assert client.get(reverse("admin:escalations_slapolicy_matrix")).status_code == 200


def test_add_pages_render_for_the_ops_manager(client, people, everything):
    login(client, people["olga"])
    for model in (Lead, SlaPolicy, Rep, TimeOff):
        assert client.get(admin_url(model, "add")).status_code == 200, model


# --- the lead list ------------------------------------------------------------------------------


def _make_berlin_leads(org, count, start=0):
    for n in range(start, start + count):
        make_lead(
            team=org.berlin_team,
            source=org.paid_social,
            owner=org.lena if n % 2 else org.felix,
            name=f"Lead {n}",
            company=f"Co {n}",
        )


def test_lead_changelist_query_count_does_not_grow_with_the_number_of_leads(
    client, people, org, policies, clock, django_assert_max_num_queries
):
    login(client, people["olga"])
    url = admin_url(Lead, "changelist")
    _make_berlin_leads(org, 5)
    with CaptureQueriesContext(connection) as five:
        assert client.get(url).status_code == 200
    _make_berlin_leads(org, 45, start=5)
    with CaptureQueriesContext(connection) as fifty:
        response = client.get(url)
    assert response.status_code == 200
    assert response.content.decode().count('class="sla-status') == 50
    assert len(fifty) == len(five)
    with django_assert_max_num_queries(len(five)):
        client.get(url + "?sla=on_track&state__exact=NEW")


def test_lead_changelist_never_counts_the_whole_table(client, people, org, leads):
    login(client, people["olga"])
    with CaptureQueriesContext(connection) as queries:
        assert client.get(admin_url(Lead, "changelist")).status_code == 200
    counts = [q["sql"] for q in queries if "COUNT(" in q["sql"].upper()]
    # Only the capped count: COUNT over a LIMITed subquery, never a bare COUNT(*) of the table.
    assert counts and all("LIMIT" in sql.upper() for sql in counts), counts


@pytest.mark.skipif(connection.vendor != "postgresql", reason="pg_class estimates")
def test_unfiltered_lead_list_uses_the_planner_estimate_on_postgresql(
    client, people, org, leads, monkeypatch
):
    monkeypatch.setattr(EstimatedCountPaginator, "estimate_from", 1)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE leadops_lead")
    login(client, people["olga"])
    with CaptureQueriesContext(connection) as queries:
        response = client.get(admin_url(Lead, "changelist"))
    assert "about 3 leads" in " ".join(response.content.decode().split())
    assert not [q for q in queries if "COUNT(" in q["sql"].upper() and "leadops_lead" in q["sql"]]


def test_lead_list_shows_sla_status_and_time_left(client, people, leads, org, clock):
    login(client, people["olga"])
    html = client.get(admin_url(Lead, "changelist")).content.decode()
    assert "SLA status" in html and "Time left" in html
    assert "on track" in html
    # Lena's paid-social lead: default NEW policy 1h, just created: the whole hour is left.
    assert "breach in 1 h business" in html


def test_sla_status_filter_narrows_the_list(client, people, leads, clock):
    login(client, people["olga"])
    lifecycle.put_on_hold(leads["felix"], actor=people["olga"], reason="customer on vacation")
    html = client.get(admin_url(Lead, "changelist") + "?sla=paused").content.decode()
    assert "Anna Müller" in html and "Lukas Schmidt" not in html
    html = client.get(admin_url(Lead, "changelist") + "?sla=on_track").content.decode()
    assert "Lukas Schmidt" in html and "Anna Müller" not in html


def test_team_lead_sees_only_their_teams_leads(client, people, leads):
    login(client, people["jonas"])
    html = client.get(admin_url(Lead, "changelist")).content.decode()
    assert "Lukas Schmidt" in html and "Anna Müller" in html
    assert "Kavya Reddy" not in html
    for url in (
        admin_url(Lead, "change", leads["asha"].pk),
        admin_url(Lead, "history", leads["asha"].pk),
        reverse("admin:leadops_lead_hold", args=[leads["asha"].pk]),
    ):
        response = client.get(url)
        assert response.status_code == 403, url
        assert "Kavya Reddy" not in response.content.decode(), url


def test_lead_change_page_explains_the_sla_in_market_local_time(client, people, leads, clock):
    login(client, people["olga"])
    html = client.get(admin_url(Lead, "change", leads["lena"].pk)).content.decode()
    policy = leads["lena"].timers.get().policy
    assert "Explain SLA" in html
    assert f"v{policy.version}" in html
    assert "Mon 2026-03-02 10:48 CET" in html  # warning
    assert "Mon 2026-03-02 11:00 CET" in html  # breach
    assert "Mon 2026-03-02 11:30 CET" in html  # reassignment at 150 %
    assert "Escalation timeline" in html and "Ownership and state history" in html


def test_lead_without_matching_policy_shows_no_sla(client, people, org, policies, clock):
    policies["CONTACTED"].active = False
    policies["CONTACTED"].save()
    lead = make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena)
    lifecycle.record_activity(lead, "call", actor=org.lena)
    login(client, people["olga"])
    html = client.get(admin_url(Lead, "change", lead.pk)).content.decode()
    assert "no SLA" in html and "no active SLA policy matches CONTACTED" in html


# --- lead actions go through the lifecycle ------------------------------------------------------


def test_state_change_from_the_admin_goes_through_the_lifecycle(client, people, leads, clock):
    login(client, people["jonas"])
    lead = leads["lena"]
    url = reverse("admin:leadops_lead_transition", args=[lead.pk])
    response = client.post(url, {"to_state": "UNQUALIFIED", "reason": ""})
    assert response.status_code == 200
    assert "a disqualification needs a reason" in response.content.decode()
    post_ok(client, url, {"to_state": "UNQUALIFIED", "reason": "student project"})
    lead.refresh_from_db()
    assert lead.state == "UNQUALIFIED"
    assert lead.timers.get().outcome == Outcome.MET
    assert AuditEvent.objects.filter(lead_id=lead.pk, kind=AuditKind.PROGRESS_RECORDED).exists()


def test_illegal_transition_is_not_offered_and_a_forged_one_is_refused(
    client, people, leads, clock
):
    login(client, people["olga"])
    url = reverse("admin:leadops_lead_transition", args=[leads["lena"].pk])
    html = client.get(url).content.decode()
    assert 'value="CONTACTED"' in html and 'value="PROPOSAL"' not in html
    response = client.post(url, {"to_state": "PROPOSAL"})
    assert response.status_code == 200
    leads["lena"].refresh_from_db()
    assert leads["lena"].state == "NEW"


def test_hold_and_resume_from_the_admin_pause_and_restart_the_clock(client, people, leads, clock):
    login(client, people["olga"])
    lead = leads["felix"]
    post_ok(
        client,
        reverse("admin:leadops_lead_hold", args=[lead.pk]),
        {"reason": "waiting for the budget", "resume_at": "2026-03-04T09:00"},
    )
    lead.refresh_from_db()
    timer = lead.timers.get(completed_at__isnull=True)
    assert lead.on_hold and timer.paused_at is not None
    assert timer.resume_at == berlin(2026, 3, 4, 9, 0)  # read in the market's zone
    clock.shift(3600)
    post_ok(client, reverse("admin:leadops_lead_resume", args=[lead.pk]), {"reason": "budget ok"})
    lead.refresh_from_db()
    assert not lead.on_hold
    kinds = set(AuditEvent.objects.filter(lead_id=lead.pk).values_list("kind", flat=True))
    assert {AuditKind.SLA_PAUSED, AuditKind.SLA_RESUMED} <= kinds


def test_manual_reassign_from_the_lead_page_records_a_reassignment(
    client, people, org, leads, clock
):
    login(client, people["jonas"])
    lead = leads["lena"]
    post_ok(
        client, reverse("admin:leadops_lead_reassign", args=[lead.pk]), {"to_rep": org.felix.pk}
    )
    lead.refresh_from_db()
    assert lead.owner == org.felix
    reassignment = Reassignment.objects.get(lead=lead)
    assert reassignment.cause == "manual" and reassignment.actor_user == people["jonas"]
    # A rep of another team is not even a choice.
    response = client.post(
        reverse("admin:leadops_lead_reassign", args=[lead.pk]), {"to_rep": org.asha.pk}
    )
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()


def test_logging_the_owners_call_moves_a_new_lead_to_contacted(client, people, org, leads, clock):
    lena_user = UserFactory(username="lena")
    org.lena.user = lena_user
    org.lena.save()
    lena_user.groups.add(Group.objects.get(name="Ops managers"))
    login(client, lena_user)
    lead = leads["lena"]
    post_ok(
        client,
        reverse("admin:leadops_lead_activity", args=[lead.pk]),
        {"kind": "call", "notes": "Intro call", "reason": "", "occurred_at": ""},
    )
    lead.refresh_from_db()
    assert lead.state == "CONTACTED"
    assert lead.activities.get().counted_as_progress


def test_adding_a_lead_in_the_admin_goes_through_create_lead(client, people, org, policies, clock):
    login(client, people["olga"])
    post_ok(
        client,
        admin_url(Lead, "add"),
        {
            "name": "Paul Fischer",
            "company": "Nordlicht",
            "email": "",
            "phone": "",
            "external_id": "crm-77",
            "market": org.de.pk,
            "source": org.paid_social.pk,
            "team": org.berlin_team.pk,
            "owner": "",
        },
    )
    lead = Lead.objects.get(external_id="crm-77")
    assert lead.owner is not None and lead.owner.team == org.berlin_team  # routed
    assert lead.timers.filter(completed_at__isnull=True).exists()
    # A team of another market is refused by the lifecycle, shown on the form.
    response = client.post(
        admin_url(Lead, "add"),
        {
            "name": "Wrong Market",
            "company": "",
            "email": "",
            "phone": "",
            "external_id": "",
            "market": org.de.pk,
            "source": org.paid_social.pk,
            "team": org.india_team.pk,
            "owner": "",
        },
    )
    assert response.status_code == 200
    assert "belongs to market IN" in form_errors(response)
    assert not Lead.objects.filter(name="Wrong Market").exists()


def test_editing_a_lead_changes_contact_fields_only(client, people, org, leads, clock):
    login(client, people["olga"])
    lead = leads["lena"]
    post_ok(
        client,
        admin_url(Lead, "change", lead.pk),
        {
            "name": "Lukas Schmidt",
            "company": "Spreeworks GmbH",
            "email": "l@example.com",
            "phone": "",
            "state": "WON",
            "owner": org.asha.pk,
        },
    )
    lead.refresh_from_db()
    assert lead.company == "Spreeworks GmbH"
    assert lead.state == "NEW" and lead.owner == org.lena


# --- reassignments and revert ---------------------------------------------------------------------


def test_revert_through_the_admin_restores_the_owner_and_is_audited(
    client, people, org, berlin_reassignment, clock
):
    login(client, people["jonas"])
    change = client.get(admin_url(Reassignment, "change", berlin_reassignment.pk))
    revert_url = reverse("admin:escalations_reassignment_revert", args=[berlin_reassignment.pk])
    assert revert_url in change.content.decode()
    response = client.post(revert_url, {"reason": ""})
    assert response.status_code == 200  # a reason is required
    post_ok(client, revert_url, {"reason": "Lena knows this customer"})
    berlin_reassignment.refresh_from_db()
    assert berlin_reassignment.is_reverted
    assert berlin_reassignment.revert_reason == "Lena knows this customer"
    assert berlin_reassignment.reverted_by == people["jonas"]
    assert Lead.objects.get(pk=berlin_reassignment.lead_id).owner == org.lena
    event = AuditEvent.objects.get(kind=AuditKind.REASSIGNMENT_REVERTED)
    assert event.lead_id == berlin_reassignment.lead_id and event.actor_name == "Jonas Becker"
    # A second revert is refused by the domain and explained.
    response = client.get(revert_url, follow=True)
    assert "Already reverted" in response.content.decode()


def test_revert_action_on_the_list_asks_for_a_reason_then_reverts(
    client, people, org, berlin_reassignment, india_reassignment, clock
):
    login(client, people["olga"])
    url = admin_url(Reassignment, "changelist")
    data = {
        "action": "revert_selected",
        ACTION_CHECKBOX_NAME: [berlin_reassignment.pk, india_reassignment.pk],
    }
    response = client.post(url, data)
    assert response.status_code == 200 and "Revert reassignments" in response.content.decode()
    post_ok(client, url, {**data, "post": "yes", "reason": "routing misfire"})
    assert Reassignment.objects.filter(reverted_at__isnull=False).count() == 2
    assert Lead.objects.get(pk=india_reassignment.lead_id).owner == org.asha


def test_revert_shows_the_domains_refusal(client, people, org, leads, berlin_reassignment, clock):
    lifecycle.transition(leads["lena"], "LOST", actor=None, reason="went silent")
    login(client, people["olga"])
    url = reverse("admin:escalations_reassignment_revert", args=[berlin_reassignment.pk])
    response = client.post(url, {"reason": "misfire"})
    assert response.status_code == 200
    assert "there is nothing to give back" in response.content.decode()
    berlin_reassignment.refresh_from_db()
    assert not berlin_reassignment.is_reverted


def test_team_lead_cannot_revert_another_teams_reassignment(
    client, people, org, berlin_reassignment, india_reassignment, clock
):
    login(client, people["jonas"])
    html = client.get(admin_url(Reassignment, "changelist")).content.decode()
    assert "Kavya Reddy" not in html and "Lukas Schmidt" in html
    # No page, no button, no form for it ...
    response = client.get(admin_url(Reassignment, "change", india_reassignment.pk))
    assert response.status_code == 403
    assert "belongs to India inside sales; you lead Berlin sales" in response.content.decode()
    revert_url = reverse("admin:escalations_reassignment_revert", args=[india_reassignment.pk])
    assert client.get(revert_url).status_code == 403
    # ... and forged POSTs change nothing.
    assert client.post(revert_url, {"reason": "mine now"}).status_code == 403
    client.post(
        admin_url(Reassignment, "changelist"),
        {
            "action": "revert_selected",
            ACTION_CHECKBOX_NAME: [india_reassignment.pk],
            "post": "yes",
            "reason": "mine now",
        },
    )
    india_reassignment.refresh_from_db()
    assert not india_reassignment.is_reverted
    assert Lead.objects.get(pk=india_reassignment.lead_id).owner == org.rahul
    assert not AuditEvent.objects.filter(kind=AuditKind.REASSIGNMENT_REVERTED).exists()


def test_revert_action_is_not_offered_to_a_user_who_leads_no_team(client, org, berlin_reassignment):
    outsider = UserFactory(username="outsider")
    outsider.groups.add(Group.objects.get(name="Team leads"))  # in the group, but no rep
    login(client, outsider)
    response = client.get(admin_url(Reassignment, "changelist"))
    assert response.status_code == 200
    assert "revert_selected" not in response.content.decode()
    assert "Lukas Schmidt" not in response.content.decode()


def test_reassignment_page_shows_the_candidates_as_a_table(client, people, org, leads, clock):
    search = find_candidate(leads["lena"], MONDAY_10.astimezone(), lock=False)
    reassignment = reassign_lead(
        leads["lena"], search.chosen, cause="sla", actor=None, search=search
    )
    login(client, people["olga"])
    html = client.get(admin_url(Reassignment, "change", reassignment.pk)).content.decode()
    assert '<table class="candidates">' in html
    assert "passed over: team manager" in html and "passed over: current owner" in html


# --- policies, thresholds, timers ---------------------------------------------------------------


def _policy_data(policy, **changes):
    data = {
        "state": policy.state,
        "market": policy.market_id or "",
        "source": policy.source_id or "",
        "window": policy.window,
        "clock": policy.clock,
        "change_reason": "",
    }
    if policy.active:
        data["active"] = "on"
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_policy_change_without_a_reason_is_refused(client, people, policies):
    login(client, people["olga"])
    policy = policies["NEW"]
    url = admin_url(SlaPolicy, "change", policy.pk)
    response = client.post(url, _policy_data(policy, window="2h"))
    assert response.status_code == 200
    assert "change_reason" in form_errors(response)
    policy.refresh_from_db()
    assert policy.window == "1h" and policy.version == 1
    post_ok(client, url, _policy_data(policy, window="2h", change_reason="too tight for SMB"))
    policy.refresh_from_db()
    assert policy.window == "2h" and policy.version == 2
    record = policy.history.latest("history_id")
    assert record.history_change_reason == "too tight for SMB"
    assert record.history_user == people["olga"]
    history = client.get(admin_url(SlaPolicy, "history", policy.pk)).content.decode()
    assert "too tight for SMB" in history and "1h" in history and "2h" in history


def test_policy_window_error_is_shown_on_the_form(client, people, policies):
    login(client, people["olga"])
    policy = policies["NEW"]
    response = client.post(
        admin_url(SlaPolicy, "change", policy.pk),
        _policy_data(policy, window="2 days", change_reason="try"),
    )
    assert response.status_code == 200
    assert "is not a window" in form_errors(response)


def test_deactivating_a_policy_from_the_admin_cancels_its_open_timers(
    client, people, org, policies, leads, clock
):
    login(client, people["olga"])
    policy = policies["NEW"]  # Lena's and Asha's paid-social leads run on it
    running = list(SlaTimer.objects.filter(policy=policy, completed_at__isnull=True))
    assert len(running) == 2
    data = _policy_data(policy, change_reason="replaced by per-market policies")
    del data["active"]
    response = post_ok(client, admin_url(SlaPolicy, "change", policy.pk), data)
    assert response.status_code == 302
    for timer in running:
        timer.refresh_from_db()
        assert timer.outcome == Outcome.CANCELLED and timer.completed_at is not None
    assert AuditEvent.objects.filter(kind=AuditKind.SLA_CANCELLED).count() == 2
    # Anna's inbound-web timer runs on another policy and is untouched.
    assert SlaTimer.objects.get(lead=leads["felix"]).completed_at is None
    messages = [str(m) for m in response.wsgi_request._messages]
    assert any("2 open timer(s) cancelled" in m for m in messages)


def test_thresholds_are_editable_with_a_reason_but_not_added_or_deleted(client, people, db):
    thresholds = current_thresholds()
    login(client, people["olga"])
    assert client.get(reverse("admin:escalations_slathresholds_add")).status_code == 403
    url = reverse("admin:escalations_slathresholds_change", args=[thresholds.pk])
    response = client.post(url, {"warn_percent": 70, "reassign_percent": 200})
    assert response.status_code == 200 and "change_reason" in form_errors(response)
    post_ok(
        client, url, {"warn_percent": 70, "reassign_percent": 200, "change_reason": "warn earlier"}
    )
    thresholds.refresh_from_db()
    assert thresholds.warn_percent == 70
    assert thresholds.history.latest("history_id").history_change_reason == "warn earlier"
    response = client.post(
        url, {"warn_percent": 100, "reassign_percent": 200, "change_reason": "x"}
    )
    assert "strictly between 0 and 100" in form_errors(response)


def test_replan_action_moves_open_timers_to_the_current_policy_version(
    client, people, policies, leads, clock
):
    policy = policies["NEW"]
    policy.window = "2h"
    policy.save()
    timer = SlaTimer.objects.get(lead=leads["lena"])
    assert timer.policy_version == 1
    login(client, people["olga"])
    url = admin_url(SlaTimer, "changelist")
    data = {"action": "replan", ACTION_CHECKBOX_NAME: [timer.pk]}
    assert "Re-plan SLA timers" in client.post(url, data).content.decode()
    post_ok(client, url, {**data, "post": "yes", "reason": "apply the 2h window"})
    timer.refresh_from_db()
    assert timer.policy_version == 2 and timer.window == "2h"
    assert timer.due_at == berlin(2026, 3, 2, 12, 0)
    assert AuditEvent.objects.filter(kind=AuditKind.SLA_REPLANNED, timer_id=timer.pk).exists()


def test_timers_are_read_only_and_team_leads_get_no_replan_action(client, people, leads):
    login(client, people["jonas"])
    html = client.get(admin_url(SlaTimer, "changelist")).content.decode()
    assert 'value="replan"' not in html
    assert "Kavya Reddy" not in html
    timer = SlaTimer.objects.filter(lead=leads["lena"]).first()
    assert client.post(admin_url(SlaTimer, "change", timer.pk), {}).status_code == 403


def test_policy_matrix_shows_the_effective_window_and_the_supplying_policy(
    client, people, org, policies
):
    berlin_inbound = SlaPolicy.objects.create(
        state="NEW", market=org.de, source=org.inbound_web, window="30m"
    )
    login(client, people["jonas"])
    html = client.get(reverse("admin:escalations_slapolicy_matrix") + "?market=DE")
    html = html.content.decode()
    assert (
        reverse("admin:escalations_slapolicy_matrix")
        in client.get(admin_url(SlaPolicy, "changelist")).content.decode()
    )
    assert admin_url(SlaPolicy, "change", berlin_inbound.pk) in html
    assert "30m" in html and "market + source" in html
    assert admin_url(SlaPolicy, "change", policies["NEW"].pk) in html  # NEW × paid social
    assert admin_url(SlaPolicy, "change", policies["PROPOSAL"].pk) in html
    assert "no SLA" in html  # NEGOTIATION has no policy
    # A team lead's matrix offers only their teams' markets: asking for India shows Germany.
    india = client.get(reverse("admin:escalations_slapolicy_matrix") + "?market=IN")
    assert "Effective SLA matrix for Germany (DE)" in india.content.decode()
    login(client, people["olga"])
    india = client.get(reverse("admin:escalations_slapolicy_matrix") + "?market=IN")
    india = india.content.decode()
    assert admin_url(SlaPolicy, "change", berlin_inbound.pk) not in india
    assert admin_url(SlaPolicy, "change", policies["NEW/inbound_web"].pk) in india


# --- markets and reps ---------------------------------------------------------------------------


def _market_data(market, **changes):
    data = {
        "code": market.code,
        "name": market.name,
        "timezone": market.timezone,
        "holiday_country": market.holiday_country,
        "holiday_subdivision": market.holiday_subdivision,
        "closed_dates": "\n".join(market.extra_closed_dates or []),
        "open_dates": "",
        "change_reason": "",
    }
    data.update({f"hours_{day}": text for day, text in week_to_text(market.hours).items()})
    data.update(changes)
    return data


def test_editing_market_hours_replans_its_open_timers(client, people, org, leads, clock):
    login(client, people["olga"])
    timer = SlaTimer.objects.get(lead=leads["lena"])
    india_timer = SlaTimer.objects.get(lead=leads["asha"])
    india_due = india_timer.due_at
    assert timer.due_at == berlin(2026, 3, 2, 11, 0)
    response = post_ok(
        client,
        admin_url(type(org.de), "change", org.de.pk),
        _market_data(
            org.de,
            hours_mon="09:00-10:30, 11:00-18:00",
            change_reason="team meeting at 10:30",
        ),
    )
    timer.refresh_from_db()
    india_timer.refresh_from_db()
    assert timer.due_at == berlin(2026, 3, 2, 11, 30)
    assert india_timer.due_at == india_due
    assert AuditEvent.objects.filter(kind=AuditKind.SLA_REPLANNED, timer_id=timer.pk).exists()
    org.de.refresh_from_db()
    assert org.de.hours["mon"] == ["09:00-10:30", "11:00-18:00"]
    # (ordered by id: the org was created before the clock was frozen in the past)
    assert org.de.history.latest("history_id").history_change_reason == "team meeting at 10:30"
    messages = [str(m) for m in response.wsgi_request._messages]
    assert any("2 open SLA timer(s) re-planned" in m for m in messages)


def test_market_form_names_the_day_and_interval_at_fault(client, people, org):
    login(client, people["olga"])
    url = admin_url(type(org.de), "change", org.de.pk)
    response = client.post(url, _market_data(org.de, hours_tue="18:00-09:00"))
    assert response.status_code == 200
    errors = form_errors(response)
    assert "Tuesday" in errors and "18:00-09:00" in errors
    response = client.post(
        url,
        _market_data(
            org.de, hours_wed="09:00-13:00, 12:00-18:00", closed_dates="2026-12-31\n2026-13-01"
        ),
    )
    errors = form_errors(response)
    assert "Wednesday" in errors and "overlap" in errors and "Line 2" in errors
    closed = {f"hours_{d}": "" for d in ("mon", "tue", "wed", "thu", "fri")}
    errors = form_errors(client.post(url, _market_data(org.de, **closed)))
    assert "At least one day needs opening hours" in errors


def test_market_edit_without_calendar_change_replans_nothing(client, people, org, leads, clock):
    login(client, people["olga"])
    post_ok(
        client,
        admin_url(type(org.de), "change", org.de.pk),
        _market_data(org.de, name="Deutschland"),
    )
    assert not AuditEvent.objects.filter(kind=AuditKind.SLA_REPLANNED).exists()


def _rep_data(rep, **changes):
    data = {
        "name": rep.name,
        "email": rep.email,
        "user": rep.user_id or "",
        "team": rep.team_id,
        "role": rep.role,
        "slack_user_id": rep.slack_user_id,
        "capacity": rep.capacity,
        "timezone": rep.timezone,
        "change_reason": "",
        **{f"hours_{d}": "" for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
        "time_off-TOTAL_FORMS": 0,
        "time_off-INITIAL_FORMS": 0,
        "time_off-MIN_NUM_FORMS": 0,
        "time_off-MAX_NUM_FORMS": 1000,
    }
    if rep.active:
        data["active"] = "on"
    data.update(changes)
    return data


def test_deactivating_a_rep_hands_over_their_open_leads(client, people, org, leads, clock):
    login(client, people["olga"])
    data = _rep_data(org.lena, change_reason="left the company")
    del data["active"]
    response = post_ok(client, admin_url(Rep, "change", org.lena.pk), data)
    org.lena.refresh_from_db()
    assert not org.lena.active
    lead = Lead.objects.get(pk=leads["lena"].pk)
    assert lead.owner in (org.felix, org.jonas)
    reassignment = Reassignment.objects.get(lead=lead)
    assert reassignment.cause == "rep_inactive" and reassignment.from_rep == org.lena
    messages = [str(m) for m in response.wsgi_request._messages]
    assert any("1 open lead(s) handed over" in m for m in messages)


def test_rep_own_hours_are_edited_per_day(client, people, org):
    login(client, people["olga"])
    post_ok(
        client,
        admin_url(Rep, "change", org.felix.pk),
        _rep_data(org.felix, hours_sat="10:00-14:00", change_reason="weekend shift"),
    )
    org.felix.refresh_from_db()
    assert org.felix.hours == {"sat": ["10:00-14:00"]}
    post_ok(client, admin_url(Rep, "change", org.felix.pk), _rep_data(org.felix))
    org.felix.refresh_from_db()
    assert org.felix.hours is None  # every day empty = the market's hours again


def test_history_cannot_be_reverted_through_the_admin(client, people, org, policies):
    policy = policies["NEW"]
    policy.window = "3h"
    policy._change_reason = "test"
    policy.save()
    first = policy.history.order_by("history_id").first()
    login(client, people["jonas"])  # may view policies, not change them
    url = reverse("admin:escalations_slapolicy_simple_history", args=[policy.pk, first.history_id])
    assert client.post(url, {}).status_code == 403
    policy.refresh_from_db()
    assert policy.window == "3h"


# --- audit log ------------------------------------------------------------------------------------


def test_audit_admin_is_read_only_for_everyone(client, people, everything):
    login(client, people["root"])
    event = AuditEvent.objects.first()
    assert client.get(admin_url(AuditEvent, "add")).status_code == 403
    assert (
        client.post(admin_url(AuditEvent, "delete", event.pk), {"post": "yes"}).status_code == 403
    )
    assert (
        client.post(admin_url(AuditEvent, "change", event.pk), {"kind": "sla_met"}).status_code
        == 403
    )
    page = client.get(admin_url(AuditEvent, "change", event.pk)).content.decode()
    assert 'name="_save"' not in page
    changelist = client.get(admin_url(AuditEvent, "changelist")).content.decode()
    assert "delete_selected" not in changelist and "export_csv" in changelist
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def _csv_rows(response):
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(body)))


def test_audit_csv_export_of_the_filtered_list_and_of_selected_rows(client, people, everything):
    login(client, people["olga"])
    rows = _csv_rows(client.get(reverse("admin:audit_auditevent_export")))
    assert len(rows) == AuditEvent.objects.count()
    assert {"Kavya Reddy (Zomato)", "Lukas Schmidt (Spreeworks)"} <= {r["lead_label"] for r in rows}
    filtered = _csv_rows(
        client.get(reverse("admin:audit_auditevent_export") + "?kind__exact=lead_assigned")
    )
    assert filtered and {r["kind"] for r in filtered} == {"lead_assigned"}
    searched = _csv_rows(client.get(reverse("admin:audit_auditevent_export") + "?q=Zomato"))
    assert searched and {r["lead_label"] for r in searched} == {"Kavya Reddy (Zomato)"}
    chosen = list(AuditEvent.objects.order_by("pk").values_list("pk", flat=True)[:2])
    selected = _csv_rows(
        client.post(
            admin_url(AuditEvent, "changelist"),
            {"action": "export_csv", ACTION_CHECKBOX_NAME: chosen},
        )
    )
    assert sorted(int(r["id"]) for r in selected) == chosen


def test_team_lead_sees_and_exports_only_their_teams_audit_events(client, people, everything):
    login(client, people["jonas"])
    rows = _csv_rows(client.get(reverse("admin:audit_auditevent_export")))
    assert rows
    assert {r["team_id"] for r in rows} == {str(everything["lena"].team_id)}
    html = client.get(admin_url(AuditEvent, "changelist")).content.decode()
    assert "Kavya Reddy" not in html


def test_csv_export_defuses_spreadsheet_formulas(client, people, org, policies, clock):
    # Routed (no owner given), so that a `lead_assigned` event carries the label.
    make_lead(
        team=org.berlin_team, source=org.paid_social, name='=HYPERLINK("http://x")', company=""
    )
    login(client, people["olga"])
    rows = _csv_rows(client.get(reverse("admin:audit_auditevent_export")))
    assert all(not r["lead_label"].startswith("=") for r in rows)
    assert any(r["lead_label"].startswith("'=HYPERLINK") for r in rows)
