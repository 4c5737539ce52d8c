"""The production web server as the README's "Scaling out" runs it: granian, WSGI, one process
with `threads` Python threads. The API benchmark measures it and `tests/test_web_server.py`
checks the API through it; both start it here, over the database of `DATABASE_URL`.

granian rather than gunicorn's gthread worker: the same code, one process on one core, created
15-20 % more leads per second in alternating `bench api` runs (HTTP parsing and connection
handling in Rust threads instead of Python ones; gunicorn's main thread woke for every request
of a keep-alive connection and handed it to a worker thread through the GIL)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.db import connection


def command(*, port: int, threads: int) -> list:
    """The server's command line: one process. More threads than cores on purpose: an API
    request waits on the database a good part of its time (granian warns above 2 x cores + 1;
    error-level logs leave that out)."""
    return [
        *(sys.executable, "-m", "granian", "--interface=wsgi"),
        *("--workers=1", f"--blocking-threads={threads}"),
        *("--host=127.0.0.1", f"--port={port}", "--log-level=error"),
        "leadops.wsgi:application",
    ]


def database_url(application_name: str = "") -> str:
    """A URL of this process's database (the test or benchmark database it switched to), for
    the server's settings; `application_name` names the server's PostgreSQL sessions."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    auth = quote(db["USER"] or "") + (f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else "")
    host = f"{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
    name = f"?application_name={quote(application_name)}" if application_name else ""
    return f"postgres://{auth}@{host}/{db['NAME']}{name}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclasses.dataclass
class Server:
    port: int
    pid: int

    def cpu_seconds(self) -> float | None:
        """CPU time used so far by the server's processes (granian's main process and its
        worker), from /proc; None where there is no /proc."""
        try:
            return sum(process_cpu_seconds(pid) for pid in [self.pid, *_descendants(self.pid)])
        except (OSError, ValueError):
            return None


def _descendants(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [d for child in map(int, children) for d in (child, *_descendants(child))]


def process_cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process of this machine so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def serving(environment: dict, *, threads: int = 8, start_timeout: float = 60):
    """Run the server on a free port of 127.0.0.1 with `environment` added to this process's
    (DATABASE_URL, SECRET_KEY, ...); yield it once it accepts connections, stop it after."""
    port = free_port()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "leadops.settings", **environment}
    process = subprocess.Popen(command(port=port, threads=threads), env=env, cwd=settings.BASE_DIR)
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the web server did not start: {' '.join(process.args)}")
            time.sleep(0.2)
        yield Server(port, process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
