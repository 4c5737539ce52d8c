"""`/slack/events`: Slack's Events API and interactivity (buttons, modals) on one URL."""

from __future__ import annotations

from django.http import HttpResponseNotAllowed, HttpResponseNotFound
from django.views.decorators.csrf import csrf_exempt

from escalations.slack.app import SlackNotConfigured, request_handler


@csrf_exempt  # Slack signs its requests; the signature is checked instead (app.py)
def events(request):
    try:
        handler = request_handler()
    except SlackNotConfigured as exc:
        return HttpResponseNotFound(f"{exc}\n", content_type="text/plain; charset=utf-8")
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    return handler.handle(request)
