"""What a valid org file is (SPEC §13): the sections and fields it may have, how it is read
(YAML or JSON), and the error that lists every problem found, so that nothing is changed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from leadops.models import LeadState

TOP_LEVEL = ("thresholds", "markets", "sources", "teams", "reps", "sla_policies")
FIELDS = {
    "thresholds": {"warn", "breach", "reassign"},
    "markets": {"code", "name", "timezone", "holidays", "hours"},
    "holidays": {"country", "subdivision", "extra_closed", "extra_open"},
    "sources": {"code", "name"},
    "teams": {"slug", "name", "market", "slack_channel", "teams_webhook"},
    "reps": {
        "email",
        "name",
        "team",
        "role",
        "slack_user_id",
        "capacity",
        "hours",
        "timezone",
        "active",
        "pto",
    },
    "pto": {"start", "end", "reason"},
    "sla_policies": {"state", "market", "source", "window", "clock", "active"},
}
STATE_ORDER = {state: i for i, state in enumerate(LeadState.values)}


@dataclass
class OrgFileError(Exception):
    path: str
    errors: list[str]

    def __str__(self) -> str:
        lines = "\n".join(f"  - {e}" for e in self.errors)
        return f"{self.path}: {len(self.errors)} error(s), nothing was changed:\n{lines}"


def read_document(path: str | Path) -> dict:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise OrgFileError(str(path), [f"cannot read the file: {exc.strerror}"]) from None
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise OrgFileError(
            str(path), [f"not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {exc}"]
        ) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise OrgFileError(
            str(path), ["the document must be a mapping with " + ", ".join(TOP_LEVEL)]
        )
    return data


def natural_key(key: str) -> str:
    return {
        "markets": "code",
        "sources": "code",
        "teams": "slug",
        "reps": "email",
        "sla_policies": "state",
    }.get(key, "")


FILE_FIELD = {
    "holiday_country": "holidays.country",
    "holiday_subdivision": "holidays.subdivision",
    "extra_closed_dates": "holidays.extra_closed",
    "extra_open_dates": "holidays.extra_open",
    "slack_channel_id": "slack_channel",
    "teams_webhook_url": "teams_webhook",
    "__all__": None,
}


def file_field(model_field: str) -> str | None:
    return FILE_FIELD.get(model_field, model_field)
