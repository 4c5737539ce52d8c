"""Choosing who gets a lead (SPEC §7): the team boundary, availability (working hours in the
rep's own zone, time off, capacity), earlier owners avoided, and the fair pick. The rule is
`choose`; `load_pool` reads and locks what it needs once, for one lead or a whole sweep batch."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Count, Q

from leadops.models import OPEN_STATES, Lead
from teams.availability import Unavailable, reps_on_time_off, unavailability
from teams.models import Market, Rep, Role, Team


def open_lead_counts(rep_ids) -> dict[int, int]:
    """Each rep's open leads (their load against capacity)."""
    rows = (
        Lead.objects.filter(owner_id__in=list(rep_ids), state__in=list(OPEN_STATES))
        .values("owner_id")
        .annotate(n=Count("id"))
        .values_list("owner_id", "n")
    )
    return dict(rows)


@dataclass
class CandidateSearch:
    chosen: Rep | None
    considered: list[dict] = field(default_factory=list)

    def reasons(self) -> dict[int, str | None]:
        return {entry["rep_id"]: entry["reason"] for entry in self.considered}


def _entry(rep: Rep, reason: str | None, load: int | None = None) -> dict:
    return {
        "rep_id": rep.pk,
        "name": rep.name,
        "team": rep.team.slug,
        "load": load,
        "capacity": rep.capacity,
        "reason": reason,
        "label": Unavailable.LABELS.get(reason, "chosen") if reason else "chosen",
    }


@dataclass
class Pool:
    """Everything candidate selection reads, loaded once for one lead or a whole sweep batch.

    `unavailable` holds the reasons that do not depend on the lead (inactive, on PTO, off
    hours); `loads` the open-lead counts of the reps whose rows this transaction has locked."""

    reps: dict[int, Rep]
    by_team: dict[int, list[Rep]]
    unavailable: dict[int, str | None]
    loads: dict[int, int]

    def take(self, rep: Rep, *, from_rep_id: int | None, now: datetime) -> None:
        """Book an assignment made from this pool, so the next pick in the batch sees it."""
        self.loads[rep.pk] = self.loads.get(rep.pk, 0) + 1
        if from_rep_id in self.loads:
            self.loads[from_rep_id] -= 1
        rep.last_assigned_at = now


