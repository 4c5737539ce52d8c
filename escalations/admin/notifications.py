"""The notification outbox, read-only. A row's page shows the message as its recipient saw it
(or will see it), rendered by the delivery's own renderer (`escalations.notify.messages`)."""

from __future__ import annotations

from django.contrib import admin
from django.template.loader import render_to_string
from django.utils import timezone

from escalations.explain import open_timer_of
from escalations.models import REP_PERSONAS, Notification
from escalations.notify import messages
from leadops.admin_kit import (
    LargeTableAdminMixin,
    ReadOnlyAdminMixin,
    ScopedAdminMixin,
    lead_link,
    local_html,
    local_text,
    team_filter,
)


@admin.register(Notification)
class NotificationAdmin(
    ReadOnlyAdminMixin, LargeTableAdminMixin, ScopedAdminMixin, admin.ModelAdmin
):
    team_path = "team"
    ordering = ("-id",)  # `created_at` has no index of its own
    list_display = (
        "created_local",
        "kind",
        "persona",
        "lead_col",
        "recipient",
        "status",
        "channel",
        "attempts",
        "next_attempt_local",
        "error_short",
    )
    list_filter = ("status", "channel", "kind", "persona", team_filter("team"))
    search_fields = ("lead__name", "lead__company", "destination", "dedupe_key", "provider_id")
    list_select_related = ("lead", "recipient", "team__market")
    readonly_fields = (
        "rendered_message",
        "lead_col",
        "created_local",
        "next_attempt_local",
        "sent_local",
    )
    fieldsets = (
        ("Message", {"fields": ("rendered_message",)}),
        (
            "Delivery",
            {
                "fields": (
                    ("kind", "persona"),
                    "lead_col",
                    ("recipient", "team"),
                    ("status", "channel"),
                    "destination",
                    ("attempts", "next_attempt_local"),
                    "last_error",
                    "provider_id",
                    ("created_local", "sent_local"),
                )
            },
        ),
        (
            "Record",
            {"fields": ("stage", "dedupe_key", "context"), "classes": ("collapse",)},
        ),
    )

    def _tz(self, obj):
        return obj.team.market.timezone

    @admin.display(description="Created", ordering="created_at")
    def created_local(self, obj):
        return local_html(obj.created_at, self._tz(obj))

    @admin.display(description="Next attempt", ordering="next_attempt_at")
    def next_attempt_local(self, obj):
        if obj.status not in ("pending", "sending"):
            return "—"
        return local_html(obj.next_attempt_at, self._tz(obj))

    @admin.display(description="Sent")
    def sent_local(self, obj):
        return local_html(obj.sent_at, self._tz(obj))

    @admin.display(description="As the recipient saw it")
    def rendered_message(self, obj):
        """Rendered at the instant it was sent (or now, for a message still to go), with the
        lead's timer as delivery picks it. A rep's signed link is not shown: it would let the
        reader act as that rep."""
        tz = self._tz(obj)
        if obj.sent_at is not None:
            at, when = obj.sent_at, f"As sent on {local_text(obj.sent_at, tz)}"
        else:
            at = timezone.now()
            when = f"Not sent ({obj.status}): as it would read now, {local_text(at, tz)}"
        timer = open_timer_of(obj.lead) if obj.sent_at is None else None
        timer = timer or obj.timer
        if timer is not None:
            timer.lead = obj.lead
        context = {"when": when}
        try:
            message = messages.render(obj, now=at, timer=timer)
        except Exception as exc:  # a row the renderer cannot read must not break its page
            context["error"] = f"Cannot render this message: {type(exc).__name__}: {exc}"
            return render_to_string("admin/escalations/notification/rendered.html", context)
        signed = obj.persona in REP_PERSONAS and obj.recipient_id is not None
        context.update(
            message=message,
            for_whom=message.recipient_name if obj.persona in REP_PERSONAS else "",
            link=(
                f"a signed link for {message.recipient_name} (not shown here)"
                if signed
                else message.link
            ),
        )
        return render_to_string("admin/escalations/notification/rendered.html", context)

    @admin.display(description="Lead", ordering="lead__name")
    def lead_col(self, obj):
        return lead_link(obj.lead)

    @admin.display(description="Last error")
    def error_short(self, obj):
        text = obj.last_error or ""
        return text if len(text) <= 80 else text[:79] + "…"
