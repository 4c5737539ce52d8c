"""The signed lead page: a GET shows and changes nothing; the bound owner acts through POST forms;
tampered links get 403, expired ones 410; a lead that moved on offers no actions."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape
from html.parser import HTMLParser
from urllib.parse import urlparse

import pytest
import time_machine
from django.test import Client

from audit.models import AuditEvent
from escalations import links
from escalations.reassign import reassign_lead
from leadops.models import Activity, Lead
from tests.factories import make_lead
from tests.notify_fixtures import WARN_AT

NOW = WARN_AT


@pytest.fixture
def at_warn_time():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def _path(rep, lead) -> str:
    return urlparse(links.make_link(rep, lead)).path


def _snapshot(lead):
    return (
        Activity.objects.filter(lead=lead).count(),
        AuditEvent.objects.filter(lead=lead).count(),
        Lead.history.filter(id=lead.pk).count(),
        Lead.objects.values_list("state", "owner_id", "updated_at").get(pk=lead.pk),
    )


class _Forms(HTMLParser):
    """Every <form> on a page as {input name: value}, the way a browser would submit it."""

    def __init__(self):
        super().__init__()
        self.forms: list[dict[str, str]] = []
        self._current: dict[str, str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self._current = {}
        elif tag == "input" and self._current is not None and attrs.get("name"):
            self._current[attrs["name"]] = attrs.get("value") or ""

    def handle_endtag(self, tag):
        if tag == "form" and self._current is not None:
            self.forms.append(self._current)
            self._current = None


def form_for(page: str, action: str) -> dict[str, str]:
    parser = _Forms()
    parser.feed(page)
    [form] = [f for f in parser.forms if f.get("action") == action]
    return form


def post_form(client, path: str, form: str, **overrides):
    """Submit the page's form for action `form` as a browser would (CSRF token and nonce)."""
    data = {**form_for(client.get(path).content.decode(), form), **overrides}
    return client.post(path, data)


def test_the_link_is_site_url_plus_a_signed_token_for_one_rep_and_lead(seed_lead, org):
    url = links.make_link(org.lena, seed_lead)
    assert re.fullmatch(r"http://testserver/l/[\w\-]+:[\w\-]+:[\w\-]+/", url)
    token = url.split("/")[-2]
    assert links.read_token(token) == (org.lena.pk, seed_lead.pk)


def test_a_get_shows_the_lead_card_and_changes_nothing(client, seed_lead, org, at_warn_time):
    before = _snapshot(seed_lead)

    response = client.get(_path(org.lena, seed_lead))

    assert response.status_code == 200
    page = response.content.decode()
    for text in (
        "Aisha Al-Mansoori",
        "Emirates Group",
        "Germany",
        "Paid social",
        "NEW since 08:00",
        "on track: SLA breach in 12 minutes",
        "(due 10:00)",
        "Lena Hoffmann",
        'href="tel:+49%2030%201234567"',
        "Log call",
        "Log email",
        "Disqualify",
        "csrfmiddlewaretoken",
    ):
        assert text in page, text
    assert response["Referrer-Policy"] == "same-origin"
    assert "no-store" in response["Cache-Control"]
    assert "noindex" in response["X-Robots-Tag"]
    assert _snapshot(seed_lead) == before


def test_logging_a_call_by_the_owner_records_it_and_moves_the_lead_on(seed_lead, org, at_warn_time):
    client = Client(enforce_csrf_checks=True)
    path = _path(org.lena, seed_lead)

    response = post_form(client, path, "call")

    assert response.status_code == 302
    assert response["Location"] == path
    [activity] = Activity.objects.filter(lead=seed_lead)
    assert (activity.kind, activity.actor_id, activity.counted_as_progress) == (
        "call",
        org.lena.pk,
        True,
    )
    seed_lead.refresh_from_db()
    assert seed_lead.state == "CONTACTED"
    page = client.get(path).content.decode()
    assert "Call logged by Lena Hoffmann at 09:48 CET · SLA met." in page


def test_a_post_without_the_csrf_token_is_refused(seed_lead, org, at_warn_time):
    client = Client(enforce_csrf_checks=True)
    response = client.post(_path(org.lena, seed_lead), {"action": "call"})
    assert response.status_code == 403
    assert not Activity.objects.filter(lead=seed_lead).exists()


