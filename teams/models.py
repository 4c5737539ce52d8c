"""Markets (with their business calendars), teams, reps, working hours and time off."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from teams import hours as hours_format
from teams.history import tracked_history
from teams.holidays_check import holiday_error


def _validate_timezone(value: str) -> None:
    try:
        hours_format.validate_timezone(value)
    except hours_format.HoursError as exc:
        raise ValidationError(str(exc)) from None


def _validate_week(value) -> None:
    try:
        hours_format.require_some_hours(value)
    except hours_format.HoursError as exc:
        raise ValidationError(str(exc)) from None


def _validate_optional_week(value) -> None:
    if value is not None:
        _validate_week(value)


def _validate_closed_dates(value) -> None:
    try:
        hours_format.parse_closed_dates(value)
    except hours_format.HoursError as exc:
        raise ValidationError(str(exc)) from None


def _validate_open_dates(value) -> None:
    try:
        hours_format.parse_open_dates(value)
    except hours_format.HoursError as exc:
        raise ValidationError(str(exc)) from None


class Market(models.Model):
    """A country or region with its own time zone, opening hours and public holidays."""

    code = models.CharField(max_length=8, unique=True, help_text="Short code, e.g. IN, US, DE.")
    name = models.CharField(max_length=100)
    timezone = models.CharField(
        max_length=64, validators=[_validate_timezone], help_text="IANA zone, e.g. Asia/Kolkata."
    )
    hours = models.JSONField(
        default=dict,
        validators=[_validate_week],
        help_text='Weekly opening hours: {"mon": ["09:00-13:00", "14:00-18:00"], ...}; '
        "a missing day is closed; 24:00 may end an interval.",
    )
    holiday_country = models.CharField(
        max_length=8, blank=True, help_text="Country code for public holidays (holidays package)."
    )
    holiday_subdivision = models.CharField(
        max_length=16, blank=True, help_text="Optional subdivision, e.g. BY for Bavaria."
    )
    extra_closed_dates = models.JSONField(
        default=list,
        blank=True,
        validators=[_validate_closed_dates],
        help_text='Extra closed dates: ["2026-12-31", ...].',
    )
    extra_open_dates = models.JSONField(
        default=list,
        blank=True,
        validators=[_validate_open_dates],
        help_text='Extra open dates: ["2026-12-27"] (usual hours) or '
        '[{"date": "2026-12-27", "hours": ["10:00-14:00"]}].',
    )
    history = tracked_history()

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"

    def clean(self) -> None:
        super().clean()
        if self.holiday_subdivision and not self.holiday_country:
            raise ValidationError({"holiday_subdivision": "A subdivision needs a holiday country."})
        if self.holiday_country:
            error = holiday_error(self.holiday_country, self.holiday_subdivision)
            if error:
                field = "holiday_subdivision" if "subdivision" in error else "holiday_country"
                raise ValidationError({field: error})

    def calendar_fingerprint(self) -> tuple:
        """What the business calendar depends on; a change re-plans the market's timers."""
        return (
            self.timezone,
            hours_format.normalize_week(self.hours),
            self.holiday_country,
            self.holiday_subdivision,
            sorted(str(d) for d in self.extra_closed_dates or []),
            repr(self.extra_open_dates or []),
        )


class Team(models.Model):
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=100)
    market = models.ForeignKey(Market, on_delete=models.PROTECT, related_name="teams")
    slack_channel_id = models.CharField(
        max_length=32, blank=True, help_text="Team channel for breach notices, e.g. C0123ABCD."
    )
    teams_webhook_url = models.URLField(
        max_length=500, blank=True, help_text="Microsoft Teams incoming webhook (optional)."
    )
    history = tracked_history()

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        super().clean()
        if self.pk and self.market_id:
            before = Team.objects.filter(pk=self.pk).values_list("market_id", flat=True).first()
            if before is not None and before != self.market_id and self.leads.exists():
                raise ValidationError(
                    {
                        "market": "This team has leads in its market; moving it would put them "
                        "across markets. Create a new team instead."
                    }
                )


class Role(models.TextChoices):
    REP = "rep", "Rep"
    LEAD = "lead", "Team lead"
    MANAGER = "manager", "Manager"


class RepQuerySet(models.QuerySet):
    def managers_by_team(self, team_ids) -> dict[int, Rep]:
        """The active manager of each team (a team has one at most): who hears of breaches."""
        managers = self.filter(team_id__in=list(team_ids), role=Role.MANAGER, active=True)
        return {rep.team_id: rep for rep in managers}


class Rep(models.Model):
    """A person on a team. Hours and time zone default to the market's when empty."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="rep",
    )
    name = models.CharField(max_length=100)
    email = models.EmailField(unique=True)
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="reps")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.REP)
    slack_user_id = models.CharField(max_length=32, blank=True)
    capacity = models.PositiveIntegerField(
        default=30, help_text="Most open leads this rep should own at once."
    )
    hours = models.JSONField(
        null=True,
        blank=True,
        validators=[_validate_optional_week],
        help_text="Own weekly hours; empty = the market's hours.",
    )
    timezone = models.CharField(
        max_length=64,
        blank=True,
        validators=[_validate_timezone],
        help_text="Own IANA zone; empty = the market's.",
    )
    active = models.BooleanField(default=True)
    last_assigned_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="When a lead was last routed to this rep (fair rotation).",
    )
    history = tracked_history(excluded_fields=["last_assigned_at"])

    objects = RepQuerySet.as_manager()

    class Meta:
        ordering = ["team__slug", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["team"], condition=Q(role="manager"), name="one_manager_per_team"
            ),
        ]
        indexes = [models.Index(fields=["team", "active"], name="rep_team_active")]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        super().clean()
        if self.role == Role.MANAGER and self.team_id:
            others = Rep.objects.filter(team_id=self.team_id, role=Role.MANAGER).exclude(pk=self.pk)
            if others.exists():
                raise ValidationError({"role": f"Team already has a manager: {others.first()}."})

    @property
    def effective_timezone(self) -> str:
        return self.timezone or self.team.market.timezone


class TimeOff(models.Model):
    """Paid time off or any absence; the rep is unavailable from start to end."""

    rep = models.ForeignKey(Rep, on_delete=models.CASCADE, related_name="time_off")
    start = models.DateTimeField()
    end = models.DateTimeField()
    reason = models.CharField(max_length=200, blank=True)
    history = tracked_history()

    class Meta:
        ordering = ["rep", "start"]
        verbose_name = "time off"
        verbose_name_plural = "time off"
        constraints = [
            models.CheckConstraint(
                condition=Q(end__gt=models.F("start")), name="time_off_end_after_start"
            ),
        ]
        indexes = [models.Index(fields=["rep", "end"], name="timeoff_rep_end")]

    def __str__(self) -> str:
        return f"{self.rep} {self.start:%Y-%m-%d}–{self.end:%Y-%m-%d}"

    def clean(self) -> None:
        super().clean()
        if self.start and self.end and self.end <= self.start:
            raise ValidationError({"end": "Time off must end after it starts."})


class ReferenceStamp(models.Model):
    """One row whose `stamp` changes (by database trigger) with every write to the reference
    tables: markets, teams, reps, sources, SLA policies and thresholds, users, groups,
    permissions and API tokens. A process may keep what it read of those tables while the stamp
    is the one it read them under (`teams.reference`)."""

    stamp = models.CharField(max_length=36)

    def __str__(self) -> str:
        return self.stamp
