"""Team-lead scoping of the whole admin (SPEC §10, issue 14 item 1): walk EVERY URL of every
registered ModelAdmin (changelist, add, change, delete, history and its versions, and the custom
pages) logged in as the lead of another team, and check that nothing of that team leaks; the
refusals say why; a team's webhook URL is shown to ops only, never to a team lead."""

from __future__ import annotations

from html import unescape

import pytest
import time_machine
from django.contrib import admin
from django.contrib.auth.models import Group, Permission
from django.test.client import RequestFactory
from django.urls import URLPattern, reverse

from escalations.models import SlaPolicy
from escalations.reassign import reassign_lead
from leadops import lifecycle
from leadops.admin_kit import ScopedAdminMixin
from teams.models import Team, TimeOff
from tests.conftest import berlin
from tests.factories import UserFactory, make_lead, ops_manager, team_lead

MONDAY_10 = berlin(2026, 3, 2, 10, 0)
OUR_APPS = ("teams", "leadops", "escalations", "audit")
BERLIN_WEBHOOK = "https://example.webhook.office.com/berlin-SECRET-b1"
INDIA_WEBHOOK = "https://example.webhook.office.com/india-SECRET-i1"

# What must never reach the lead of the Berlin team: the India team's people, their contact
# details and Slack ids, its leads, its market's zone, and any team's webhook URL.
INDIA_MARKERS = (
    "Asha Rao",
    "Rahul Verma",
    "Vikram Shah",
    "asha@example.com",
    "rahul@example.com",
    "vikram@example.com",
    "UASHA",
    "URAHUL",
    "UVIKRAM",
    "C0IN",
    "Kavya Reddy",
    "Zomato",
    "Asia/Kolkata",
    "Diwali offsite",
    "india-SECRET",
    "berlin-SECRET",
)
# Admins of rows with no team (reference data every team reads alike, or ops-only screens).
UNSCOPED = {"leadops.Source", "escalations.SlaThresholds"}


@pytest.fixture
def world(org, policies):
    """Rows of every model in both teams, with history; Jonas leads Berlin, Root sees all."""
    with time_machine.travel(MONDAY_10, tick=False):
        Team.objects.filter(pk=org.berlin_team.pk).update(teams_webhook_url=BERLIN_WEBHOOK)
        india_team = Team.objects.get(pk=org.india_team.pk)
        india_team.teams_webhook_url = INDIA_WEBHOOK
        india_team._change_reason = "webhook set"
        india_team.save()
        SlaPolicy.objects.create(state="NEW", market=org.india, window="3h")
        SlaPolicy.objects.create(state="NEW", market=org.de, window="4h")
        lena = make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena)
        kavya = make_lead(
            team=org.india_team,
            source=org.paid_social,
            owner=org.asha,
            name="Kavya Reddy",
            company="Zomato",
        )
        reassign_lead(lena, org.felix, cause="manual", actor=None)
        reassign_lead(kavya, org.rahul, cause="manual", actor=None)
        lifecycle.record_activity(kavya, "note", actor=org.rahul, notes="Asked for a deck")
        lifecycle.record_activity(lena, "note", actor=org.felix, notes="Voicemail")
        TimeOff.objects.create(
            rep=org.asha, start=berlin(2026, 4, 1), end=berlin(2026, 4, 3), reason="Diwali offsite"
        )
        TimeOff.objects.create(rep=org.lena, start=berlin(2026, 4, 1), end=berlin(2026, 4, 3))
        org.asha.capacity = 7
        org.asha._change_reason = "capacity"
        org.asha.save()
    root = UserFactory(username="root", is_superuser=True)
    olga = ops_manager()
    jonas = team_lead(org.jonas, "jonas")
    vikram = UserFactory(username="vikram", email="vikram@example.com")
    vikram.groups.add(Group.objects.get(name="Team leads"))
    org.vikram.user = vikram
    org.vikram.save()
    return {"root": root, "olga": olga, "jonas": jonas, "vikram": vikram, "kavya": kavya}


