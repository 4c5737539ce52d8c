"""One sweep in a process of its own, for the fault tests: each process has its own database
connection, as separate qcluster workers do.

    DATABASE_URL=postgres://.../test_x python -m tests.sweep_process 2026-12-02T10:50:00+00:00 200

Prints the sweep's result as JSON on the last line."""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime


def main(argv: list[str]) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadops.settings")
    import django

    django.setup()
    # Imported here: models can only be imported once django.setup() has run.
    from escalations.sweep import run_sweep

    now = datetime.fromisoformat(argv[0])
    batch_size = int(argv[1]) if len(argv) > 1 else None
    print("ready", flush=True)  # set up: a test may now kill this process mid-sweep
    result = run_sweep(now=now, batch_size=batch_size)
    print(json.dumps(result.as_dict()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
