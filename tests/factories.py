"""Factories for the org and leads. Leads are made through the lifecycle (`make_lead`) so that
timers start exactly as in production."""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from leadops import lifecycle
from leadops.models import Source
from teams.models import Market, Rep, Role, Team

WEEKDAYS_9_TO_18 = {d: ["09:00-18:00"] for d in ("mon", "tue", "wed", "thu", "fri")}


class MarketFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Market
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"M{n}")
    name = factory.LazyAttribute(lambda o: f"Market {o.code}")
    timezone = "Europe/Berlin"
    hours = factory.LazyFunction(lambda: dict(WEEKDAYS_9_TO_18))
    holiday_country = ""


class SourceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Source
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"source_{n}")
    name = factory.LazyAttribute(lambda o: o.code.replace("_", " ").title())


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"team-{n}")
    name = factory.LazyAttribute(lambda o: o.slug.title())
    market = factory.SubFactory(MarketFactory)
    slack_channel_id = factory.Sequence(lambda n: f"C{n:06d}")


class RepFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Rep

    name = factory.Sequence(lambda n: f"Rep {n}")
    email = factory.Sequence(lambda n: f"rep{n}@example.com")
    team = factory.SubFactory(TeamFactory)
    role = Role.REP
    slack_user_id = factory.Sequence(lambda n: f"U{n:06d}")
    capacity = 30


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    is_staff = True
    password = factory.django.Password("pw")


def ops_manager(username: str = "olga"):
    """A staff user in the migrations' `Ops managers` group."""
    user = UserFactory(username=username)
    user.groups.add(Group.objects.get(name="Ops managers"))
    return user


def team_lead(rep, username: str):
    """A staff user in the `Team leads` group, linked to `rep` (whose team they lead)."""
    user = UserFactory(username=username)
    user.groups.add(Group.objects.get(name="Team leads"))
    rep.user = user
    rep.save()
    return user


def ops_manager_and_team_lead(org) -> dict:
    """`olga`, an ops manager, and `jonas`, the Berlin team lead (linked to his rep)."""
    return {"olga": ops_manager(), "jonas": team_lead(org.jonas, "jonas")}


def make_lead(
    *, team, source, owner=None, name="Aisha Al-Mansoori", company="Emirates Group", **kwargs
):
    return lifecycle.create_lead(
        name=name,
        company=company,
        market=team.market,
        source=source,
        team=team,
        owner=owner,
        **kwargs,
    )