def _request(user):
    request = RequestFactory().get("/")
    request.user = user
    return request


def _objects_out_of_reach(model_admin, root, lead):
    """Rows the superuser sees and the team lead must not: another team's (or, where the lead
    may not view the model at all, any row)."""
    everything = model_admin.get_queryset(_request(root)).order_by("pk")
    lead_request = _request(lead)
    if not model_admin.has_view_or_change_permission(lead_request):
        return list(everything[:1])
    theirs = model_admin.get_queryset(lead_request).values("pk")
    return list(everything.exclude(pk__in=theirs)[:2])


def _object_urls(model_admin, obj) -> list[str]:
    """Every URL of the admin that names one object, filled in for `obj`."""
    urls = []
    for pattern in model_admin.get_urls():
        groups = pattern.pattern.regex.groups
        if not isinstance(pattern, URLPattern) or groups == 0:
            continue
        if pattern.name is None:  # `<pk>/`: the redirect to the change page
            opts = model_admin.model._meta
            changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
            urls.append(f"{changelist}{obj.pk}/")
        elif groups == 1:
            urls.append(reverse(f"admin:{pattern.name}", args=[obj.pk]))
        elif groups == 2:  # simple-history's page of one version
            for version in obj.history.order_by("history_id")[:2]:
                urls.append(reverse(f"admin:{pattern.name}", args=[obj.pk, version.history_id]))
    return urls


def _page_urls(model_admin, other_team, other_market) -> list[str]:
    """The admin's URLs that name no object, plus its list filtered or searched for the other
    team's rows."""
    urls = [
        reverse(f"admin:{p.name}")
        for p in model_admin.get_urls()
        if isinstance(p, URLPattern) and p.name and p.pattern.regex.groups == 0
    ]
    opts = model_admin.model._meta
    changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    for query in (
        f"team_id={other_team.pk}",
        f"team__id__exact={other_team.pk}",
        f"market__id__exact={other_market.pk}",
        f"lead__team__id__exact={other_team.pk}",
        "q=Asha",
        "q=Kavya",
        "_popup=1&_to_field=id",
    ):
        urls.append(f"{changelist}?{query}")
    return urls


def _leaks(html: str) -> list[str]:
    return [marker for marker in INDIA_MARKERS if marker in html]


def test_every_admin_url_of_another_team_is_refused_or_scoped_for_a_team_lead(client, org, world):
    root, jonas = world["root"], world["jonas"]
    client.force_login(jonas)
    failures: list[str] = []
    walked = 0

    def visit(url, *, object_page: bool, change_url: str = ""):
        nonlocal walked
        walked += 1
        for method in ("get", "post"):
            response = getattr(client, method)(url, {} if method == "post" else None)
            body = b"".join(response.streaming_content) if response.streaming else response.content
            html = body.decode(errors="replace")
            leaked = _leaks(html)
            if leaked:
                failures.append(f"{method.upper()} {url} → {response.status_code} shows {leaked}")
            if object_page and response.status_code == 200:
                failures.append(f"{method.upper()} {url} → 200 for another team's object")
            # `<pk>/` redirects to the change page (walked too), Django's "does not exist" to the
            # index; any other redirect could be a save that went through.
            allowed = (change_url, reverse("admin:index"))
            if object_page and response.status_code == 302 and response.url not in allowed:
                failures.append(f"{method.upper()} {url} → redirect to {response.url}")

    for url in (
        reverse("admin:index"),
        *(reverse("admin:app_list", args=[app]) for app in OUR_APPS),
        reverse("admin:autocomplete")
        + "?app_label=leadops&model_name=lead&field_name=owner&term=a",
    ):
        visit(url, object_page=False)

    for model, model_admin in admin.site._registry.items():
        for url in _page_urls(model_admin, org.india_team, org.india):
            visit(url, object_page=False)
        targets = _objects_out_of_reach(model_admin, root, jonas)
        label = model._meta.label
        if model._meta.app_label in OUR_APPS and label not in UNSCOPED and not targets:
            failures.append(f"{label}: every row is in reach (no scoping?)")
            targets = _objects_out_of_reach(model_admin, root, world["vikram"])[:1]
        for obj in targets:
            opts = model._meta
            change_url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
            for url in _object_urls(model_admin, obj):
                visit(url, object_page=True, change_url=change_url)

    assert walked > 150, walked
    assert not failures, "\n".join(failures)


