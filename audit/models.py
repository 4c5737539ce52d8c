"""The append-only audit log: one row per escalation step, hold, progress or delivery."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class AuditImmutableError(Exception):
    """Raised on any attempt to change or delete an audit row."""


class AuditKind(models.TextChoices):
    SLA_WARNING = "sla_warning", "SLA warning"
    SLA_BREACH = "sla_breach", "SLA breach"
    SLA_BREACH_AUTO_REASSIGN = "sla_breach_auto_reassign", "Auto-reassigned after breach"
    REASSIGN_NO_CANDIDATE = "reassign_no_candidate", "No one to reassign to"
    REASSIGN_LIMIT_REACHED = "reassign_limit_reached", "Reassignment limit reached"
    REASSIGNMENT_REVERTED = "reassignment_reverted", "Reassignment reverted"
    LEAD_ASSIGNED = "lead_assigned", "Lead assigned"
    SLA_PAUSED = "sla_paused", "SLA paused"
    SLA_RESUMED = "sla_resumed", "SLA resumed"
    SLA_MET = "sla_met", "SLA met"
    SLA_CANCELLED = "sla_cancelled", "SLA cancelled"
    SLA_REPLANNED = "sla_replanned", "SLA re-planned"
    NOTIFICATION_SENT = "notification_sent", "Notification sent"
    NOTIFICATION_FAILED = "notification_failed", "Notification failed"
    PROGRESS_RECORDED = "progress_recorded", "Progress recorded"
    POLICY_CHANGED = "policy_changed", "SLA policy changed"
    THRESHOLDS_CHANGED = "thresholds_changed", "SLA thresholds changed"
    CALENDAR_CHANGED = "calendar_changed", "Business calendar changed"
    REP_DEACTIVATED = "rep_deactivated", "Rep made inactive"
    SLACK_ACTION = "slack_action", "Slack action"


class AuditQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AuditImmutableError("audit events cannot be updated")

    def delete(self):
        raise AuditImmutableError("audit events cannot be deleted")

    def bulk_update(self, objs, fields, batch_size=None):
        raise AuditImmutableError("audit events cannot be updated")

    def update_or_create(self, *args, **kwargs):
        raise AuditImmutableError("audit events cannot be updated")

    _raw_delete = delete


def _no_constraint_fk(model, related_name="+", **kwargs):
    # The log outlives what it describes: no cascade, no database constraint, the id stays.
    return models.ForeignKey(
        model,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name=related_name,
        **kwargs,
    )


class AuditEvent(models.Model):
    kind = models.CharField(max_length=32, choices=AuditKind.choices, db_index=True)
    occurred_at = models.DateTimeField(default=timezone.now)
    recorded_at = models.DateTimeField(default=timezone.now)
    actor_user = _no_constraint_fk(settings.AUTH_USER_MODEL)
    actor_name = models.CharField(max_length=150, default="system")
    correlation_id = models.CharField(max_length=40, blank=True, help_text="Sweep run or request.")
    lead = _no_constraint_fk("leadops.Lead", related_name="audit_events")
    team = _no_constraint_fk("teams.Team")
    timer = _no_constraint_fk("escalations.SlaTimer", related_name="audit_events")
    # When the event's timer started: calibration reads the log by the period a timer started
    # in (SPEC §11) without reaching into the escalations app's tables.
    timer_started_at = models.DateTimeField(null=True, blank=True)
    owner = _no_constraint_fk("teams.Rep")
    lead_label = models.CharField(max_length=200, blank=True)
    owner_name = models.CharField(max_length=100, blank=True)
    state = models.CharField(max_length=12, blank=True)
    policy_id = models.BigIntegerField(null=True, blank=True)
    policy_version = models.PositiveIntegerField(null=True, blank=True)
    thresholds = models.JSONField(null=True, blank=True)
    window = models.CharField(max_length=16, blank=True)
    elapsed = models.DurationField(null=True, blank=True, help_text="Business time elapsed.")
    stage_due_at = models.DateTimeField(null=True, blank=True)
    details = models.JSONField(default=dict, blank=True)

    objects = AuditQuerySet.as_manager()

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(fields=["lead", "occurred_at"], name="audit_lead_time"),
            models.Index(fields=["occurred_at"], name="audit_time"),
            models.Index(fields=["kind", "occurred_at"], name="audit_kind_time"),
            models.Index(fields=["team", "occurred_at"], name="audit_team_time"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} · {self.lead_label} · {self.occurred_at:%Y-%m-%d %H:%M}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AuditImmutableError("audit events cannot be updated")
        kwargs["force_insert"] = True
        return super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AuditImmutableError("audit events cannot be deleted")


class TimerSummary(models.Model):
    """One row per timer: what its events say (derived from the log by database triggers, see
    audit/timer_summary.py; never written by the app). Read by the calibration report."""

    pk = models.CompositePrimaryKey("timer_started_at", "timer_id")
    timer_started_at = models.DateTimeField()
    timer_id = models.BigIntegerField()
    lead_id = models.BigIntegerField(null=True)
    market_id = models.BigIntegerField(null=True)
    source_id = models.BigIntegerField(null=True)
    team_id = models.BigIntegerField(null=True)
    state = models.CharField(max_length=12, null=True)
    policy_id = models.BigIntegerField(null=True)
    policy_version = models.PositiveIntegerField(null=True)
    window = models.CharField(max_length=16, null=True)
    n_timer = models.IntegerField(default=0)
    n_settled = models.IntegerField(default=0)
    n_breach = models.IntegerField(default=0)
    n_met = models.IntegerField(default=0)
    n_met_late = models.IntegerField(default=0)
    n_cancelled = models.IntegerField(default=0)
    n_auto = models.IntegerField(default=0)
    n_revert = models.IntegerField(default=0)
    n_no_candidate = models.IntegerField(default=0)
    n_limit = models.IntegerField(default=0)
    progress_elapsed = models.DurationField(null=True)
    met_at = models.DateTimeField(null=True)
    breach_at = models.DateTimeField(null=True)
    reassign_at = models.DateTimeField(null=True)

    def __str__(self) -> str:
        return f"timer {self.timer_id} ({self.timer_started_at:%Y-%m-%d %H:%M})"


class TimerMessage(models.Model):
    """One narrow row per notification event of a timer (derived like `TimerSummary`)."""

    event_id = models.BigIntegerField(primary_key=True)
    timer_started_at = models.DateTimeField()
    timer_id = models.BigIntegerField(null=True)
    market_id = models.BigIntegerField(null=True)
    team_id = models.BigIntegerField(null=True)
    failed = models.BooleanField()
    persona = models.TextField(null=True)
    message_kind = models.TextField(null=True)
    occurred_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["timer_started_at"], name="audit_message_period")]

    def __str__(self) -> str:
        return f"{self.persona} · {self.message_kind} · timer {self.timer_id}"
