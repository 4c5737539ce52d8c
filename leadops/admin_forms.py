"""Admin forms for leads. None of them changes a lead itself: each collects the input of one
lifecycle or reassignment verb, and the verb's refusal comes back as a form error."""

from __future__ import annotations

from django import forms
from django.db import transaction
from django.utils import timezone

from leadops import lifecycle
from leadops.admin_kit import zone
from leadops.models import ActivityKind, Lead, LeadState
from teams.models import Rep


def add_domain_error(form: forms.Form, exc: Exception) -> None:
    """Show a domain refusal on the field it names, else on top of the form."""
    field = getattr(exc, "field", None)
    form.add_error(field if field in form.fields else None, str(exc))


def local_datetime_field(label: str, tz_name: str, *, required=False, help_text=""):
    return forms.DateTimeField(
        label=label,
        required=required,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text=f"{help_text} Local time in {tz_name}.".strip(),
    )


def as_local(value, tz_name: str):
    """The form parsed the wall time in the server's zone (UTC); read it in the market's."""
    if value is None:
        return None
    naive = timezone.make_naive(value) if timezone.is_aware(value) else value
    return timezone.make_aware(naive, zone(tz_name))


class LeadAddForm(forms.ModelForm):
    """Creates the lead through `lifecycle.create_lead` (routing, first timer, audit) once every
    field is valid; the admin then adopts that lead instead of saving the form's instance."""

    actor = None  # set by the admin per request
    created_lead: Lead | None = None

    class Meta:
        model = Lead
        fields = [
            "name",
            "company",
            "email",
            "phone",
            "external_id",
            "market",
            "source",
            "team",
            "owner",
        ]
        help_texts = {"owner": "Empty = routed to an available rep of the team (SPEC §7)."}

    def _post_clean(self):
        super()._post_clean()
        if self.errors:
            return
        data = self.cleaned_data
        try:
            with transaction.atomic():
                self.created_lead = lifecycle.create_lead(
                    name=data["name"],
                    company=data.get("company", ""),
                    email=data.get("email", ""),
                    phone=data.get("phone", ""),
                    external_id=data.get("external_id"),
                    market=data["market"],
                    source=data["source"],
                    team=data["team"],
                    owner=data.get("owner"),
                    actor=self.actor,
                )
        except lifecycle.LifecycleError as exc:
            add_domain_error(self, exc)


class TransitionForm(forms.Form):
    to_state = forms.ChoiceField(label="Move to")
    reason = forms.CharField(
        max_length=300,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        help_text="Required for a disqualification (UNQUALIFIED); stored in the lead's history.",
    )

    def __init__(self, lead: Lead, *args, **kwargs):
        super().__init__(*args, **kwargs)
        labels = dict(LeadState.choices)
        targets = lifecycle.ALLOWED_TRANSITIONS.get(lead.state, frozenset())
        order = list(LeadState.values)
        self.fields["to_state"].choices = [(s, labels[s]) for s in sorted(targets, key=order.index)]


class HoldForm(forms.Form):
    reason = forms.CharField(max_length=200, help_text="What are we waiting for?")

    def __init__(self, lead: Lead, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.tz_name = lead.market.timezone
        self.fields["resume_at"] = local_datetime_field(
            "Resume at",
            self.tz_name,
            help_text="Optional: the SLA clock restarts by itself then (or on the next progress).",
        )

    def clean_resume_at(self):
        return as_local(self.cleaned_data.get("resume_at"), self.tz_name)


class ResumeForm(forms.Form):
    reason = forms.CharField(max_length=200, required=False)


class ReassignForm(forms.Form):
    to_rep = forms.ModelChoiceField(queryset=Rep.objects.none(), label="New owner")

    def __init__(self, lead: Lead, *args, **kwargs):
        super().__init__(*args, **kwargs)
        reps = Rep.objects.filter(team_id=lead.team_id, active=True).order_by("name")
        if lead.owner_id:
            reps = reps.exclude(pk=lead.owner_id)
        self.fields["to_rep"].queryset = reps
        self.fields[
            "to_rep"
        ].help_text = f"Active reps of {lead.team.name}. The new owner gets a fresh SLA window."


class ActivityForm(forms.Form):
    kind = forms.ChoiceField(choices=ActivityKind.choices)
    notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3, "cols": 60}))
    reason = forms.CharField(
        max_length=300, required=False, help_text="Required for a disqualification."
    )

    def __init__(self, lead: Lead, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.tz_name = lead.market.timezone
        self.fields["occurred_at"] = local_datetime_field(
            "Occurred at", self.tz_name, help_text="Empty = now."
        )

    def clean_occurred_at(self):
        return as_local(self.cleaned_data.get("occurred_at"), self.tz_name)
