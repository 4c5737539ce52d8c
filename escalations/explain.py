"""Where a lead stands against its SLA, and why (SPEC §8 message facts, §10 "explain SLA",
§12 the API's `sla` object). One computation, shown by the admin's lead page, the signed lead
link page, the notifications and the API, so they never disagree. All durations are business
time on the timer's own clock (wall-clock time for a `calendar` policy).

- `sla_status(lead, timer, now)`: the label, the seed sentence's SLA phrase and the admin's
  "time left" (`SlaStatus.time_left`), all from one business-time figure.
- `status_code(timer)` and `filter_by_status(queryset, code)`: what the sweep has fired on the open
  timer (on track, at risk, breached, reassigned, paused, no SLA), the admin's and the API's
  status filter. "reassigned" is a lead auto-reassigned in its current state whose new owner is
  still on track (at risk and breached say more, so they win), or one at the reassignment limit.
- `hours_minutes(duration)`: business durations in hours and minutes ("40 h", "3 h 05 min"),
  never days: a business day is not 24 hours.
- `explain(lead, now=...)`: every fact of the "explain SLA" panel (policy and version, window,
  thresholds, stage instants, pauses), as values; each interface formats them its way."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.db.models import Exists, OuterRef

from escalations import planning
from escalations.models import SlaPolicy, SlaTimer, Stage
from escalations.policies import Resolved, resolve_for_lead

# --- wording of SLA time -------------------------------------------------------------------------


def duration(value: timedelta) -> str:
    """12 minutes, 1 hour, 3 hours 5 minutes; under a minute: "less than a minute"."""
    minutes = int(value.total_seconds() // 60)
    if minutes < 1:
        return "less than a minute"
    if minutes < 60:
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    hours, minutes = divmod(minutes, 60)
    text = f"{hours} hour{'s' if hours != 1 else ''}"
    return f"{text} {minutes} minute{'s' if minutes != 1 else ''}" if minutes else text


def hours_minutes(value: timedelta | None) -> str:
    """A business duration, compact: "40 h", "3 h 05 min", "12 min", "less than a minute". The
    same figure as `duration` (which the messages use), never in days ("1d 16h" reads as
    calendar days, while 40 business hours are a working week)."""
    if value is None:
        return "—"
    minutes = int(abs(value).total_seconds() // 60)
    if minutes < 1:
        return "less than a minute"
    hours, minutes = divmod(minutes, 60)
    if not hours:
        return f"{minutes} min"
    return f"{hours} h {minutes:02d} min" if minutes else f"{hours} h"


def local_time(instant: datetime, tz: ZoneInfo, now: datetime) -> str:
    """08:00 today, "Mon 08:00" within a week, else "2 Mar 08:00" (in the market's zone)."""
    local = instant.astimezone(tz)
    days = abs((local.date() - now.astimezone(tz).date()).days)
    if days == 0:
        return f"{local:%H:%M}"
    if days < 7:
        return f"{local:%a %H:%M}"
    return f"{local.day} {local:%b %H:%M}"


# --- the SLA status in business time -------------------------------------------------------------


@dataclass(frozen=True)
class SlaStatus:
    label: str  # on track / at risk / breached / paused / no SLA / closed
    phrase: str  # the end of the seed sentence: "SLA breach in 12 minutes"
    elapsed: timedelta | None = None
    remaining: timedelta | None = None  # business time left; negative when overdue
    due: str = ""  # local due time
    window: str = ""
    clock: str = "business"  # "calendar": a wall-clock policy

    @property
    def time_left(self) -> str:
        """The admin's "time left": the messages' figure, compact, saying which clock it is on
        ("business", or "wall-clock" for a calendar policy)."""
        if self.remaining is None:
            return "—"
        kind = "business" if self.clock != "calendar" else "wall-clock"
        if self.label == "paused":
            return f"paused, {hours_minutes(max(self.remaining, timedelta(0)))} {kind} left"
        if self.remaining > timedelta(0):
            return f"breach in {hours_minutes(self.remaining)} {kind}"
        if -self.remaining < timedelta(minutes=1):
            return "breached just now"
        return f"overdue by {hours_minutes(-self.remaining)} {kind}"


def sla_status(lead, timer, now: datetime, context: dict | None = None) -> SlaStatus:
    """Where the lead stands against its SLA at `now`, all in business time. `context` is an
    outbox row's frozen facts (an unowned lead's elapsed time)."""
    tz = ZoneInfo(lead.market.timezone)
    context = context or {}
    if lead.is_closed:
        return SlaStatus("closed", f"closed as {lead.state}")
    if timer is None or timer.state != lead.state:
        seconds = context.get("elapsed_seconds")
        elapsed = timedelta(seconds=seconds) if seconds is not None else None
        return SlaStatus("no SLA", "no SLA", elapsed=elapsed)
    calendar = planning.calendar_for(lead, timer.clock)
    at = min(now, timer.completed_at) if timer.completed_at else now
    elapsed = planning.business_elapsed(timer, at, calendar)
    remaining = timer.window_business - elapsed
    due = local_time(timer.due_at, tz, now)
    common = {
        "elapsed": elapsed,
        "remaining": remaining,
        "due": due,
        "window": timer.window,
        "clock": timer.clock,
    }
    if timer.paused_at is not None:
        return SlaStatus("paused", "SLA paused (on hold)", **common)
    if remaining > timedelta(0):
        label = STATUS_LABELS[status_code(timer)]
        return SlaStatus(label, f"SLA breach in {duration(remaining)}", **common)
    if -remaining < timedelta(minutes=1):
        return SlaStatus("breached", "SLA breached just now", **common)
    return SlaStatus("breached", f"SLA breached, overdue by {duration(-remaining)}", **common)


# --- the status code of the open timer (lists and filters) ---------------------------------------

STATUS_CHOICES = (
    ("on_track", "on track"),
    ("at_risk", "at risk"),
    ("breached", "breached"),
    ("reassigned", "reassigned"),
    ("paused", "paused"),
    ("no_sla", "no SLA"),
)
STATUS_LABELS = dict(STATUS_CHOICES)
STAGE_STATUS = {
    Stage.PENDING: "on_track",
    Stage.WARNED: "at_risk",
    Stage.BREACHED: "breached",
    Stage.REASSIGNED: "reassigned",
}


def status_code(timer: SlaTimer | None) -> str:
    """What the sweep has fired on the open timer (its stage), or paused, or no SLA. A timer
    started by an auto-reassignment (`auto_reassign_count` carried over the episode) is
    "reassigned" until its own warning fires."""
    if timer is None:
        return "no_sla"
    if timer.paused_at is not None:
        return "paused"
    if timer.stage == Stage.PENDING and timer.auto_reassign_count:
        return "reassigned"
    return STAGE_STATUS.get(timer.stage, "on_track")


def open_timers(outer: str = "pk"):
    """The open timer of the lead at `outer` (a subquery for `Exists`)."""
    return SlaTimer.objects.filter(lead_id=OuterRef(outer), completed_at__isnull=True)


def filter_by_status(queryset, code: str, outer: str = "pk"):
    """Leads (or rows pointing at leads through `outer`) whose open timer has status `code`."""
    timers = open_timers(outer)
    if code == "no_sla":
        return queryset.filter(~Exists(timers))
    if code == "paused":
        return queryset.filter(Exists(timers.filter(paused_at__isnull=False)))
    running = timers.filter(paused_at__isnull=True)
    if code == "on_track":
        return queryset.filter(Exists(running.filter(stage=Stage.PENDING, auto_reassign_count=0)))
    if code == "reassigned":
        return queryset.filter(
            Exists(running.filter(stage=Stage.REASSIGNED))
            | Exists(running.filter(stage=Stage.PENDING, auto_reassign_count__gt=0))
        )
    stages = [stage for stage, status in STAGE_STATUS.items() if status == code]
    if not stages:
        return queryset
    return queryset.filter(Exists(running.filter(stage__in=stages)))


# --- the whole explanation -----------------------------------------------------------------------


@dataclass(frozen=True)
class StagePlan:
    name: str  # "warning", "breach", "reassignment"
    percent: int | None
    at: datetime
    reached: bool


@dataclass(frozen=True)
class Explanation:
    """Everything the "explain SLA" panel shows. Without an open timer only `lead`, `status`,
    `code`, `matching` and `last_timer` are set."""

    lead: object
    now: datetime
    status: SlaStatus
    code: str
    matching: Resolved | None  # the policy that would apply to a timer started now
    timer: SlaTimer | None = None
    policy: SlaPolicy | None = None
    elapsed: timedelta | None = None
    remaining: timedelta | None = None
    paused_total: timedelta | None = None
    stages: list[StagePlan] = field(default_factory=list)
    last_timer: SlaTimer | None = None

    @property
    def stale(self) -> bool:
        """A newer policy (or version) matches than the one this timer runs on."""
        timer, matching = self.timer, self.matching
        return (
            timer is not None
            and matching is not None
            and (matching.policy.pk != timer.policy_id or matching.version != timer.policy_version)
        )

    @property
    def no_policy_now(self) -> bool:
        return self.timer is not None and self.matching is None


_UNSET = object()


def open_timer_of(lead) -> SlaTimer | None:
    timer = (
        SlaTimer.objects.filter(lead=lead, completed_at__isnull=True)
        .select_related("policy")
        .first()
    )
    if timer is not None:
        timer.lead = lead
    return timer


def explain(lead, *, now: datetime, timer=_UNSET) -> Explanation:
    """Explain the lead's SLA at `now`. `timer` is its open timer when the caller has it
    already (None = it has none); otherwise it is looked up."""
    if timer is _UNSET:
        timer = open_timer_of(lead)
    matching = None if lead.is_closed else resolve_for_lead(lead)
    status = sla_status(lead, timer, now)
    code = status_code(timer)
    if timer is None:
        last = lead.timers.select_related("policy").order_by("-started_at").first()
        return Explanation(lead, now, status, code, matching, last_timer=last)
    calendar = planning.calendar_for(lead, timer.clock)
    elapsed = planning.business_elapsed(timer, now, calendar)
    paused_for = (now - timer.paused_at) if timer.paused_at else timedelta(0)
    thresholds = timer.thresholds or {}
    reached = {
        "warning": timer.stage in (Stage.WARNED, Stage.BREACHED, Stage.REASSIGNED),
        "breach": timer.stage in (Stage.BREACHED, Stage.REASSIGNED),
        "reassignment": timer.stage == Stage.REASSIGNED,
    }
    stages = [
        StagePlan("warning", thresholds.get("warn"), timer.warn_at, reached["warning"]),
        StagePlan("breach", thresholds.get("breach"), timer.due_at, reached["breach"]),
        StagePlan(
            "reassignment", thresholds.get("reassign"), timer.reassign_at, reached["reassignment"]
        ),
    ]
    return Explanation(
        lead,
        now,
        status,
        code,
        matching,
        timer=timer,
        policy=timer.policy,
        elapsed=elapsed,
        remaining=timer.window_business - elapsed,
        paused_total=timer.paused_total + paused_for,
        stages=stages,
    )
