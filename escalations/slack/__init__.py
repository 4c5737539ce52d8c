"""The Slack app (SPEC §9): `/slack/events` served by slack-bolt's Django adapter.

- `app.py`: the Bolt App, built once (per configuration), lazily, from settings.
- `handlers.py`: thin listeners: buttons, the disqualify modal, `app_home_opened`; they call
  `escalations.actions` and hand what Slack must be told afterwards to `tasks.py`.
- `blocks.py`: reading button values and payload keys; the modal and the updated message.
- `home.py`: the App Home view (the rep's open leads, most urgent first).
- `tasks.py`: django-q2 tasks that post to Slack after the ack (response_url, views.publish).
- `views.py`: the Django view; `manifest.yaml`: the app's manifest for installing it.

No domain module imports this package."""
