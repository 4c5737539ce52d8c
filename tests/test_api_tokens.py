"""API tokens are issued in the admin by superusers and ops managers only, never edited, and the
list never prints a whole key."""

from __future__ import annotations

from django.test import Client
from rest_framework.authtoken.models import Token

from tests.factories import UserFactory

TOKENS = "/admin/authtoken/tokenproxy/"


def admin_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_ops_manager_issues_a_token_and_sees_the_key_once_on_its_page(api, callers, org):
    dialer = UserFactory(username="dialer")
    client = admin_client(callers.ops.user)

    form = client.get(f"{TOKENS}add/")
    options = list(form.context["adminform"].form.fields["user"].queryset)
    response = client.post(f"{TOKENS}add/", {"user": dialer.pk})

    token = Token.objects.get(user=dialer)
    assert form.status_code == 200
    assert dialer in options and callers.crm.user not in options  # crm has a token already
    assert response.status_code == 302 and response["Location"] == f"{TOKENS}{dialer.pk}/change/"
    page = client.get(response["Location"]).content.decode()
    assert token.key in page and "Copy the key now" in page


def test_the_list_shows_only_the_start_of_each_key(callers, org):
    page = admin_client(callers.ops.user).get(TOKENS).content.decode()

    assert callers.crm.token[:6] in page and callers.crm.token not in page
    assert "Integrations" in page


def test_tokens_are_not_edited(callers, org):
    client = admin_client(callers.ops.user)
    url = f"{TOKENS}{callers.crm.user.pk}/change/"

    response = client.post(url, {"user": callers.ops.user.pk})

    assert response.status_code == 403
    assert Token.objects.get(key=callers.crm.token).user == callers.crm.user


def test_ops_manager_revokes_a_token_and_the_api_refuses_it(api, callers, org):
    client = admin_client(callers.ops.user)
    client.post(f"{TOKENS}{callers.crm.user.pk}/delete/", {"post": "yes"})

    assert not Token.objects.filter(key=callers.crm.token).exists()
    assert api.get("/api/v1/leads/", as_=callers.crm).status_code == 401


def test_team_leads_have_no_tokens_section(callers, org):
    callers.jonas.user.is_staff = True
    callers.jonas.user.save()
    client = admin_client(callers.jonas.user)

    assert client.get(TOKENS).status_code == 403
    assert client.get(f"{TOKENS}add/").status_code == 403
    assert "authtoken" not in client.get("/admin/").content.decode()
