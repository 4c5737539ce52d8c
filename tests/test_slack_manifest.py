"""The Slack app manifest an ops person installs matches what the app serves."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import yaml
from django.urls import reverse

from escalations.notify.messages import (
    ACTION_DISQUALIFY,
    ACTION_LOG_CALL,
    ACTION_LOG_EMAIL,
    ACTION_OPEN,
)
from escalations.slack import handlers

MANIFEST = Path(__file__).resolve().parent.parent / "escalations" / "slack" / "manifest.yaml"


def test_the_manifest_points_slack_at_the_events_url_with_home_and_interactivity():
    manifest = yaml.safe_load(MANIFEST.read_text())
    settings = manifest["settings"]
    urls = [
        settings["event_subscriptions"]["request_url"],
        settings["interactivity"]["request_url"],
    ]
    assert {urlparse(url).path for url in urls} == {reverse("slack_events")}
    assert all(urlparse(url).scheme == "https" for url in urls)
    assert settings["interactivity"]["is_enabled"] is True
    assert settings["event_subscriptions"]["bot_events"] == ["app_home_opened"]
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True
    assert {"chat:write", "im:write"} <= set(manifest["oauth_config"]["scopes"]["bot"])


def test_every_button_in_the_messages_has_a_listener():
    class Recorder:
        def __init__(self):
            self.actions, self.views, self.events = [], [], []

        def action(self, name):
            self.actions.append(name)
            return lambda f: f

        def view(self, name):
            self.views.append(name)
            return lambda f: f

        def event(self, name):
            self.events.append(name)
            return lambda f: f

    app = Recorder()
    handlers.register(app)
    assert set(app.actions) == {ACTION_OPEN, ACTION_LOG_CALL, ACTION_LOG_EMAIL, ACTION_DISQUALIFY}
    assert app.events == ["app_home_opened"]
    assert app.views == ["lead_disqualify_submit"]