def test_logging_an_email_counts_too(client, seed_lead, org, at_warn_time):
    post_form(client, _path(org.lena, seed_lead), "email")
    seed_lead.refresh_from_db()
    assert seed_lead.state == "CONTACTED"
    assert Activity.objects.get(lead=seed_lead).kind == "email"


def test_disqualifying_needs_a_reason(client, seed_lead, org, at_warn_time):
    path = _path(org.lena, seed_lead)

    refused = post_form(client, path, "disqualify", reason="  ")
    assert refused.status_code == 400
    assert "needs a reason" in refused.content.decode()
    assert not Activity.objects.filter(lead=seed_lead).exists()

    post_form(client, path, "disqualify", reason="Student, no budget")
    seed_lead.refresh_from_db()
    assert seed_lead.state == "UNQUALIFIED"
    assert Activity.objects.get(lead=seed_lead).reason == "Student, no budget"


def test_an_unknown_action_changes_nothing(client, seed_lead, org, at_warn_time):
    response = post_form(client, _path(org.lena, seed_lead), "call", action="won")
    assert response.status_code == 403
    assert not Activity.objects.filter(lead=seed_lead).exists()


@pytest.mark.parametrize("tamper", ["payload", "signature", "truncate", "garbage"])
def test_a_tampered_link_is_refused_with_403(client, seed_lead, org, tamper, at_warn_time):
    token = links.make_token(org.lena, seed_lead)
    payload, stamp, signature = token.split(":")
    forged_payload = links.make_token(org.felix, seed_lead).split(":")[0]
    bad = {
        "payload": f"{forged_payload}:{stamp}:{signature}",
        "signature": f"{payload}:{stamp}:{signature[:-2]}xx",
        "truncate": f"{payload}:{stamp}",
        "garbage": "not-a-token",
    }[tamper]
    before = _snapshot(seed_lead)

    assert client.get(f"/l/{bad}/").status_code == 403
    assert client.post(f"/l/{bad}/", {"action": "call"}).status_code == 403
    assert _snapshot(seed_lead) == before


def test_an_expired_link_gets_410(client, seed_lead, org, settings):
    settings.SIGNED_LINK_MAX_AGE_HOURS = 72
    with time_machine.travel(NOW, tick=False):
        path = _path(org.lena, seed_lead)
    with time_machine.travel(NOW + timedelta(hours=71), tick=False):
        assert client.get(path).status_code == 200
    with time_machine.travel(NOW + timedelta(hours=72, seconds=1), tick=False):
        response = client.get(path)
        assert response.status_code == 410
        assert "expired" in response.content.decode()
        assert client.post(path, {"action": "call"}).status_code == 410
    assert not Activity.objects.filter(lead=seed_lead).exists()


def test_a_lead_moved_to_another_owner_offers_no_actions(client, seed_lead, org, at_warn_time):
    path = _path(org.lena, seed_lead)
    stale_form = form_for(client.get(path).content.decode(), "call")  # a tab left open
    reassign_lead(seed_lead, org.felix, cause="manual", actor=org.jonas)

    page = client.get(path)
    assert page.status_code == 200
    text = unescape(page.content.decode())
    assert "You can't act on this lead: it is owned by Felix Wagner" in text
    assert "<form" not in text
    assert "Log call" not in text

    response = client.post(path, stale_form)
    assert response.status_code == 403
    assert "it is owned by Felix Wagner" in response.content.decode()
    assert not Activity.objects.filter(lead=seed_lead).exists()
    seed_lead.refresh_from_db()
    assert seed_lead.state == "NEW"


def test_a_link_bound_to_another_rep_cannot_act(client, seed_lead, org, at_warn_time):
    path = _path(org.felix, seed_lead)  # genuine, but Felix does not own the lead
    assert "<form" not in client.get(path).content.decode()
    nonce = links.make_form_nonce(org.felix, seed_lead)  # even with a genuine form
    assert client.post(path, {"action": "call", "nonce": nonce}).status_code == 403
    assert not Activity.objects.filter(lead=seed_lead).exists()


