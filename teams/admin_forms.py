"""Admin forms for markets and reps: weekly hours as one text field per day
("09:00-13:00, 14:00-18:00"), dates one per line, errors that name the day and the interval.
Parsing and validation are `teams.hours`, the same functions the org file and the calendar use."""

from __future__ import annotations

import zoneinfo

from django import forms

from teams import hours as hours_format
from teams.models import Market, Rep

DAY_NAMES = {
    "mon": "Monday",
    "tue": "Tuesday",
    "wed": "Wednesday",
    "thu": "Thursday",
    "fri": "Friday",
    "sat": "Saturday",
    "sun": "Sunday",
}
HOURS_HELP = (
    "Local time in the zone above. Several intervals are separated by commas: "
    "09:00-13:00, 14:00-18:00. Empty = closed. 24:00 may end an interval; a night shift is "
    "written as two intervals on two days."
)


def _timezone_choices():
    return [(name, name) for name in sorted(zoneinfo.available_timezones())]


def day_field_name(day: str) -> str:
    return f"hours_{day}"


def week_to_text(hours: dict | None) -> dict[str, str]:
    hours = hours or {}
    return {day: ", ".join(hours.get(day) or []) for day in hours_format.WEEKDAYS}


def split_intervals(text: str) -> list[str]:
    return [part.strip() for part in (text or "").replace(";", ",").split(",") if part.strip()]


def split_lines(text: str) -> list[str]:
    items = []
    for line in (text or "").splitlines():
        items.extend(part.strip() for part in line.split(",") if part.strip())
    return items


class ChangeReasonMixin(forms.Form):
    """A "why" stored as the history record's change reason (`obj._change_reason`)."""

    change_reason_required = False
    change_reason = forms.CharField(
        max_length=100,
        required=False,
        help_text="Why this change? Stored in the history with who and when.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.change_reason_required and "change_reason" in self.fields:
            self.fields["change_reason"].required = True
            self.fields[
                "change_reason"
            ].help_text = "Required: why this change? Stored in the history with who and when."


def _day_field(day: str) -> forms.CharField:
    return forms.CharField(
        label=DAY_NAMES[day],
        required=False,
        widget=forms.TextInput(attrs={"size": 40, "placeholder": "closed"}),
        help_text=HOURS_HELP if day == "mon" else "",
    )


class _WeeklyHoursBase(forms.Form):
    hours_attr = "hours"
    hours_optional = False  # a rep without own hours works the market's

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        current = getattr(self.instance, self.hours_attr, None) if self.instance else None
        for day, text in week_to_text(current).items():
            self.initial.setdefault(day_field_name(day), text)

    def clean_week(self) -> dict | None:
        week: dict[str, list[str]] = {}
        for day in hours_format.WEEKDAYS:
            name = day_field_name(day)
            intervals = split_intervals(self.cleaned_data.get(name, ""))
            try:
                parsed = hours_format.parse_day(intervals)
            except hours_format.HoursError as exc:
                self.add_error(name, f"{DAY_NAMES[day]}: {exc}")
                continue
            if parsed:
                week[day] = [hours_format.format_interval(i) for i in parsed]
        if not week:
            if self.hours_optional:
                return None
            self.add_error(
                day_field_name("mon"), "At least one day needs opening hours (e.g. 09:00-18:00)."
            )
        return week


# Declared (not added in __init__) so that admin fieldsets may name them.
WeeklyHoursMixin = forms.forms.DeclarativeFieldsMetaclass(
    "WeeklyHoursMixin",
    (_WeeklyHoursBase,),
    {
        "__module__": __name__,
        "__doc__": "Seven `hours_<day>` text fields edited as one weekly-hours JSON value.",
        **{day_field_name(day): _day_field(day) for day in hours_format.WEEKDAYS},
    },
)


class MarketForm(WeeklyHoursMixin, ChangeReasonMixin, forms.ModelForm):
    timezone = forms.ChoiceField(
        choices=_timezone_choices, help_text="IANA zone; all times of this market are local to it."
    )
    closed_dates = forms.CharField(
        label="Extra closed dates",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 40, "placeholder": "2026-12-31"}),
        help_text="One date per line (YYYY-MM-DD), closed on top of the public holidays.",
    )
    open_dates = forms.CharField(
        label="Extra open dates",
        required=False,
        widget=forms.Textarea(
            attrs={"rows": 3, "cols": 40, "placeholder": "2026-12-27 10:00-14:00"}
        ),
        help_text="One date per line, open even if a holiday or weekend: '2026-12-27' (that "
        "weekday's usual hours) or '2026-12-27 10:00-14:00, 15:00-17:00' (own hours).",
    )

    class Meta:
        model = Market
        fields = ["code", "name", "timezone", "holiday_country", "holiday_subdivision"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        market = self.instance
        self.initial.setdefault(
            "closed_dates", "\n".join(str(d) for d in (market.extra_closed_dates or []))
        )
        lines = []
        for entry in market.extra_open_dates or []:
            if isinstance(entry, dict):
                hours = ", ".join(entry.get("hours") or [])
                lines.append(f"{entry.get('date')} {hours}".strip())
            else:
                lines.append(str(entry))
        self.initial.setdefault("open_dates", "\n".join(lines))

    def clean(self):
        cleaned = super().clean()
        week = self.clean_week()
        closed = []
        for n, item in enumerate(split_lines(cleaned.get("closed_dates", "")), start=1):
            try:
                closed.append(hours_format.parse_date(item))
            except hours_format.HoursError as exc:
                self.add_error("closed_dates", f"Line {n}: {exc}")
        open_dates = []
        for n, line in enumerate((cleaned.get("open_dates") or "").splitlines(), start=1):
            line = line.strip()
            if not line:
                continue
            day_text, _, hours_text = line.partition(" ")
            try:
                day = hours_format.parse_date(day_text)
                if hours_text.strip():
                    parsed = hours_format.parse_day(split_intervals(hours_text))
                    open_dates.append(
                        {
                            "date": day.isoformat(),
                            "hours": [hours_format.format_interval(i) for i in parsed],
                        }
                    )
                else:
                    open_dates.append(day.isoformat())
            except hours_format.HoursError as exc:
                self.add_error("open_dates", f"Line {n} ({line}): {exc}")
        if not self.errors:
            # Not form fields: set on the instance before the model's own validation runs.
            self.instance.hours = week
            self.instance.extra_closed_dates = [d.isoformat() for d in sorted(set(closed))]
            self.instance.extra_open_dates = sorted(
                open_dates, key=lambda e: e["date"] if isinstance(e, dict) else e
            )
        return cleaned


class RepForm(WeeklyHoursMixin, ChangeReasonMixin, forms.ModelForm):
    hours_optional = True

    class Meta:
        model = Rep
        fields = [
            "name",
            "email",
            "user",
            "team",
            "role",
            "slack_user_id",
            "capacity",
            "timezone",
            "active",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if day_field_name("mon") in self.fields:  # absent on a read-only page
            self.fields[day_field_name("mon")].help_text = (
                "Leave every day empty to work the market's hours. " + HOURS_HELP
            )

    def clean(self):
        cleaned = super().clean()
        week = self.clean_week()
        if not self.errors:
            self.instance.hours = week
        return cleaned
