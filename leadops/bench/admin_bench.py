"""`manage.py bench admin [--leads 1000000]`: the admin console at a million leads.

Builds, in a throwaway database, the org of `bench api` (6 markets, 12 teams of 20 reps, 4
sources, policies, a team lead of one team) and `--leads` leads over two years, about 12 % open,
with their history in the proportions of a long-lived database: per lead one finished timer, one
or two activities and about two audit events; an open timer (at every stage, some paused) per
open lead; a reassignment for 3 % of the leads; notifications for a fifth. Then, logged in as a
superuser and as the team lead, it requests every page `--repeat` times (after one warm-up) and
prints the median and the query count: the lead list (default order, each filter, each sortable
column both ways, search by e-mail, external id, company and name fragments, pages 1 and 500),
a lead's page, the timer, reassignment, notification and audit lists, the policy matrix and the
admin index; then the REST API's lists of the same rows with their filters (`--target-api-ms`).
Exits non-zero when a page misses its target time or `--target-queries`."""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client, override_settings
from django.test.client import RequestFactory
from django.urls import reverse

from audit.models import AuditEvent
from escalations.models import Notification, Reassignment, SlaPolicy, SlaTimer
from escalations.policies import current_thresholds
from leadops.admin_kit import EstimatedCountPaginator
from leadops.bench.api_bench import STATES, _org
from leadops.bench.harness import QueryCounter, Stopwatch, throwaway_database
from leadops.bulk import allocate_ids, insert_rows
from leadops.models import Activity, Lead, Source
from teams.models import Rep, Role, Team