def load_pool(leads, now: datetime, *, known_rep_ids=(), lock: bool = True) -> Pool:
    """The reps of the leads' teams (plus `known_rep_ids`, e.g. earlier owners, wherever they
    are now). With `lock`, the rows of every rep who could take a lead are locked in id order
    and their loads counted after the lock: a concurrent sweep waits for this transaction and
    then sees its assignments, so nobody goes over capacity.

    The lock is FOR NO KEY UPDATE (what a plain UPDATE takes), not FOR UPDATE: a foreign-key
    check takes FOR KEY SHARE on the rep a new row names (an audit row's owner, an outbox row's
    recipient; at commit, Django's constraints being deferred), and FOR UPDATE conflicts with
    it. A sweep that had locked team A's reps and was waiting for team B's then deadlocked with
    a sweep holding team B's reps whose commit checked a row naming one of team A's reps (a
    lead owned across teams). NO KEY UPDATE conflicts only with other rep locks, which are
    always taken in id order, and every other lock a sweep takes is SKIP LOCKED."""
    team_ids = {lead.team_id for lead in leads}
    known = set(known_rep_ids) | {lead.owner_id for lead in leads if lead.owner_id}
    reps = list(Rep.objects.filter(Q(team_id__in=team_ids) | Q(pk__in=known)).order_by("pk"))
    # Teams and markets are few: one instance each, shared by their reps (cheaper than a join).
    teams = Team.objects.in_bulk({r.team_id for r in reps})
    markets = Market.objects.in_bulk({t.market_id for t in teams.values()})
    team_market = Team._meta.get_field("market").set_cached_value
    rep_team = Rep._meta.get_field("team").set_cached_value
    for team in teams.values():
        team_market(team, markets[team.market_id])
    for rep in reps:
        rep_team(rep, teams[rep.team_id])
    on_pto = reps_on_time_off([r.pk for r in reps if r.team_id in team_ids], now)
    unavailable = {}
    for rep in reps:
        if rep.team_id in team_ids and rep.role != Role.MANAGER:
            unavailable[rep.pk] = unavailability(rep, now, on_time_off=on_pto)
        else:
            unavailable[rep.pk] = None
    could_take = [
        r.pk
        for r in reps
        if r.team_id in team_ids and r.role != Role.MANAGER and unavailable[r.pk] is None
    ]
    if could_take and lock:
        locked = set(
            Rep.objects.select_for_update(no_key=True)
            .filter(pk__in=could_take, active=True)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        for pk in could_take:
            if pk not in locked:  # made inactive since we read it
                unavailable[pk] = Unavailable.INACTIVE
        could_take = [pk for pk in could_take if pk in locked]
    loads = open_lead_counts(could_take) if could_take else {}
    for pk in could_take:
        loads.setdefault(pk, 0)
    by_team: dict[int, list[Rep]] = {}
    for rep in reps:
        by_team.setdefault(rep.team_id, []).append(rep)
    return Pool({r.pk: r for r in reps}, by_team, unavailable, loads)


def choose(
    lead: Lead, pool: Pool, now: datetime, *, previous_owner_ids=(), exclude_ids=()
) -> CandidateSearch:
    """The rule (SPEC §7), in one place: team boundary, active, not the current owner, in
    working hours, not on PTO, under capacity; earlier owners of the episode only if nobody else
    is free; then the least loaded, then the one assigned longest ago."""
    team_reps = pool.by_team.get(lead.team_id, [])
    known = {*previous_owner_ids, *([lead.owner_id] if lead.owner_id else [])}
    outsiders = [
        pool.reps[pk]
        for pk in sorted(known)
        if pk in pool.reps and pool.reps[pk].team_id != lead.team_id
    ]
    considered: dict[int, dict] = {}
    free: list[Rep] = []
    for rep in [*team_reps, *outsiders]:
        load = pool.loads.get(rep.pk)
        if rep.team_id != lead.team_id:
            reason = Unavailable.OTHER_TEAM
        elif rep.role == Role.MANAGER:
            reason = Unavailable.MANAGER
        elif not rep.active:
            reason = Unavailable.INACTIVE
        elif rep.pk == lead.owner_id or rep.pk in exclude_ids:
            reason = Unavailable.CURRENT_OWNER
        elif pool.unavailable.get(rep.pk):
            reason = pool.unavailable[rep.pk]
        elif load is None:  # not locked for this transaction: cannot be given work safely
            reason = Unavailable.INACTIVE
        elif load >= rep.capacity:
            reason = Unavailable.AT_CAPACITY
        else:
            reason = None
            free.append(rep)
        considered[rep.pk] = _entry(rep, reason, load)
    previous = set(previous_owner_ids)
    fresh = [r for r in free if r.pk not in previous]
    if fresh:
        for rep in free:
            if rep.pk in previous:
                considered[rep.pk] = _entry(rep, Unavailable.PREVIOUS_OWNER, pool.loads[rep.pk])
        free = fresh
    chosen = min(
        free,
        key=lambda r: (
            pool.loads[r.pk],
            r.last_assigned_at is not None,
            r.last_assigned_at or now,
            r.pk,
        ),
        default=None,
    )
    entries = list(considered.values())
    for entry in entries:
        if entry["reason"] is None and (chosen is None or entry["rep_id"] != chosen.pk):
            entry["reason"], entry["label"] = "not_picked", "another rep was less loaded"
        entry["chosen"] = chosen is not None and entry["rep_id"] == chosen.pk
    return CandidateSearch(chosen=chosen, considered=entries)


def find_candidate(
    lead: Lead, now: datetime, *, previous_owner_ids=(), exclude_ids=(), lock: bool = True
) -> CandidateSearch:
    """Choose a rep for `lead` and say, for every rep considered (its team, plus the current
    and earlier owners wherever they are now), why the others were passed over."""
    pool = load_pool([lead], now, known_rep_ids=previous_owner_ids, lock=lock)
    return choose(lead, pool, now, previous_owner_ids=previous_owner_ids, exclude_ids=exclude_ids)
