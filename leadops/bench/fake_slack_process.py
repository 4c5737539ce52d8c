"""A fake Slack Web API in a process of its own, for the delivery benchmark. This module imports
nothing from Django: the `spawn` child imports it before any app is set up."""

from __future__ import annotations

import multiprocessing


def _serve(latency: float, pipe) -> None:
    """Sends its port, then the number of messages received once told to stop."""
    from tests.fakes import FakeSlack  # the test fake, reused; imported only in the child

    with FakeSlack(latency=latency) as fake:
        pipe.send(fake.port)
        pipe.recv()
        pipe.send(len(fake.delivered))


class FakeSlackProcess:
    """The fake Slack in its own process, as the real one is: its parsing and JSON must not
    compete with delivery for this process's GIL."""

    def __init__(self, latency: float):
        context = multiprocessing.get_context("spawn")
        self._pipe, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(latency, child), daemon=True)
        self.delivered = 0
        self.url = ""

    def __enter__(self):
        self._process.start()
        self.url = f"http://127.0.0.1:{self._pipe.recv()}/api/"
        return self

    def __exit__(self, *exc):
        self._pipe.send("stop")
        self.delivered = self._pipe.recv()
        self._process.join(timeout=10)