FIRST = [
    "Aisha",
    "Asha",
    "Rahul",
    "Vikram",
    "Lena",
    "Felix",
    "Jonas",
    "Katrin",
    "Priya",
    "Arjun",
    "Meera",
    "Omar",
    "Fatima",
    "Chen",
    "Wei",
    "Li",
    "Sophie",
    "Louis",
    "Camille",
    "Hugo",
    "Emma",
    "Noah",
    "Olivia",
    "Liam",
    "Ava",
    "Mia",
    "Lucas",
    "Mateo",
    "Sara",
    "Yusuf",
    "Hana",
    "Kenji",
]
LAST = [
    "Rao",
    "Shah",
    "Verma",
    "Becker",
    "Hoffmann",
    "Wagner",
    "Vogel",
    "Iyer",
    "Nair",
    "Menon",
    "Khan",
    "Haddad",
    "Tan",
    "Lim",
    "Ng",
    "Martin",
    "Bernard",
    "Dubois",
    "Laurent",
    "Smith",
    "Johnson",
    "Brown",
    "Garcia",
    "Miller",
    "Davis",
    "Lopez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Meyer",
    "Kumar",
    "Singh",
    "Gupta",
    "Mansoori",
    "Rahman",
    "Lee",
    "Wong",
    "Moreau",
]
WORDS = [
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Tyrell",
    "Cyberdyne",
    "Soylent",
    "Hooli",
    "Vandelay",
    "Wonka",
    "Emirates",
    "Tata",
    "Infosys",
    "Siemens",
    "Bosch",
    "Lufthansa",
    "Renault",
    "Danone",
    "Orange",
    "Temasek",
    "Grab",
    "Sea",
]
KINDS = ("Logistics", "Foods", "Systems", "Holdings", "Labs", "Trading", "Motors", "Media")
CHUNK = 20_000


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="manage.py bench admin")
    p.add_argument("--leads", type=int, default=100_000, help="leads to build")
    p.add_argument("--repeat", type=int, default=5, help="requests per page (median)")
    p.add_argument("--target-ms", type=float, default=300.0)
    p.add_argument("--target-api-ms", type=float, default=100.0, help="target of the API lists")
    p.add_argument("--target-queries", type=int, default=12)
    p.add_argument(
        "--queries", action="store_true", help="print the slowest statements of slow pages"
    )
    p.add_argument("--keep", action="store_true", help="keep the benchmark database")
    p.add_argument(
        "--measure-only",
        action="store_true",
        help="measure a database kept by an earlier --keep run (implies --keep)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    with throwaway_database(keep=args.keep or args.measure_only) as name:
        if args.measure_only:
            world = _kept_world()
            print(
                f"admin bench on {connection.vendor} ({name}): kept database, "
                f"{Lead.objects.count():,} leads"
            )
        else:
            print(f"admin bench on {connection.vendor} ({name}): {args.leads:,} leads")
            world = _org()
            now = datetime.now(UTC)
            with Stopwatch() as built:
                counts = _build(args.leads, world, now)
            print(
                f"  built in {built.seconds:.0f} s: "
                + ", ".join(f"{n:,} {what}" for what, n in counts.items())
            )
        hosts = [*settings.ALLOWED_HOSTS, "testserver"]
        with override_settings(ALLOWED_HOSTS=hosts, DEBUG=False):
            return _measure(args, world)


# --- the data -----------------------------------------------------------------------------------


class Progress:
    """A one-line progress bar on stderr."""

    def __init__(self, total: int, label: str):
        self.total, self.label, self.started = total, label, time.monotonic()

    def show(self, done: int) -> None:
        width = 30
        filled = int(width * done / max(self.total, 1))
        elapsed = time.monotonic() - self.started
        left = elapsed / done * (self.total - done) if done else 0
        sys.stderr.write(
            f"\r  {self.label} [{'#' * filled}{'.' * (width - filled)}] {done:,}/{self.total:,}"
            f"  {elapsed:.0f} s, ~{left:.0f} s left "
        )
        sys.stderr.flush()
        if done >= self.total:
            sys.stderr.write("\n")


def _build(total: int, world: dict, now: datetime) -> dict:
    """Straight into the tables (load, not logic), oldest lead first; the open timers go in
    through the timer table's trigger like any other, which sets each lead's next_stage_at."""
    thresholds = current_thresholds().as_dict()
    policies = {p.state: p for p in SlaPolicy.objects.all()}
    draw = random.Random(11)  # the same data every run
    states = [s for s, share in STATES.items() for _ in range(int(share * 100))]
    reps = world["reps"]
    by_team: dict[int, list] = {}
    for rep in reps:
        by_team.setdefault(rep.team_id, []).append(rep)
    span = timedelta(days=730)
    counts = dict.fromkeys(
        ("leads", "timers", "activities", "audit events", "reassignments", "notifications"), 0
    )
    progress = Progress(total, "building leads")
    made = 0
    while made < total:
        size = min(CHUNK, total - made)
        rows: dict[type, list] = {
            m: [] for m in (Lead, SlaTimer, Activity, Reassignment, Notification, AuditEvent)
        }
        open_timers = []
        for n, pk in enumerate(allocate_ids(Lead, size)):
            i = made + n
            rep = draw.choice(reps)
            team = rep.team
            created = now - span + span * (i / total) - timedelta(minutes=draw.randrange(600))
            created = min(created, now - timedelta(hours=1))
            state = draw.choice(states)
            is_open = state not in ("WON", "LOST", "UNQUALIFIED")
            on_hold = is_open and draw.random() < 0.02
            first, last = draw.choice(FIRST), draw.choice(LAST)
            name = f"{first} {last}"
            rows[Lead].append(
                {
                    "id": pk,
                    "external_id": f"crm-{i}",
                    "name": name,
                    "company": f"{draw.choice(WORDS)} {draw.choice(KINDS)} {i % 997}",
                    "email": f"{first}.{last}.{i}@example.com".lower(),
                    "phone": "",
                    "market_id": team.market_id,
                    "source_id": world["sources"][i % 4].pk,
                    "team_id": team.pk,
                    "owner_id": rep.pk,
                    "state": state,
                    "state_entered_at": created if state == "NEW" else created + timedelta(hours=3),
                    "on_hold": on_hold,
                    "hold_reason": "Customer travelling" if on_hold else "",
                    "held_at": now - timedelta(hours=5) if on_hold else None,
                    "created_at": created,
                    "updated_at": min(created + timedelta(days=3), now),
                }
            )
            # History: the NEW state's timer, met (or late), an activity or two, audit rows.
            policy = policies["NEW"]
            first_done = created + timedelta(minutes=20 + draw.randrange(300))
            late = draw.random() < 0.25
            rows[SlaTimer].append(
                _timer(pk, "NEW", rep.pk, policy, thresholds, created, timedelta(hours=4))
                | {
                    "stage": "breached" if late else "pending",
                    "next_fire_at": None,
                    "completed_at": first_done,
                    "outcome": "met_late" if late else "met",
                }
            )
            for k in range(1 + (i % 2)):
                rows[Activity].append(
                    {
                        "lead_id": pk,
                        "kind": ("call", "email")[k],
                        "actor_id": rep.pk,
                        "actor_name": rep.name,
                        "occurred_at": first_done + timedelta(hours=k),
                        "recorded_at": first_done + timedelta(hours=k),
                        "notes": "",
                        "reason": "",
                        "counted_as_progress": k == 0,
                    }
                )
            audit = {
                "lead_id": pk,
                "team_id": team.pk,
                "owner_id": rep.pk,
                "lead_label": name,
                "owner_name": rep.name,
                "state": "NEW",
                "actor_name": rep.name,
                "correlation_id": "bench",
                "window": "4h",
            }
            rows[AuditEvent].append(
                audit | {"kind": "progress_recorded", "occurred_at": first_done}
            )
            rows[AuditEvent].append(
                audit | {"kind": "sla_met", "occurred_at": first_done, "actor_name": "system"}
            )
            if late:
                rows[AuditEvent].append(
                    audit
                    | {
                        "kind": "sla_breach",
                        "occurred_at": created + timedelta(hours=4),
                        "actor_name": "system",
                    }
                )
            if draw.random() < 0.20:  # a warning went out
                rows[Notification].append(
                    _notification(pk, team.pk, rep.pk, "warning", "owner", created, i, draw)
                )
            if late:
                rows[Notification].append(
                    _notification(pk, team.pk, None, "breach", "manager", created, i, draw)
                )
            if draw.random() < 0.03:  # auto-reassigned once
                to_rep = draw.choice(by_team[team.pk])
                at = created + timedelta(hours=6)
                rows[Reassignment].append(
                    {
                        "lead_id": pk,
                        "state": "NEW",
                        "from_rep_id": rep.pk,
                        "to_rep_id": to_rep.pk,
                        "cause": "sla",
                        "at": at,
                        "actor_name": "system",
                        "candidates": [],
                        "reverted_by_name": "",
                        "revert_reason": "",
                    }
                )
                rows[AuditEvent].append(
                    audit
                    | {
                        "kind": "sla_breach_auto_reassign",
                        "occurred_at": at,
                        "actor_name": "system",
                    }
                )
            if is_open:
                open_timers.append((pk, state, rep.pk, on_hold))
        for pk, state, owner_id, on_hold in open_timers:
            policy = policies.get(state) or policies["NEW"]
            window = timedelta(hours=4) if state == "NEW" else timedelta(hours=18)
            started = now - window * draw.uniform(0, 1.8)
            timer = _timer(pk, state, owner_id, policy, thresholds, started, window)
            if on_hold:
                timer |= {"paused_at": now - timedelta(hours=5), "next_fire_at": None}
            else:
                stage, next_fire = "pending", timer["warn_at"]
                for reached, following in (
                    ("warn_at", ("warned", timer["due_at"])),
                    ("due_at", ("breached", timer["reassign_at"])),
                    ("reassign_at", ("reassigned", None)),
                ):
                    if timer[reached] <= now:
                        stage, next_fire = following
                timer |= {"stage": stage, "next_fire_at": next_fire}
            rows[SlaTimer].append(timer)
        for model, batch in rows.items():
            insert_rows(model, batch, include_pk=model is Lead)
        counts["leads"] += len(rows[Lead])
        counts["timers"] += len(rows[SlaTimer])
        counts["activities"] += len(rows[Activity])
        counts["audit events"] += len(rows[AuditEvent])
        counts["reassignments"] += len(rows[Reassignment])
        counts["notifications"] += len(rows[Notification])
        made += size
        progress.show(made)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
    return counts


def _timer(lead_id, state, owner_id, policy, thresholds, started, window) -> dict:
    return {
        "lead_id": lead_id,
        "state": state,
        "owner_id": owner_id,
        "policy_id": policy.pk,
        "policy_version": 1,
        "window": "4h",
        "clock": "calendar",
        "thresholds": thresholds,
        "window_business": window,
        "started_at": started,
        "running_since": started,
        "warn_at": started + window * thresholds["warn"] / 100,
        "due_at": started + window,
        "reassign_at": started + window * thresholds["reassign"] / 100,
        "stage": "pending",
        "episode": uuid.uuid4(),
        "episode_owner_ids": [],
        "auto_reassign_count": 0,
        "consumed": timedelta(0),
        "paused_total": timedelta(0),
        "error_count": 0,
        "last_error": "",
        "outcome": "",
        "created_at": started,
        "next_fire_at": None,
        "paused_at": None,
        "completed_at": None,
    }


def _notification(lead_id, team_id, rep_id, kind, persona, created, i, draw) -> dict:
    failed = draw.random() < 0.02
    at = created + timedelta(hours=3)
    return {
        "dedupe_key": f"bench:{kind}:{i}",
        "kind": kind,
        "persona": persona,
        "lead_id": lead_id,
        "stage": "warned" if kind == "warning" else "breached",
        "recipient_id": rep_id,
        "team_id": team_id,
        "status": "failed" if failed else "sent",
        "channel": "slack",
        "destination": "D0BENCH",
        "attempts": 5 if failed else 1,
        "next_attempt_at": at,
        "last_error": "channel_not_found" if failed else "",
        "provider_id": "" if failed else f"{i}.0001",
        "context": {"lead": lead_id},
        "created_at": at,
        "sent_at": None if failed else at,
    }


def _kept_world() -> dict:
    """What `_org` made, read back from a kept database."""
    return {
        "teams": list(Team.objects.order_by("pk")),
        "reps": list(Rep.objects.filter(role=Role.REP).select_related("team").order_by("pk")),
        "sources": list(Source.objects.order_by("pk")),
    }


# --- the pages ----------------------------------------------------------------------------------


def _users(world: dict):
    users = get_user_model().objects
    root = users.filter(username="bench-root").first() or users.create_superuser(
        "bench-root", "root@bench.example", "bench"
    )
    lead_user = users.get(username="teamlead")
    lead_user.is_staff = True
    lead_user.save(update_fields=["is_staff"])
    return {"superuser": root, "team lead": lead_user}


def _sortable_columns(user) -> dict[str, int]:
    """Column name -> its `o=` index in the list as this user sees it (the checkbox of the
    actions comes first when the user has actions)."""
    model_admin = admin.site._registry[Lead]
    request = RequestFactory().get("/")
    request.user = user
    columns = list(model_admin.get_list_display(request))
    if model_admin.get_actions(request):
        columns.insert(0, "action_checkbox")
    sortable = model_admin.get_sortable_by(request)
    return {name: i for i, name in enumerate(columns) if name in sortable}


def _lead_pages(user, world: dict) -> list[tuple[str, dict]]:
    team = world["teams"][3]  # the team lead's team: filters that find rows for both users
    # Page 500, or the user's last page when there are fewer (a filtered list, a team lead's
    # included, counts at most EstimatedCountPaginator.count_cap rows: 200 pages).
    visible = Lead.objects.count() if user.is_superuser else Lead.objects.filter(team=team).count()
    if not user.is_superuser:
        visible = min(visible, EstimatedCountPaginator.count_cap)
    last_page = max(1, min(500, visible // 50))
    sample = Lead.objects.filter(team=team).order_by("-id").values("email", "external_id")[7]
    pages = [
        ("default: most urgent first", {}),
        ("filter market", {"market__id__exact": team.market_id}),
        ("filter team", {"team_id": team.pk}),
        ("filter state NEW", {"state__exact": "NEW"}),
        ("filter state WON", {"state__exact": "WON"}),
        ("filter source", {"source__id__exact": world["sources"][1].pk}),
        ("filter on hold", {"on_hold__exact": "1"}),
    ]
    for code in ("on_track", "at_risk", "breached", "reassigned", "paused", "no_sla"):
        pages.append((f"filter SLA {code}", {"sla": code}))
    for name, index in _sortable_columns(user).items():
        pages.append((f"sort {name}", {"o": str(index)}))
        pages.append((f"sort {name} desc", {"o": f"-{index}"}))
    pages += [
        ("search e-mail", {"q": sample["email"]}),
        ("search external id", {"q": sample["external_id"]}),
        ("search company fragment", {"q": "ogistic"}),
        ("search company rare", {"q": "cyberdyne motors 12"}),
        ("search name fragment", {"q": "ahrenho"}),
        ("search name fragment common", {"q": "hoffm"}),
        ("page 1", {"p": "1"}),
        ("page 500 (team lead: their last)", {"p": str(last_page)}),
    ]
    return pages


def _pages(user, world: dict) -> list[tuple[str, str]]:
    changelist = reverse("admin:leadops_lead_changelist")
    pages = [
        (f"leads, {label}", changelist + ("?" + urlencode(params) if params else ""))
        for label, params in _lead_pages(user, world)
    ]
    lead = Lead.objects.filter(team=world["teams"][3], state="CONTACTED").order_by("-id").first()
    pages += [
        ("lead page", reverse("admin:leadops_lead_change", args=[lead.pk])),
        ("timers", reverse("admin:escalations_slatimer_changelist")),
        ("reassignments", reverse("admin:escalations_reassignment_changelist")),
        ("notifications", reverse("admin:escalations_notification_changelist")),
        ("audit events", reverse("admin:audit_auditevent_changelist")),
        (
            "policy matrix",
            reverse("admin:escalations_slapolicy_matrix")
            + f"?market={world['teams'][3].market_id}",
        ),
        ("admin index", reverse("admin:index")),
    ]
    return pages + _api_pages(lead)


API_PREFIX = "api: "


def _api_pages(lead) -> list[tuple[str, str]]:
    """The REST API's lists of the same rows, first page (a keyset page costs the same at any
    depth), each filter; the session of the admin login authenticates them."""
    week_ago = (datetime.now(UTC) - timedelta(days=7)).isoformat().replace("+00:00", "Z")
    lists = [
        ("leads", "api-leads", {}),
        ("leads of a state", "api-leads", {"state": "CONTACTED"}),
        ("leads breached", "api-leads", {"sla_status": "breached"}),
        ("audit events", "api-audit-events", {}),
        ("audit events of a lead", "api-audit-events", {"lead": lead.pk}),
        ("audit events of a kind", "api-audit-events", {"kind": "sla_breach"}),
        ("audit events, rare kind", "api-audit-events", {"kind": "sla_breach_auto_reassign"}),
        ("audit events, kind never written", "api-audit-events", {"kind": "lead_assigned"}),
        ("audit events of a week", "api-audit-events", {"since": week_ago}),
        ("notifications", "api-notifications", {}),
        ("notifications failed", "api-notifications", {"status": "failed"}),
        ("notifications of a lead", "api-notifications", {"lead": lead.pk}),
        ("reassignments", "api-reassignments", {}),
        ("reassignments reverted", "api-reassignments", {"reverted": "true"}),
    ]
    return [
        (API_PREFIX + label, reverse(name) + ("?" + urlencode(params) if params else ""))
        for label, name, params in lists
    ]


def _measure(args, world: dict) -> int:
    users = _users(world)
    results: dict[str, dict[str, tuple[float, int]]] = {}
    failures = []
    slow_queries = {}
    for who, user in users.items():
        client = Client()
        client.force_login(user)
        for label, url in _pages(user, world):
            client.get(url)  # warm-up
            timings, cpu = [], []
            counter = QueryCounter(timed=args.queries)
            for _ in range(args.repeat):
                counter.count = 0
                counter.times = {}
                started_cpu = time.process_time()
                with counter.counting(), Stopwatch() as watch:
                    response = client.get(url)
                cpu.append((time.process_time() - started_cpu) * 1000)
                timings.append(watch.seconds * 1000)
                if response.status_code != 200:
                    failures.append(f"{who} {label}: HTTP {response.status_code} ({url})")
                    break
            median = statistics.median(timings)
            results.setdefault(label, {})[who] = (median, statistics.median(cpu), counter.count)
            if median > _target_ms(label, args) or counter.count > args.target_queries:
                failures.append(f"{who} {label}: {median:.0f} ms, {counter.count} queries")
                if args.queries:
                    slow_queries[(who, label)] = counter.slowest(5)
    _print_table(results, list(users), args)
    for (who, label), lines in slow_queries.items():
        print(f"  slowest statements, {who}, {label}:")
        for line in lines:
            print("    " + line)
    for failure in failures:
        print(f"  MISSED: {failure}")
    print(
        f"  {len(results)} pages x {len(users)} users, median of {args.repeat}; target "
        f"<= {args.target_ms:.0f} ms (API lists {args.target_api_ms:.0f} ms) and "
        f"<= {args.target_queries} queries: "
        + ("all met" if not failures else f"{len(failures)} missed")
    )
    return 1 if failures else 0


def _target_ms(label: str, args) -> float:
    return args.target_api_ms if label.startswith(API_PREFIX) else args.target_ms


def _print_table(results, users, args) -> None:
    """Wall-clock median (what the target is about), this process's CPU time (Python's share,
    less disturbed by other jobs on the machine) and the queries of one request."""
    header = "| page | " + " | ".join(f"{u} ms | CPU ms | queries" for u in users) + " |"
    print(header)
    print("|---|" + "---:|---:|---:|" * len(users))
    for label, by_user in results.items():
        cells = []
        for who in users:
            median, cpu, queries = by_user.get(who, (float("nan"), float("nan"), 0))
            missed = median > _target_ms(label, args) or queries > args.target_queries
            flag = " !" if missed else ""
            cells.append(f"{median:,.0f}{flag} | {cpu:,.0f} | {queries}")
        print(f"| {label} | " + " | ".join(cells) + " |")
