"""The demo: the org file of `org.yaml`, one login per persona, a quarter of history (for
calibration, `history.py`) and leads of different ages, so that the first sweeps visibly warn,
breach and reassign. Every row is stamped at its own instant: the lifecycle verbs run with the
clock set to each step's time. Idempotent."""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import time_machine
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from escalations import planning
from escalations.orgfile import load_org
from escalations.policies import resolve_policy
from escalations.windows import parse_window
from leadops import lifecycle
from leadops.demo.history import build_history
from leadops.models import Lead, Source
from teams.models import Market, Rep, Role, Team

ORG_FILE = Path(__file__).with_name("org.yaml")

LOGINS = (
    # username, password, what they are, group, rep email
    ("admin", "leadops-admin", "superuser", None, None),
    ("ops", "leadops-ops", "ops manager (all markets)", "Ops managers", None),
    (
        "meera",
        "leadops-lead",
        "team lead of India inside sales",
        "Team leads",
        "meera@demo.leadops",
    ),
)

PEOPLE = {
    "IN": [
        ("Ananya Gupta", "Tata Digital"),
        ("Rohan Mehta", "Infosys"),
        ("Kavya Reddy", "Zomato"),
        ("Arjun Kapoor", "Reliance Retail"),
        ("Ishita Bose", "Flipkart"),
        ("Nikhil Joshi", "Swiggy"),
        ("Sneha Kulkarni", "Paytm"),
    ],
    "US": [
        ("Emily Carter", "Acme Logistics"),
        ("Michael Reed", "Bluebird Health"),
        ("Olivia Park", "Northwind Traders"),
        ("James Patel", "Summit Analytics"),
        ("Sophia Turner", "Harbor Foods"),
        ("Daniel Kim", "Keystone Energy"),
    ],
    "DE": [
        ("Lukas Schmidt", "Bergmann Maschinenbau"),
        ("Anna Müller", "Spreeworks"),
        ("Paul Fischer", "Nordlicht Versicherung"),
        ("Marie Weber", "Havelberg Bau"),
        ("Leon Schulz", "Elbtal Logistik"),
    ],
    "SG": [
        ("Lim Jia Hui", "Marina Fintech"),
        ("Raj Kumar", "Orchard Retail"),
        ("Chen Wei", "Straits Shipping"),
        ("Nur Aisyah", "Lion City Foods"),
        ("Ethan Goh", "Sentosa Travel"),
    ],
    "FR": [
        ("Camille Laurent", "Lumière Cosmétiques"),
        ("Louis Moreau", "Rive Gauche Conseil"),
        ("Inès Lefebvre", "Atelier Belleville"),
        ("Jules Girard", "Seine Énergie"),
    ],
    "AE": [
        ("Aisha Al-Mansoori", "Emirates Group"),
        ("Khalid Al-Nuaimi", "Gulf Ventures"),
        ("Fatima Al-Suwaidi", "Dubai Holding"),
        ("Hamdan Al-Falasi", "Marina Realty"),
        ("Mariam Al-Qasimi", "Sharjah Trading"),
    ],
}
TEAM_OF = {
    "IN": "in-inside",
    "US": "us-east",
    "DE": "de-berlin",
    "SG": "sg-apac",
    "FR": "fr-paris",
    "AE": "ae-gulf",
}
# (state to reach, fraction of the window already used): on track, warned, breached, reassign
AGES = [
    ("NEW", 0.3),
    ("NEW", 0.85),
    ("NEW", 1.2),
    ("NEW", 1.7),
    ("CONTACTED", 0.5),
    ("CONTACTED", 1.05),
    ("QUALIFIED", 0.9),
    ("PROPOSAL", 0.4),
    ("NEW", 0.6),
]


@dataclass
class DemoReport:
    org: str = ""
    leads_created: int = 0
    leads_existing: int = 0
    history: str = ""
    logins: list[tuple[str, str, str]] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [
            f"org: {self.org}",
            f"demo leads: {self.leads_created} created, {self.leads_existing} already there",
        ]
        if self.history:
            out.append(self.history)
        out += [f"login {u} / {p}  ({what})" for u, p, what in self.logins]
        return out


def load_demo(*, with_leads: bool = True) -> DemoReport:
    report = DemoReport()
    report.org = load_org(ORG_FILE).summary()
    report.logins = ensure_logins()
    if with_leads:
        history = build_history()
        report.history = (
            f"a quarter of history: {history.leads} leads, {history.sweeps} sweeps, "
            f"{history.reverts} reverts"
            if history.leads
            else f"history: {history.existing} leads already there"
        )
        created, existing = _demo_leads()
        report.leads_created, report.leads_existing = created, existing
    return report


