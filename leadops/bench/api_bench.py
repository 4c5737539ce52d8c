"""`manage.py bench api [--creates N] [--rows 1000000]`: the REST API through HTTP.

Starts a real server process (the production one, granian: one process, `--threads` threads,
DEBUG off; `leadops.bench.server`) on a free port over a throwaway database, then:

1. **intake**: `POST /api/v1/leads/` through keep-alive connections (`--clients` of them, one
   thread each): leads created per second, each with its routing or owner check, history row,
   SLA timer planned on a business-hours calendar and audit; every answer must be a 201.
2. **list**: `--rows` leads (bulk-built, realistic mix of states, teams, owners, open timers at
   every stage), then `GET /api/v1/leads/` with each filter (and a team lead's scope): median
   and worst latency of `--repeat` requests each, against `--target-ms`.

Exits non-zero when a request fails or a median misses the target."""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import random
import socket
import statistics
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from rest_framework.authtoken.models import Token

from escalations.api.serializers import LeadQuery
from escalations.api.views.leads import filter_leads, leads
from escalations.models import SlaPolicy, SlaTimer
from escalations.permissions import scope_of
from escalations.policies import current_thresholds
from leadops.bench.harness import Stopwatch, add_kept_database_options, kept_database
from leadops.bench.server import Server, database_url, process_cpu_seconds, serving
from leadops.bulk import allocate_ids, insert_rows
from leadops.models import Lead, Source
from teams.models import Market, Rep, Role, Team