def test_every_admin_of_our_apps_goes_through_the_scoping_mixin():
    """Scoping is not opt-in per admin class: each declares its team (or market) path, or
    says it has none."""
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label not in OUR_APPS:
            continue
        assert isinstance(model_admin, ScopedAdminMixin), model._meta.label
        unscoped = model_admin.team_path is None and model_admin.market_path is None
        assert unscoped == (model._meta.label in UNSCOPED), model._meta.label


def test_refusal_names_the_objects_team_and_the_users_team(client, org, world):
    client.force_login(world["jonas"])
    url = reverse("admin:leadops_lead_change", args=[world["kavya"].pk])
    response = client.get(url)
    assert response.status_code == 403
    html = " ".join(response.content.decode().split())
    assert "This lead belongs to India inside sales; you lead Berlin sales." in html
    client.force_login(world["vikram"])
    response = client.get(reverse("admin:teams_rep_change", args=[org.lena.pk]))
    assert response.status_code == 403
    html = " ".join(response.content.decode().split())
    assert "This rep belongs to Berlin sales; you lead India inside sales." in html
    assert client.get(reverse("admin:teams_rep_change", args=[999999])).status_code == 404


def test_team_lead_sees_own_teams_reps_time_off_and_history(client, org, world):
    client.force_login(world["vikram"])
    html = client.get(reverse("admin:teams_rep_changelist")).content.decode()
    assert "Asha Rao" in html and "Lena Hoffmann" not in html
    html = client.get(reverse("admin:teams_timeoff_changelist")).content.decode()
    assert "Diwali offsite" in html and "Lena Hoffmann" not in html
    response = client.get(reverse("admin:teams_rep_history", args=[org.asha.pk]))
    assert response.status_code == 200 and "capacity" in response.content.decode()
    version = org.asha.history.order_by("history_id").first()
    url = reverse("admin:teams_rep_simple_history", args=[org.asha.pk, version.history_id])
    assert client.get(url).status_code == 200


@pytest.mark.parametrize("persona", ["jonas", "vikram"])
def test_no_team_lead_sees_a_webhook_url_not_even_their_own_teams(client, org, world, persona):
    client.force_login(world[persona])
    own = org.berlin_team if persona == "jonas" else org.india_team
    urls = [
        reverse("admin:teams_team_changelist"),
        reverse("admin:teams_team_change", args=[own.pk]),
        reverse("admin:teams_team_history", args=[own.pk]),
        *(
            reverse("admin:teams_team_simple_history", args=[own.pk, v.history_id])
            for v in own.history.all()
        ),
    ]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        assert "SECRET" not in html, url
        assert own.name in html, url


def test_ops_managers_see_the_webhook_url(client, org, world):
    client.force_login(world["olga"])
    html = client.get(reverse("admin:teams_team_change", args=[org.india_team.pk])).content
    assert INDIA_WEBHOOK in html.decode()
    html = client.get(reverse("admin:teams_team_history", args=[org.india_team.pk])).content
    assert INDIA_WEBHOOK in html.decode()  # the change that set it, in the history diff


# --- issue 11: filters, refusals and "not progress" for team leads ----------------------------

FILTERED_LISTS = (
    "leadops_lead",
    "leadops_activity",
    "teams_team",
    "teams_rep",
    "teams_timeoff",
    "teams_market",
    "escalations_slatimer",
    "escalations_slapolicy",
    "escalations_reassignment",
    "escalations_notification",
    "audit_auditevent",
)