def test_a_closed_lead_offers_no_actions(client, seed_lead, org, at_warn_time):
    path = _path(org.lena, seed_lead)
    post_form(client, path, "disqualify", reason="duplicate")
    text = client.get(path).content.decode()
    assert "This lead is closed (Unqualified)." in text
    assert "<form" not in text


def test_a_link_to_a_deleted_lead_is_404(client, org, policies, at_warn_time):
    lead = make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena)
    path = _path(org.lena, lead)
    Lead.objects.filter(pk=lead.pk).delete()
    assert client.get(path).status_code == 404


def test_a_head_request_from_a_link_scanner_changes_nothing(client, seed_lead, org, at_warn_time):
    before = _snapshot(seed_lead)
    assert client.head(_path(org.lena, seed_lead)).status_code == 200
    assert client.put(_path(org.lena, seed_lead)).status_code == 405
    assert _snapshot(seed_lead) == before


# --- replays (issue 14, item 6) -------------------------------------------------------------------


def test_replaying_a_link_form_post_records_nothing_new(seed_lead, org, at_warn_time):
    client = Client(enforce_csrf_checks=True)
    path = _path(org.lena, seed_lead)
    data = form_for(client.get(path).content.decode(), "call")

    responses = [client.post(path, data, follow=True) for _ in range(3)]

    assert Activity.objects.filter(lead=seed_lead).count() == 1
    assert all(r.status_code == 200 for r in responses)
    first, replay = responses[0].content.decode(), responses[2].content.decode()
    assert "Call logged by Lena Hoffmann at 09:48 CET" in first
    assert "This form was already sent" in replay and "nothing new was recorded" in replay


def test_each_form_on_the_page_has_its_own_nonce(seed_lead, org, at_warn_time):
    client = Client(enforce_csrf_checks=True)
    path = _path(org.lena, seed_lead)
    page = client.get(path).content.decode()
    call, email = form_for(page, "call"), form_for(page, "email")
    assert call["nonce"] != email["nonce"]

    client.post(path, call)
    client.post(path, email)  # the same page, another form: a second action, not a replay

    assert sorted(Activity.objects.filter(lead=seed_lead).values_list("kind", flat=True)) == [
        "call",
        "email",
    ]


@pytest.mark.parametrize("nonce", ["", "garbage", "tampered", "other-lead"])
def test_a_post_without_a_genuine_nonce_for_this_link_changes_nothing(
    client, seed_lead, org, policies, nonce, at_warn_time
):
    path = _path(org.lena, seed_lead)
    form = form_for(client.get(path).content.decode(), "call")
    other = make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena, name="Other")
    form["nonce"] = {
        "": "",
        "garbage": "not-a-nonce",
        "tampered": form["nonce"][:-3] + "abc",
        "other-lead": links.make_form_nonce(org.lena, other),
    }[nonce]
    before = _snapshot(seed_lead)

    response = client.post(path, form)

    assert response.status_code == 400
    assert "nothing was recorded" in response.content.decode()
    assert _snapshot(seed_lead) == before


def test_the_page_explains_the_sla_like_the_admin(client, seed_lead, org, at_warn_time):
    page = unescape(client.get(_path(org.lena, seed_lead)).content.decode())
    for text in (
        "SLA explained",
        "1h on the business hours clock (1 hour)",
        "Started</dt><dd>08:00 CET",
        "Used so far</dt><dd>48 minutes",
        "Warning (80 %)</dt><dd>09:48 CET",
        "Breach (100 %)</dt><dd>10:00 CET · not yet",
        "Reassignment (150 %)</dt><dd>10:30 CET · not yet",
        "Times in Europe/Berlin",
    ):
        assert text in page, text


def test_a_disqualified_lead_page_says_nothing_is_timed(client, seed_lead, org, at_warn_time):
    path = _path(org.lena, seed_lead)
    post_form(client, path, "disqualify", reason="Student, no budget")
    page = client.get(path).content.decode()
    assert "Disqualified by Lena Hoffmann at 09:48 CET (Student, no budget) · SLA met." in page
    assert "nothing is being timed for this lead in UNQUALIFIED" in page