WEEKDAYS = {d: ["09:00-18:00"] for d in ("mon", "tue", "wed", "thu", "fri")}
MARKETS = [
    ("IN", "Asia/Kolkata"),
    ("US", "America/New_York"),
    ("DE", "Europe/Berlin"),
    ("SG", "Asia/Singapore"),
    ("FR", "Europe/Paris"),
    ("AE", "Asia/Dubai"),
]
# state -> share of the million (a long-lived database: most leads are closed)
STATES = {
    "NEW": 0.03,
    "CONTACTED": 0.03,
    "QUALIFIED": 0.03,
    "PROPOSAL": 0.02,
    "NEGOTIATION": 0.01,
    "WON": 0.30,
    "LOST": 0.28,
    "UNQUALIFIED": 0.30,
}
SERVER_APPLICATION = "leadops-bench-api"  # the server's PostgreSQL sessions, by name
STAGES = [("pending", 70), ("warned", 15), ("breached", 10), ("reassigned", 3), ("paused", 2)]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="manage.py bench api")
    p.add_argument("--creates", type=int, default=3000, help="leads created through HTTP")
    p.add_argument("--clients", type=int, default=8, help="keep-alive client connections")
    p.add_argument("--threads", type=int, default=8, help="server threads (one process)")
    p.add_argument("--routed", action="store_true", help="create leads without an owner")
    p.add_argument("--rows", type=int, default=1_000_000, help="leads for the list bench")
    p.add_argument("--repeat", type=int, default=15, help="requests per list query")
    p.add_argument("--target-ms", type=float, default=100.0)
    p.add_argument("--skip-list", action="store_true")
    p.add_argument("--plans", action="store_true", help="print each list query's plan (PostgreSQL)")
    add_kept_database_options(p, reuse="list only (no intake)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    with kept_database(args) as name:
        print(f"api bench on {connection.vendor} ({name}), one server process")
        reuse = args.reuse and Team.objects.filter(slug="team-0").exists()
        world = _kept_org() if reuse else _org()
        with _server(args.threads) as server:
            if reuse:
                return 0 if _listing(args, server.port, world, build=False) else 1
            ok = _intake(args, server, world)
            if not args.skip_list:
                ok = _listing(args, server.port, world) and ok
    return 0 if ok else 1


# --- the org and the callers ------------------------------------------------------------------


def _org() -> dict:
    markets = [
        Market.objects.create(
            code=code, name=code, timezone=zone, hours=WEEKDAYS, holiday_country=code
        )
        for code, zone in MARKETS
    ]
    teams, reps = [], []
    for i in range(12):
        team = Team.objects.create(
            slug=f"team-{i}", name=f"Team {i}", market=markets[i % 6], slack_channel_id=f"C{i}"
        )
        teams.append(team)
        Rep.objects.create(name=f"Manager {i}", email=f"m{i}@bench", team=team, role=Role.MANAGER)
        reps += [
            Rep.objects.create(
                name=f"Rep {i}.{j}", email=f"r{i}.{j}@bench", team=team, capacity=10**6
            )
            for j in range(20)
        ]
    sources = [Source.objects.create(code=f"src{i}", name=f"Source {i}") for i in range(4)]
    for state in ("NEW", "CONTACTED", "QUALIFIED", "PROPOSAL"):
        SlaPolicy.objects.create(state=state, window="4h" if state == "NEW" else "2bd")
    users = get_user_model().objects
    crm = users.create_user("crm")
    crm.groups.add(Group.objects.get(name="Integrations"))
    lead_user = users.create_user("teamlead")
    lead_user.groups.add(Group.objects.get(name="Team leads"))
    Rep.objects.create(
        name="Team lead", email="lead@bench", team=teams[3], role=Role.LEAD, user=lead_user
    )
    return {
        "markets": markets,
        "teams": teams,
        "reps": reps,
        "sources": sources,
        "crm": Token.objects.create(user=crm).key,
        "teamlead": Token.objects.create(user=lead_user).key,
    }


def _kept_org() -> dict:
    """The org of a kept benchmark database (`--reuse`), as `_org` made it."""
    return {
        "markets": list(Market.objects.order_by("pk")),
        "teams": list(Team.objects.select_related("market").order_by("pk")),
        "reps": list(
            Rep.objects.filter(role=Role.REP).select_related("team__market").order_by("pk")
        ),
        "sources": list(Source.objects.order_by("pk")),
        "crm": Token.objects.get(user__username="crm").key,
        "teamlead": Token.objects.get(user__username="teamlead").key,
    }


# --- the server ----------------------------------------------------------------------------------


@contextlib.contextmanager
def _server(threads: int):
    environment = {
        "DATABASE_URL": database_url(application_name=SERVER_APPLICATION),
        "DEBUG": "false",
        "SECRET_KEY": "bench-only-" + uuid.uuid4().hex,
        "ALLOWED_HOSTS": "127.0.0.1",
        "API_THROTTLE_READ_RATE": "100000000/min",
        "API_THROTTLE_WRITE_RATE": "100000000/min",
        "LOG_LEVEL": "ERROR",
    }
    with serving(environment, threads=threads) as server:
        print(
            f"  server: granian (WSGI) pid {server.pid}, 1 process, {threads} threads, "
            f"port {server.port}"
        )
        yield server


def _database_cpu() -> dict[int, float] | None:
    """CPU seconds used so far by each of the server's PostgreSQL backends (from /proc; the
    database runs on this machine in the benchmark); None on SQLite or without /proc."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s", [SERVER_APPLICATION]
        )
        pids = [row[0] for row in cursor.fetchall()]
    try:
        return {pid: process_cpu_seconds(pid) for pid in pids}
    except (OSError, ValueError):
        return None


class Client:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, port: int, token: str):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.connection.connect()
        # No Nagle: a request's headers and body leave at once, not 40 ms apart.
        self.connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        payload = json.dumps(body).encode() if body is not None else None
        self.connection.request(method, path, body=payload, headers=self.headers)
        response = self.connection.getresponse()
        return response.status, json.loads(response.read() or b"{}")


# --- 1. intake -----------------------------------------------------------------------------------


def _lead_body(i: int, world: dict, routed: bool) -> dict:
    t = i % len(world["teams"])
    team = world["teams"][t]
    body = {
        "name": f"Bench lead {i}",
        "company": "Bench Co",
        "email": f"lead{i}@example.com",
        "market": team.market.code,
        "source": world["sources"][i % 4].code,
        "team": team.slug,
        "external_id": f"bench-{i}",
    }
    if not routed:
        body["owner"] = world["reps"][t * 20 + (i // 12) % 20].email  # 20 reps per team
    return body


def _intake(args, server: Server, world: dict) -> bool:
    port = server.port
    warmup = 100
    bodies = [_lead_body(i, world, args.routed) for i in range(warmup + args.creates)]
    client = Client(port, world["crm"])
    for body in bodies[:warmup]:
        client.request("POST", "/api/v1/leads/", body)
    failures: list = []
    chunks = [bodies[warmup + i :: args.clients] for i in range(args.clients)]

    def post_all(chunk):
        mine = Client(port, world["crm"])
        for body in chunk:
            status, answer = mine.request("POST", "/api/v1/leads/", body)
            if status != 201:
                failures.append((status, answer))

    threads = [threading.Thread(target=post_all, args=(c,)) for c in chunks]
    cpu_before, database_before = server.cpu_seconds(), _database_cpu()
    with Stopwatch() as watch:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    cpu_after, database_after = server.cpu_seconds(), _database_cpu()
    leads = Lead.objects.filter(external_id__startswith="bench-").count()
    timers = SlaTimer.objects.filter(completed_at__isnull=True).count()
    rate = args.creates / watch.seconds
    print(
        f"  intake: {args.creates:,} leads in {watch.seconds:.2f} s = {rate:,.0f} leads/s "
        f"({args.clients} keep-alive clients, {'routed' if args.routed else 'with owner'}); "
        f"{leads:,} leads, {timers:,} open timers, {len(failures)} failures"
    )
    if cpu_before is not None and cpu_after is not None:
        busy = cpu_after - cpu_before
        print(
            f"  server CPU: {busy * 1000 / args.creates:.2f} ms per lead "
            f"({busy / watch.seconds:.0%} of one core over the run; one process is bound by "
            "one core: the GIL)"
        )
    if database_before is not None and database_after is not None:
        busy = sum(t - database_before.get(pid, 0.0) for pid, t in database_after.items())
        print(
            f"  database CPU: {busy * 1000 / args.creates:.2f} ms per lead "
            f"({len(database_after)} PostgreSQL sessions of the server)"
        )
    for status, answer in failures[:3]:
        print(f"    {status}: {answer}")
    # The floor on this machine: the cheapest authenticated request (no row), on a new
    # connection (the server closes one idle for 30 s, as the warm-up's was during the run).
    client = Client(port, world["crm"])
    with Stopwatch() as floor:
        for _ in range(200):
            client.request("GET", "/api/v1/leads/?external_id=none")
    print(f"  floor: an empty GET, one client: {200 / floor.seconds:,.0f} requests/s")
    return not failures and leads == timers == warmup + args.creates


# --- 2. the list at a million leads ------------------------------------------------------------


def _build(rows: int, world: dict, now: datetime) -> None:
    """`rows` leads, oldest first (ids grow with created_at), over two years; open ones with
    an open timer at a mix of stages. Loads, not logic: straight into the tables."""
    thresholds = current_thresholds().as_dict()
    policy = SlaPolicy.objects.get(state="NEW")
    draw = random.Random(13)  # the same million every run
    states = [s for s, share in STATES.items() for _ in range(int(share * 100))]
    stages = [s for s, share in STAGES for _ in range(share)]
    reps, chunk, made = world["reps"], 20_000, 0
    homes = {rep.pk: (rep.team_id, rep.team.market_id) for rep in reps}
    span = timedelta(days=730)
    while made < rows:
        size = min(chunk, rows - made)
        ids = allocate_ids(Lead, size)
        leads, timers = [], []
        for n, pk in enumerate(ids):
            i = made + n
            rep = draw.choice(reps)
            created = now - span + span * (i / rows)
            state = draw.choice(states)
            closed = state in ("WON", "LOST", "UNQUALIFIED")
            updated = created + timedelta(days=3) if closed else now - timedelta(minutes=i % 600)
            leads.append(
                {
                    "id": pk,
                    "external_id": f"ext-{i}",
                    "name": f"Lead {i}",
                    "company": f"Company {i % 5000}",
                    "email": "",
                    "phone": "",
                    "market_id": homes[rep.pk][1],
                    "source_id": world["sources"][i % 4].pk,
                    "team_id": homes[rep.pk][0],
                    "owner_id": rep.pk,
                    "state": state,
                    "state_entered_at": created,
                    "on_hold": False,
                    "hold_reason": "",
                    "created_at": created,
                    "updated_at": min(updated, now),
                }
            )
            if not closed:
                stage = draw.choice(stages)
                started = now - timedelta(hours=2)
                timers.append(
                    {
                        "lead_id": pk,
                        "state": state,
                        "owner_id": rep.pk,
                        "policy_id": policy.pk,
                        "policy_version": 1,
                        "window": "4h",
                        "clock": "calendar",
                        "thresholds": thresholds,
                        "window_business": timedelta(hours=4),
                        "started_at": started,
                        "running_since": started,
                        "warn_at": started + timedelta(hours=3.2),
                        "due_at": started + timedelta(hours=4),
                        "reassign_at": started + timedelta(hours=6),
                        "stage": "pending" if stage == "paused" else stage,
                        "next_fire_at": None if stage == "paused" else now + timedelta(hours=1),
                        "paused_at": now if stage == "paused" else None,
                        "episode": uuid.uuid4(),
                        "episode_owner_ids": [],
                        "auto_reassign_count": 0,
                        "consumed": timedelta(0),
                        "paused_total": timedelta(0),
                        "error_count": 0,
                        "last_error": "",
                        "outcome": "",
                        "created_at": started,
                    }
                )
        insert_rows(Lead, leads, include_pk=True)
        insert_rows(SlaTimer, timers)
        made += size
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:  # as a long-lived database is: vacuumed
            cursor.execute("VACUUM ANALYZE")


def _queries(world: dict, now: datetime) -> list[tuple[str, str, dict]]:
    team, rep = world["teams"][5], world["reps"][77]
    return [
        ("no filter", "crm", {}),
        ("state=NEW", "crm", {"state": "NEW"}),
        ("state=NEGOTIATION", "crm", {"state": "NEGOTIATION"}),
        ("state=WON", "crm", {"state": "WON"}),
        ("market", "crm", {"market": "SG"}),
        ("team", "crm", {"team": team.slug}),
        ("owner", "crm", {"owner": rep.email}),
        ("sla_status=on_track", "crm", {"sla_status": "on_track"}),
        ("sla_status=breached", "crm", {"sla_status": "breached"}),
        ("sla_status=reassigned", "crm", {"sla_status": "reassigned"}),
        ("sla_status=paused", "crm", {"sla_status": "paused"}),
        ("sla_status=no_sla", "crm", {"sla_status": "no_sla"}),
        ("updated_since 1 h", "crm", {"updated_since": _iso(now - timedelta(hours=1))}),
        ("updated_since 30 d", "crm", {"updated_since": _iso(now - timedelta(days=30))}),
        ("updated_since 1 y", "crm", {"updated_since": _iso(now - timedelta(days=365))}),
        ("external_id", "crm", {"external_id": "ext-123456"}),
        (
            "team+state+breached",
            "crm",
            {"team": team.slug, "state": "NEW", "sla_status": "breached"},
        ),
        ("owner+state", "crm", {"owner": rep.email, "state": "CONTACTED"}),
        ("team lead's scope", "teamlead", {}),
        ("team lead + breached", "teamlead", {"sla_status": "breached"}),
    ]


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def _listing(args, port: int, world: dict, build: bool = True) -> bool:
    now = datetime.now(UTC)
    if build:
        with Stopwatch() as built:
            _build(args.rows, world, now)
        print(f"  built {args.rows:,} leads (with open timers) in {built.seconds:.0f} s")
    total = Lead.objects.count()
    print(f"  {total:,} leads in all")
    clients = {"crm": Client(port, world["crm"]), "teamlead": Client(port, world["teamlead"])}
    users = {name: Token.objects.get(key=world[name]).user for name in clients}
    ok, worst = True, 0.0
    for label, who, params in _queries(world, now):
        path = "/api/v1/leads/?" + urlencode(params)
        timings, rows = [], 0
        for _ in range(args.repeat + 2):
            started = time.perf_counter()
            status, body = clients[who].request("GET", path)
            timings.append((time.perf_counter() - started) * 1000)
            if status != 200:
                print(f"    {label}: HTTP {status} {body}")
                return False
            rows = len(body["results"])
        timings = timings[2:]  # the first two warm the caches
        median = statistics.median(timings)
        worst = max(worst, median)
        flag = "" if median <= args.target_ms else "  SLOW"
        ok = ok and median <= args.target_ms
        database = _database_ms(params, users[who], args.plans)
        print(
            f"  GET leads {label:<22} {median:6.1f} ms median, {max(timings):6.1f} ms max, "
            f"{rows:3d} rows{database}{flag}"
        )
    print(f"  list: slowest median {worst:.1f} ms at {total:,} leads (target {args.target_ms} ms)")
    return ok


def _database_ms(params: dict, user, show_plan: bool) -> str:
    """The page's own query, as the view builds it, timed by PostgreSQL (EXPLAIN ANALYZE)."""
    if connection.vendor != "postgresql":
        return ""
    query = LeadQuery(data=params)
    query.is_valid(raise_exception=True)
    page = filter_leads(scope_of(user).filter(leads()), query.validated_data).order_by("-id")
    sql, sql_params = page[:101].query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, sql_params)
        plan = cursor.fetchone()[0][0]
        if show_plan:
            cursor.execute("EXPLAIN (ANALYZE) " + sql, sql_params)
            print("\n".join("      " + row[0] for row in cursor.fetchall()))
    return f" (query {plan['Execution Time']:.1f} ms)"