def test_team_lead_filters_list_only_their_markets_and_teams(client, org, world):
    client.force_login(world["jonas"])
    for name in FILTERED_LISTS:
        html = client.get(reverse(f"admin:{name}_changelist")).content.decode()
        assert "India inside sales" not in html, name
        assert "IN · India" not in html and "India (IN)" not in html, name
    html = client.get(reverse("admin:leadops_lead_changelist")).content.decode()
    assert "DE · Germany" in html and "Berlin sales (DE)" in html
    html = client.get(reverse("admin:escalations_slatimer_changelist")).content.decode()
    assert "DE · Germany" in html
    # An ops manager's filters list every market and team.
    client.force_login(world["olga"])
    html = client.get(reverse("admin:leadops_lead_changelist")).content.decode()
    assert "IN · India" in html and "India inside sales (IN)" in html


def test_logging_a_call_on_someone_elses_lead_says_it_is_recorded_but_not_progress(
    client, org, world
):
    lead = make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena)
    client.force_login(world["jonas"])
    response = client.post(
        reverse("admin:leadops_lead_activity", args=[lead.pk]),
        {"kind": "call", "notes": "Tried the customer", "reason": "", "occurred_at": ""},
        follow=True,
    )
    html = unescape(" ".join(response.content.decode().split()))
    assert "it is recorded, but it is not progress" in html
    assert "only Lena Hoffmann's own calls, emails and messages count" in html
    assert "The SLA keeps running: breach in" in html and "business" in html
    lead.refresh_from_db()
    assert lead.state == "NEW"
    assert lead.timers.filter(completed_at__isnull=True).exists()


def test_a_refusal_for_lack_of_permission_says_why_in_the_page(client, org, world):
    """Not a bare "403 Forbidden": the admin's page with the reason."""
    reader = UserFactory(username="reader")
    reader.groups.add(Group.objects.get(name="Integrations"))
    reader.user_permissions.add(*_perms("view_lead"))
    lead = world["kavya"]
    client.force_login(reader)
    response = client.get(reverse("admin:leadops_lead_hold", args=[lead.pk]))
    assert response.status_code == 403
    html = " ".join(response.content.decode().split())
    assert "You may view this lead but not change it" in html
    assert "Django administration" in html or "site-name" in html  # the admin's own page


def _perms(*codenames):
    return Permission.objects.filter(codename__in=codenames)


def test_a_user_without_access_learns_nothing_about_the_object(client, org, world):
    nobody = UserFactory(username="nobody")  # staff, no group, no rep
    client.force_login(nobody)
    response = client.get(reverse("admin:leadops_lead_change", args=[world["kavya"].pk]))
    assert response.status_code == 403
    html = response.content.decode()
    assert "India inside sales" not in html and "Kavya Reddy" not in html


def test_forged_posts_cannot_touch_another_teams_rows(client, org, world):
    """Time off is the one org model a team lead may add and delete: not for another team."""
    india_pto = TimeOff.objects.get(rep=org.asha)
    client.force_login(world["jonas"])
    response = client.post(
        reverse("admin:teams_timeoff_add"),
        {
            "rep": org.asha.pk,
            "start_0": "2026-05-04",
            "start_1": "09:00:00",
            "end_0": "2026-05-05",
            "end_1": "09:00:00",
            "reason": "forged",
        },
    )
    assert response.status_code == 200  # the form again: Asha is not a choice
    assert not TimeOff.objects.filter(reason="forged").exists()
    client.post(
        reverse("admin:teams_timeoff_changelist"),
        {"action": "delete_selected", "_selected_action": [india_pto.pk], "post": "yes"},
    )
    assert TimeOff.objects.filter(pk=india_pto.pk).exists()
    response = client.post(
        reverse("admin:leadops_lead_add"),
        {
            "name": "Forged",
            "company": "X",
            "market": org.india.pk,
            "source": org.paid_social.pk,
            "team": org.india_team.pk,
        },
    )
    assert response.status_code == 403  # team leads add no leads in the admin at all
    assert not world["kavya"].__class__.objects.filter(name="Forged").exists()
