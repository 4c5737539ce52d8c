"""Leads, their sources and the activities recorded on them."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Upper
from django.utils import timezone

from teams.history import tracked_history


class LeadState(models.TextChoices):
    NEW = "NEW", "New"
    CONTACTED = "CONTACTED", "Contacted"
    QUALIFIED = "QUALIFIED", "Qualified"
    PROPOSAL = "PROPOSAL", "Proposal"
    NEGOTIATION = "NEGOTIATION", "Negotiation"
    WON = "WON", "Won"
    UNQUALIFIED = "UNQUALIFIED", "Unqualified"
    LOST = "LOST", "Lost"


CLOSED_STATES = frozenset({LeadState.WON, LeadState.UNQUALIFIED, LeadState.LOST})
OPEN_STATES = frozenset(set(LeadState) - CLOSED_STATES)


class ActivityKind(models.TextChoices):
    CALL = "call", "Call"
    EMAIL = "email", "Email"
    MESSAGE = "message", "Message"
    MEETING = "meeting", "Meeting"
    NOTE = "note", "Note"
    VIEW = "view", "View"
    DISQUALIFY = "disqualify", "Disqualify"


class Source(models.Model):
    code = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=100)
    history = tracked_history()

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name


class Lead(models.Model):
    external_id = models.CharField(
        max_length=100,
        null=True,
        blank=True,
        unique=True,
        help_text="Id in the CRM or form tool; creating a lead twice with it returns the first.",
    )
    name = models.CharField(max_length=200)
    company = models.CharField(max_length=200, blank=True)
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=40, blank=True)
    market = models.ForeignKey("teams.Market", on_delete=models.PROTECT, related_name="leads")
    source = models.ForeignKey(Source, on_delete=models.PROTECT, related_name="leads")
    team = models.ForeignKey("teams.Team", on_delete=models.PROTECT, related_name="leads")
    owner = models.ForeignKey(
        "teams.Rep", null=True, blank=True, on_delete=models.PROTECT, related_name="leads"
    )
    state = models.CharField(max_length=12, choices=LeadState.choices, default=LeadState.NEW)
    state_entered_at = models.DateTimeField(default=timezone.now)
    on_hold = models.BooleanField(default=False)
    hold_reason = models.CharField(max_length=200, blank=True)
    hold_until = models.DateTimeField(
        null=True, blank=True, help_text="When the hold ends by itself (optional)."
    )
    held_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    # The admin's "most urgent first" order, copied from the open SLA timer by a database trigger
    # on the timer table (escalations migration `lead_next_stage_at_trigger`), so that every
    # writer of timers, `.update()` and bulk paths included, keeps it in step: the instant of
    # the timer's next stage; past its last stage, its breach instant (still most urgent);
    # NULL when paused or without an open timer. Never written by Python code.
    next_stage_at = models.DateTimeField(null=True, blank=True, editable=False)
    history = tracked_history(excluded_fields=["updated_at", "next_stage_at"])

    class Meta:
        ordering = ["-created_at"]
        permissions = [
            (
                "feed_leads",
                "Can create leads and record activities, transitions and holds through the API",
            )
        ]
        indexes = [
            # Capacity checks count a rep's open leads.
            models.Index(
                fields=["owner"],
                condition=Q(state__in=["NEW", "CONTACTED", "QUALIFIED", "PROPOSAL", "NEGOTIATION"]),
                name="lead_open_by_owner",
            ),
            models.Index(fields=["team", "state"], name="lead_team_state"),
            models.Index(fields=["market", "state"], name="lead_market_state"),
            # The sweep's look for holds due to end (only held leads are in it).
            models.Index(fields=["hold_until"], condition=Q(on_hold=True), name="lead_hold_due"),
            # The admin list, most urgent first (NULLs last, newest first among them); read
            # backwards for the reverse order. Every change of it is a non-HOT update of the
            # lead: the cost shows in `bench sweep` (README, Performance).
            models.Index(fields=["next_stage_at", "-id"], name="lead_next_stage"),
            # The same for one team (a team lead's list, the team filter), deep pages included.
            models.Index(fields=["team", "next_stage_at", "-id"], name="lead_team_next_stage"),
            # The "on hold" filter in that order (a few leads among a million; small index).
            models.Index(
                fields=["next_stage_at", "-id"],
                condition=Q(on_hold=True),
                name="lead_on_hold_next_stage",
            ),
            # The admin list sorted by name (either way, see `LeadChangeList`).
            models.Index(fields=["name", "-id"], name="lead_name_sort"),
            # Admin search by e-mail: `email__iexact` is UPPER(email::text) = UPPER(%s).
            # The trigram indexes for name and company fragments are PostgreSQL-only
            # (migration `lead_search_trigram`).
            models.Index(Upper("email"), name="lead_email_upper"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.company})" if self.company else self.name

    @property
    def is_closed(self) -> bool:
        return self.state in CLOSED_STATES


class Activity(models.Model):
    """Something that happened to a lead: an outbound attempt, a meeting, a note, a view..."""

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="activities")
    kind = models.CharField(max_length=12, choices=ActivityKind.choices)
    actor = models.ForeignKey(
        "teams.Rep", null=True, blank=True, on_delete=models.SET_NULL, related_name="activities"
    )
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    actor_name = models.CharField(max_length=150, blank=True, help_text="Kept if the rep goes.")
    occurred_at = models.DateTimeField()
    recorded_at = models.DateTimeField(default=timezone.now)
    notes = models.TextField(blank=True)
    reason = models.CharField(max_length=300, blank=True)
    counted_as_progress = models.BooleanField(
        default=False, help_text="Whether this activity reset the SLA timer."
    )

    class Meta:
        ordering = ["-occurred_at"]
        verbose_name_plural = "activities"
        indexes = [models.Index(fields=["lead", "occurred_at"], name="activity_lead_time")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} on {self.lead} by {self.actor_name or 'system'}"
