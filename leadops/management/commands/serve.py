"""Run the web app and the django-q2 cluster together in the foreground; Ctrl-C stops both."""

import contextlib
import os
import signal
import subprocess
import sys

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run the web server and the scheduler/worker cluster (qcluster) together."

    def add_arguments(self, parser):
        parser.add_argument("--port", default="8000")
        parser.add_argument("--host", default="0.0.0.0")

    def handle(self, *args, port, host, **options):
        manage = [sys.executable, os.path.join(os.getcwd(), "manage.py")]
        cluster = subprocess.Popen([*manage, "qcluster"])
        web = subprocess.Popen([*manage, "runserver", f"{host}:{port}", "--noreload"])
        children = (web, cluster)

        def stop(*_):
            for child in children:
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)

        signal.signal(signal.SIGTERM, stop)
        try:
            while all(child.poll() is None for child in children):
                with contextlib.suppress(subprocess.TimeoutExpired):
                    web.wait(timeout=1)
        except KeyboardInterrupt:
            pass
        finally:
            stop()
            for child in children:
                try:
                    child.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    child.kill()
        failed = [c for c in children if c.returncode not in (0, -signal.SIGTERM, -signal.SIGINT)]
        if failed:
            raise SystemExit(1)
