"""SLA policies and thresholds, timers, reassignments and the notification outbox."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

from escalations.windows import WindowError, parse_window
from leadops.models import LeadState
from teams.history import tracked_history


def _validate_window(value: str) -> None:
    try:
        parse_window(value)
    except WindowError as exc:
        raise ValidationError(str(exc)) from None


class Clock(models.TextChoices):
    BUSINESS = "business", "Business hours"
    CALENDAR = "calendar", "Calendar (wall clock)"


class SlaThresholds(models.Model):
    """The global stage thresholds in percent of the window (one row)."""

    warn_percent = models.PositiveSmallIntegerField(default=80)
    breach_percent = models.PositiveSmallIntegerField(default=100, editable=False)
    reassign_percent = models.PositiveSmallIntegerField(default=150)
    version = models.PositiveIntegerField(default=1, editable=False)
    updated_at = models.DateTimeField(auto_now=True)
    history = tracked_history(excluded_fields=["updated_at"])

    class Meta:
        verbose_name = "SLA thresholds"
        verbose_name_plural = "SLA thresholds"

    def __str__(self) -> str:
        return (
            f"warn {self.warn_percent} % · breach {self.breach_percent} % · "
            f"reassign {self.reassign_percent} % (v{self.version})"
        )

    def clean(self) -> None:
        errors = {}
        if not 0 < self.warn_percent < 100:
            errors["warn_percent"] = "The warning lies strictly between 0 and 100 %."
        if self.breach_percent != 100:
            errors["breach_percent"] = "The breach is the end of the window: always 100 %."
        if self.reassign_percent <= 100:
            errors["reassign_percent"] = "The reassignment lies above 100 %."
        elif self.reassign_percent > 1000:
            errors["reassign_percent"] = "The reassignment cannot lie past 1000 %."
        if errors:
            raise ValidationError(errors)

    def save(self, *args, **kwargs):
        self.pk = 1
        if not self._state.adding or SlaThresholds.objects.filter(pk=1).exists():
            current = SlaThresholds.objects.filter(pk=1).values_list("version", flat=True).first()
            self.version = (current or 0) + 1
            self._state.adding = False
        super().save(*args, **kwargs)

    def as_dict(self) -> dict:
        return {
            "warn": self.warn_percent,
            "breach": self.breach_percent,
            "reassign": self.reassign_percent,
            "version": self.version,
        }


class SlaPolicy(models.Model):
    """How long a lead may stay in a state. The most specific active match wins (SPEC §4)."""

    state = models.CharField(max_length=12, choices=LeadState.choices)
    market = models.ForeignKey(
        "teams.Market",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="policies",
        help_text="Empty = every market.",
    )
    source = models.ForeignKey(
        "leadops.Source",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="policies",
        help_text="Empty = every source.",
    )
    window = models.CharField(
        max_length=16, validators=[_validate_window], help_text="90m, 4h or 2bd (business days)."
    )
    clock = models.CharField(max_length=10, choices=Clock.choices, default=Clock.BUSINESS)
    active = models.BooleanField(default=True)
    version = models.PositiveIntegerField(default=1, editable=False)
    updated_at = models.DateTimeField(auto_now=True)
    history = tracked_history(excluded_fields=["updated_at"])

    class Meta:
        verbose_name = "SLA policy"
        verbose_name_plural = "SLA policies"
        permissions = [("load_org", "Can load the org file (policy as code) through the API")]
        ordering = ["state", "market__code", "source__code"]
        # One row per (state, market, source), NULL meaning "any": four partial unique indexes,
        # because NULLs are distinct in a plain unique constraint (and SQLite has no
        # NULLS NOT DISTINCT).
        constraints = [
            models.UniqueConstraint(
                fields=["state", "market", "source"],
                condition=Q(market__isnull=False, source__isnull=False),
                name="policy_unique_market_source",
                violation_error_message="A policy for this state, market and source exists.",
            ),
            models.UniqueConstraint(
                fields=["state", "market"],
                condition=Q(market__isnull=False, source__isnull=True),
                name="policy_unique_market",
                violation_error_message="A policy for this state and market (any source) exists.",
            ),
            models.UniqueConstraint(
                fields=["state", "source"],
                condition=Q(market__isnull=True, source__isnull=False),
                name="policy_unique_source",
                violation_error_message="A policy for this state and source (any market) exists.",
            ),
            models.UniqueConstraint(
                fields=["state"],
                condition=Q(market__isnull=True, source__isnull=True),
                name="policy_unique_default",
                violation_error_message="A default policy for this state exists.",
            ),
        ]

    def __str__(self) -> str:
        scope = (
            " · ".join(
                part
                for part in (
                    self.market.code if self.market_id else "",
                    self.source.code if self.source_id else "",
                )
                if part
            )
            or "default"
        )
        return f"{self.state} {scope}: {self.window} {self.clock} (v{self.version})"

    def save(self, *args, **kwargs):
        if self.pk is not None and not self._state.adding:
            current = SlaPolicy.objects.filter(pk=self.pk).values_list("version", flat=True).first()
            self.version = (current or 0) + 1
        super().save(*args, **kwargs)

    @property
    def specificity(self) -> int:
        return (2 if self.market_id else 0) + (1 if self.source_id else 0)


class Stage(models.TextChoices):
    PENDING = "pending", "On track"
    WARNED = "warned", "Warned"
    BREACHED = "breached", "Breached"
    REASSIGNED = "reassigned", "Reassign stage passed"


class Outcome(models.TextChoices):
    MET = "met", "Met"
    MET_LATE = "met_late", "Met late"
    REASSIGNED = "reassigned", "Reassigned (a new timer runs for the new owner)"
    CANCELLED = "cancelled", "Cancelled"


class SlaTimer(models.Model):
    """The SLA clock of one lead in one state. `next_fire_at` is the only thing the sweep reads
    to find work: the next instant something is due (NULL when nothing is: paused without a
    resume time, or finished)."""

    # No single-column index on lead: the indexes below start with it, and every index is
    # rewritten on each stage update (no HOT updates: next_fire_at is indexed).
    lead = models.ForeignKey(
        "leadops.Lead", on_delete=models.CASCADE, related_name="timers", db_index=False
    )
    state = models.CharField(max_length=12, choices=LeadState.choices)
    owner = models.ForeignKey(
        "teams.Rep", null=True, blank=True, on_delete=models.PROTECT, related_name="timers"
    )
    policy = models.ForeignKey(SlaPolicy, on_delete=models.PROTECT, related_name="timers")
    policy_version = models.PositiveIntegerField()
    window = models.CharField(max_length=16)
    clock = models.CharField(max_length=10, choices=Clock.choices)
    thresholds = models.JSONField(help_text="warn/breach/reassign percent and version used.")
    window_business = models.DurationField(help_text="The window in business time.")
    started_at = models.DateTimeField()
    warn_at = models.DateTimeField()
    due_at = models.DateTimeField()
    reassign_at = models.DateTimeField()
    stage = models.CharField(max_length=12, choices=Stage.choices, default=Stage.PENDING)
    next_fire_at = models.DateTimeField(null=True, blank=True)
    # Pause bookkeeping: business time used before `running_since`, and the current pause.
    running_since = models.DateTimeField()
    consumed = models.DurationField(default=timedelta)
    paused_at = models.DateTimeField(null=True, blank=True)
    resume_at = models.DateTimeField(null=True, blank=True)
    paused_total = models.DurationField(default=timedelta)
    # Episode: the lead's stay in this state across auto-reassignments (SPEC §7).
    episode = models.UUIDField()
    episode_owner_ids = models.JSONField(default=list, blank=True)
    auto_reassign_count = models.PositiveSmallIntegerField(default=0)
    no_candidate_at = models.DateTimeField(
        null=True, blank=True, help_text="When 'no candidate' was recorded (recorded once)."
    )
    limit_reached_at = models.DateTimeField(null=True, blank=True)
    error_count = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "SLA timer"
        verbose_name_plural = "SLA timers"
        ordering = ["-started_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["lead"],
                condition=Q(completed_at__isnull=True),
                name="one_open_timer_per_lead",
            ),
        ]
        indexes = [
            models.Index(
                fields=["next_fire_at"],
                condition=Q(completed_at__isnull=True),
                name="timer_due_open",
            ),
            models.Index(fields=["lead", "started_at"], name="timer_lead_started"),
            # The SLA status filter (`explain.filter_by_status`, API and admin) from the timer
            # side: the running timers at one stage. Without it a rare status combined with a
            # team walked the leads newest first (~100 ms at a million leads).
            models.Index(
                fields=["stage", "lead"],
                condition=Q(completed_at__isnull=True, paused_at__isnull=True),
                name="timer_open_stage",
            ),
            # For reports on finished timers; partial so that SQLite's planner never picks it
            # for the sweep's "open and due" query (it would scan every open timer).
            models.Index(
                fields=["completed_at"],
                condition=Q(completed_at__isnull=False),
                name="timer_completed",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.state} timer of lead {self.lead_id} ({self.stage})"

    @property
    def is_open(self) -> bool:
        return self.completed_at is None

    @property
    def is_paused(self) -> bool:
        return self.paused_at is not None


class ReassignmentCause(models.TextChoices):
    SLA = "sla", "SLA breach"
    MANUAL = "manual", "Manual"
    REP_INACTIVE = "rep_inactive", "Rep made inactive"
    REVERT = "revert", "Revert"


class Reassignment(models.Model):
    lead = models.ForeignKey("leadops.Lead", on_delete=models.CASCADE, related_name="reassignments")
    timer = models.ForeignKey(
        SlaTimer, null=True, blank=True, on_delete=models.SET_NULL, related_name="reassignments"
    )
    state = models.CharField(max_length=12, choices=LeadState.choices)
    from_rep = models.ForeignKey(
        "teams.Rep", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    to_rep = models.ForeignKey("teams.Rep", on_delete=models.PROTECT, related_name="+")
    cause = models.CharField(max_length=16, choices=ReassignmentCause.choices)
    policy_id_used = models.BigIntegerField(null=True, blank=True)
    policy_version = models.PositiveIntegerField(null=True, blank=True)
    at = models.DateTimeField(default=timezone.now)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=150, default="system")
    candidates = models.JSONField(
        default=list, blank=True, help_text="Every rep considered and why each was passed over."
    )
    reverted_at = models.DateTimeField(null=True, blank=True)
    reverted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reverted_by_name = models.CharField(max_length=150, blank=True)
    revert_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-at"]
        indexes = [
            models.Index(fields=["lead", "at"], name="reassign_lead_time"),
            models.Index(fields=["at"], name="reassign_time"),
        ]

    def __str__(self) -> str:
        return f"Lead {self.lead_id}: {self.from_rep} → {self.to_rep} ({self.cause})"

    @property
    def is_reverted(self) -> bool:
        return self.reverted_at is not None


class NotificationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    SUPERSEDED = "superseded", "Superseded"


class Persona(models.TextChoices):
    OWNER = "owner", "Owner"
    MANAGER = "manager", "Manager"
    OLD_OWNER = "old_owner", "Previous owner"
    NEW_OWNER = "new_owner", "New owner"


# The personas that are a rep (quiet hours apply, a signed link, a DM); the manager is the team.
REP_PERSONAS = frozenset({Persona.OWNER, Persona.OLD_OWNER, Persona.NEW_OWNER})


class MessageKind(models.TextChoices):
    WARNING = "warning", "Warning to owner"
    BREACH = "breach", "Breach to manager"
    REASSIGNED_FROM = "reassigned_from", "Reassigned away from owner"
    REASSIGNED_TO = "reassigned_to", "Reassigned to new owner"
    REASSIGNED_TEAM = "reassigned_team", "Reassignment to team channel"
    REVERTED = "reverted", "Reassignment reverted"
    NO_CANDIDATE = "no_candidate", "No one to reassign to"
    LIMIT_REACHED = "limit_reached", "Reassignment limit reached"
    UNASSIGNED = "unassigned", "New lead without owner"
    DELIVERY_FAILED = "delivery_failed", "Delivery failed"


class Notification(models.Model):
    """The outbox: one row per message, written in the transaction of the step it announces."""

    dedupe_key = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=20, choices=MessageKind.choices)
    persona = models.CharField(max_length=12, choices=Persona.choices)
    # Covered by the (lead, created_at) and (timer, status) indexes below.
    lead = models.ForeignKey(
        "leadops.Lead", on_delete=models.CASCADE, related_name="notifications", db_index=False
    )
    timer = models.ForeignKey(
        SlaTimer,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="notifications",
        db_index=False,
    )
    stage = models.CharField(max_length=12, blank=True)
    recipient = models.ForeignKey(
        "teams.Rep", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    team = models.ForeignKey("teams.Team", on_delete=models.CASCADE, related_name="+")
    status = models.CharField(
        max_length=12, choices=NotificationStatus.choices, default=NotificationStatus.PENDING
    )
    channel = models.CharField(max_length=16, blank=True, help_text="Set when sent.")
    destination = models.CharField(max_length=500, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    lease_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    provider_id = models.CharField(max_length=100, blank=True, help_text="Slack ts, message id.")
    unsure_since = models.DateTimeField(
        null=True,
        blank=True,
        help_text="A send since then may have arrived (a timeout, a worker lost mid-send): "
        "delivery looks for the message before sending it again.",
    )
    context = models.JSONField(default=dict, blank=True, help_text="Facts frozen at the step.")
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status__in=["pending", "sending"]),
                name="notification_due",
            ),
            models.Index(fields=["timer", "status"], name="notification_timer"),
            models.Index(fields=["lead", "created_at"], name="notification_lead"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} → {self.persona} ({self.status})"


class ActionChannel(models.TextChoices):
    LINK = "link", "Signed link"
    SLACK = "slack", "Slack"


class ActionReceipt(models.Model):
    """One rep action taken from a message or a signed link (SPEC §9), under a key that is unique
    in the database: the link form's one-time nonce, or Slack's message and button (or modal).
    The key is claimed by inserting this row in the action's transaction, so a replayed form, a
    Slack retry or a double click finds it taken and records nothing new (no check-then-insert:
    a concurrent twin waits for the first transaction, then its insert fails)."""

    key = models.CharField(max_length=200, unique=True)
    channel = models.CharField(max_length=8, choices=ActionChannel.choices)
    action = models.CharField(max_length=12)
    lead = models.ForeignKey("leadops.Lead", on_delete=models.CASCADE, related_name="+")
    rep = models.ForeignKey(
        "teams.Rep", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    activity = models.ForeignKey(
        "leadops.Activity", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    summary = models.CharField(max_length=300, blank=True, help_text="What the action recorded.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.channel} {self.action} on lead {self.lead_id}"


class SweepRun(models.Model):
    """One run of the escalation sweep (SPEC §10: the status block's "last sweep" and
    `/healthz`): when it ran, how long it took and what it fired. Written by `run_sweep` after
    its batches, not audited (the audit log has an event per step already); older runs are
    pruned (`escalations.sweep_runs`)."""

    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    as_of = models.DateTimeField(help_text="The instant the sweep swept up to (`--now`).")
    correlation_id = models.CharField(max_length=40)
    counts = models.JSONField(default=dict, help_text="What fired (the sweep's result).")

    class Meta:
        verbose_name = "sweep run"
        indexes = [models.Index(fields=["finished_at"], name="sweep_run_finished")]

    def __str__(self) -> str:
        return f"sweep {self.correlation_id} at {self.finished_at:%Y-%m-%d %H:%M:%S}"

    @property
    def duration(self) -> timedelta:
        return self.finished_at - self.started_at