def ensure_logins() -> list[tuple[str, str, str]]:
    User = get_user_model()
    out = []
    for username, password, what, group, rep_email in LOGINS:
        user = User.objects.filter(username=username).first()
        if user is None:
            user = User(username=username, email=f"{username}@demo.leadops")
            user.set_password(password)
        user.is_staff = True
        user.is_superuser = group is None
        user.save()
        if group:
            user.groups.add(Group.objects.get(name=group))
        if rep_email:
            Rep.objects.filter(email=rep_email, user__isnull=True).update(user=user)
        out.append((username, password, what))
    return out


def _demo_leads() -> tuple[int, int]:
    rng = random.Random(42)
    sources = list(Source.objects.order_by("code"))
    created = existing = 0
    n = 0
    now = timezone.now()
    for code, people in PEOPLE.items():
        market = Market.objects.get(code=code)
        team = Team.objects.get(slug=TEAM_OF[code])
        reps = list(Rep.objects.filter(team=team, role=Role.REP, active=True).order_by("pk"))
        for i, (name, company) in enumerate(people):
            n += 1
            external_id = f"demo-{n:03d}"
            if Lead.objects.filter(external_id=external_id).exists():
                existing += 1
                continue
            state, fraction = AGES[(n + i) % len(AGES)]
            source = sources[(n * 7 + i) % len(sources)]
            owner = reps[(n + i) % len(reps)] if reps and (n % 5) else None
            if code == "SG" and i == 0:
                # Past 150 % with a day rep: the night desk (24/7) takes it at the first sweep,
                # so the demo shows an auto-reassignment whatever the day and hour.
                state, fraction, owner = "NEW", 1.7, reps[0]
            slug = unicodedata.normalize("NFKD", name.lower()).encode("ascii", "ignore").decode()
            slug = slug.replace(" ", ".").replace("'", "")
            steps = PATH[: PATH.index(state) + 1]
            entered = _entered_at(market, source, state, fraction, now)
            # Each earlier state was left 20 minutes before the next one began.
            instants = [entered - timedelta(minutes=20 * k) for k in range(len(steps))][::-1]
            with transaction.atomic(), time_machine.travel(instants[0], tick=False):
                lead = lifecycle.create_lead(
                    name=name,
                    company=company,
                    market=market,
                    source=source,
                    team=team,
                    owner=owner,
                    email=f"{slug}@example.com",
                    phone=f"+{rng.randint(10, 99)} {rng.randint(100, 999)} "
                    f"{rng.randint(1000, 9999)}",
                    external_id=external_id,
                )
            for target, at in zip(steps[1:], instants[1:], strict=True):
                with transaction.atomic(), time_machine.travel(at, tick=False):
                    _step_to(lead, target)
            created += 1
    return created, existing


PATH = ["NEW", "CONTACTED", "QUALIFIED", "PROPOSAL"]


def _step_to(lead, target: str) -> None:
    """One step along the demo path, by the owner (a call moves a NEW lead on)."""
    lead.refresh_from_db()
    if target == "CONTACTED":
        actor = lead.owner or lead.team.reps.filter(role="rep", active=True).first()
        lifecycle.record_activity(lead, "call", actor=actor, notes="Intro call")
        lead.refresh_from_db()
        if lead.state != "CONTACTED":
            lifecycle.transition(lead, "CONTACTED", actor=None)
    else:
        lifecycle.transition(lead, target, actor=lead.owner)


def _entered_at(market, source, state: str, fraction: float, now):
    """When the lead must have entered `state` for `fraction` of its window to be used now (the
    window of the policy that applies, on its clock)."""
    resolved = resolve_policy(state=state, market_id=market.pk, source_id=source.pk)
    if resolved is None:
        return now - timedelta(hours=1)
    calendar = planning.calendar_for(Lead(market=market), resolved.policy.clock)
    window = planning.window_business_time(now, parse_window(resolved.policy.window), calendar)
    target = window * fraction
    lo, hi = now - timedelta(days=400), now  # elapsed(start, now) shrinks as start grows
    for _ in range(60):
        mid = lo + (hi - lo) / 2
        if calendar.elapsed(mid, now) >= target:
            lo = mid
        else:
            hi = mid
    return lo
