"""Settings come from the environment and a malformed value stops start-up, naming it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _start(**env) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    environment.update(env, DJANGO_SETTINGS_MODULE="leadops.settings")
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings;"
            " print(settings.DATABASES['default']['ENGINE'],"
            " settings.Q_CLUSTER.get('redis', 'orm'))",
        ],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DEBUG", "maybe", "DEBUG='maybe' is not a boolean"),
        ("DATABASE_URL", "mysqlx://db/leadops", "unknown database scheme 'mysqlx'"),
        ("SWEEP_BATCH_SIZE", "lots", "SWEEP_BATCH_SIZE='lots' is not an integer"),
        ("SWEEP_BATCH_SIZE", "0", "SWEEP_BATCH_SIZE=0 must be at least 1"),
        ("SITE_URL", "localhost:8000", "SITE_URL='localhost:8000' is not a URL"),
        ("REDIS_URL", "127.0.0.1:6379", "REDIS_URL='127.0.0.1:6379' is not a URL"),
        ("Q_RETRY", "100", "Q_RETRY=100 must be greater than Q_TIMEOUT=300"),
    ],
)
def test_malformed_setting_stops_start_up_naming_it(name, value, message):
    result = _start(**{name: value})
    assert result.returncode != 0
    assert message in result.stderr


def test_production_without_secret_key_refuses_to_start():
    result = _start(DEBUG="false", SECRET_KEY="")
    assert result.returncode != 0 and "SECRET_KEY must be set" in result.stderr


def test_defaults_are_sqlite_and_the_orm_broker():
    result = _start()
    assert result.returncode == 0, result.stderr
    # Django's SQLite backend, whose flush lifts the audit triggers (audit/sqlite_backend).
    assert result.stdout.split() == ["audit.sqlite_backend", "orm"]


def test_redis_url_switches_the_queue_to_redis():
    result = _start(
        REDIS_URL="redis://127.0.0.1:6379/0", DATABASE_URL="postgres://postgres@127.0.0.1:5432/test"
    )
    assert result.returncode == 0, result.stderr
    # Django's PostgreSQL backend, whose single-row INSERTs are built once (leadops/db).
    assert result.stdout.split() == ["leadops.db.postgresql", "redis://127.0.0.1:6379/0"]


def test_a_slack_token_without_a_signing_secret_stops_start_up_naming_it():
    result = _start(SLACK_BOT_TOKEN="xoxb-1", SLACK_SIGNING_SECRET="")
    assert result.returncode != 0
    assert "SLACK_SIGNING_SECRET must be set when SLACK_BOT_TOKEN is" in result.stderr


def test_slack_with_a_token_and_a_signing_secret_starts():
    result = _start(SLACK_BOT_TOKEN="xoxb-1", SLACK_SIGNING_SECRET="s3cret")
    assert result.returncode == 0, result.stderr
