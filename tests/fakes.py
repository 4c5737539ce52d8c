"""Fake HTTP services on 127.0.0.1 for wire-level tests and the delivery benchmark.

`FakeSlack` answers the Slack Web API (`/api/auth.test`, `/api/chat.postMessage` with message
`metadata` kept per conversation, `/api/conversations.open`, `/api/conversations.history` with
`include_all_metadata`, and any other method with `{"ok": true}`); `FakeWebhook` answers Teams
incoming webhooks. Both record every request and can be told to answer the next requests with
scripted replies (errors, 429s, a `delay` after acting: slower than the client's timeout), or
to answer at random with `Faults`."""

from __future__ import annotations

import itertools
import json
import random
import socket
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit


@dataclass
class Reply:
    status: int = 200
    body: object = None  # dict -> JSON; str -> as is; None -> the default answer
    headers: dict = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait after acting on the request, before answering
    drop: bool = False  # act on the request, then close the connection without answering


@dataclass
class Faults:
    """Random replies to the methods in `methods`: `error` of them a 500, `rate_limited` a 429
    with `Retry-After: retry_after`, `slow` acted on and then answered `slow_by` seconds late
    (set it past the client's timeout). Seeded, so a failing run can be replayed."""

    error: float = 0.0
    rate_limited: float = 0.0
    slow: float = 0.0
    slow_by: float = 1.0
    retry_after: int = 1
    methods: frozenset = frozenset({"chat.postMessage"})
    seed: int = 14

    def __post_init__(self):
        self._random = random.Random(self.seed)

    def reply(self, method: str) -> Reply | None:
        if method not in self.methods:
            return None
        roll = self._random.random()
        if roll < self.error:
            return Reply(500)
        if roll < self.error + self.rate_limited:
            return Reply(429, headers={"Retry-After": str(self.retry_after)})
        if roll < self.error + self.rate_limited + self.slow:
            return Reply(200, delay=self.slow_by)
        return None


@dataclass
class Request:
    path: str
    headers: dict
    body: bytes

    @property
    def json(self):
        """The JSON body, or a form-encoded body / query string as a dict."""
        if self.body[:1] in (b"{", b"["):
            return json.loads(self.body)
        if self.body:
            return dict(parse_qsl(self.body.decode()))
        query = urlsplit(self.path).query
        return dict(parse_qsl(query)) if query else None

    @property
    def method(self) -> str:
        return urlsplit(self.path).path.rsplit("/", 1)[-1]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the default 5 drops SYNs under concurrent clients: 1 s stalls


class _FakeServer:
    """A threading HTTP server with a script of replies and a log of requests."""

    def __init__(self, latency: float = 0.0):
        self.latency = latency
        self.requests: list[Request] = []
        self._script: deque[Reply] = deque()
        self._lock = threading.Lock()
        self.faults: Faults | None = None
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802 (the http.server API)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = Request(self.path, dict(self.headers.items()), body)
                if fake.latency:
                    time.sleep(fake.latency)
                with fake._lock:
                    fake.requests.append(request)
                    reply = fake._script.popleft() if fake._script else None
                    if reply is None and fake.faults is not None:
                        reply = fake.faults.reply(request.method)
                delay = reply.delay if reply is not None else 0.0
                drop = reply is not None and reply.drop
                reply = fake.answer(request, reply)
                if delay:
                    time.sleep(delay)  # acted on, answered late: the client may be gone
                if drop:  # acted on, then the connection is reset: no answer at all
                    self.close_connection = True
                    self.connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
                    return
                try:
                    self._write(reply)
                except OSError:
                    self.close_connection = True

            do_GET = do_POST  # noqa: N815 (conversations.history is a GET)

            def _write(self, reply: Reply) -> None:
                payload = reply.body
                if isinstance(payload, dict | list):
                    payload = json.dumps(payload)
                data = (payload or "").encode()
                self.send_response(reply.status)
                content_type = (
                    "application/json"
                    if reply.body is None or isinstance(reply.body, dict | list)
                    else "text/plain"
                )
                self.send_header("Content-Type", content_type)
                for name, value in reply.headers.items():
                    self.send_header(name, str(value))
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format, *args):  # quiet
                pass

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def answer(self, request: Request, reply: Reply | None) -> Reply:
        if reply is not None and (reply.body is not None or reply.status != 200):
            return reply
        return Reply(200, "1")

    def then(self, *replies: Reply) -> _FakeServer:
        """Answer the next requests with these replies, in order (then the default again)."""
        with self._lock:
            self._script.extend(replies)
        return self

    def start(self):
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


RESPONSE_PATH = "response"
SLACK_APP_METHODS = frozenset({"views.open", "views.publish", "chat.update", "chat.postEphemeral"})


class FakeSlack(_FakeServer):
    """The Slack Web API. Point a client at it with `base_url=fake.url`."""

    def __init__(self, latency: float = 0.0):
        super().__init__(latency)
        self._ts = itertools.count(1)
        self.delivered: list[dict] = []  # chat.postMessage bodies acted on (posted)
        self.conversations: dict[str, list[dict]] = {}  # channel id -> messages, oldest first

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def answer(self, request: Request, reply: Reply | None) -> Reply:
        if reply is not None and reply.body is not None:
            return reply
        status = reply.status if reply is not None else 200
        if status != 200:
            return Reply(status, "", reply.headers)
        if request.method == "auth.test":
            body = {"ok": True, "user_id": "UBOT", "team_id": "T0", "bot_id": "B0"}
        elif request.method == "chat.postMessage":
            payload = request.json or {}
            channel = self.conversation_id(payload.get("channel") or "")
            with self._lock:
                message = {
                    "type": "message",
                    "ts": self._next_ts(),
                    "text": payload.get("text", ""),
                    "blocks": payload.get("blocks") or [],
                }
                if payload.get("metadata"):
                    message["metadata"] = payload["metadata"]
                self.conversations.setdefault(channel, []).append(message)
                self.delivered.append(payload)
            body = {"ok": True, "channel": channel, "ts": message["ts"], "message": message}
        elif request.method == "conversations.open":
            user = (request.json or {}).get("users", "")
            body = {"ok": True, "channel": {"id": self.conversation_id(user)}}
        elif request.method == "conversations.history":
            body = self.history(request.json or {})
        elif request.method in SLACK_APP_METHODS:
            body = self.answer_app(request)
        else:
            body = {"ok": True}
        return Reply(200, body, reply.headers if reply is not None else {})

    @property
    def posts(self) -> list[Request]:
        """Every chat.postMessage request, whatever the answer."""
        return [r for r in self.requests if r.method == "chat.postMessage"]

    @staticmethod
    def conversation_id(channel: str) -> str:
        """A user id names the bot's DM with that user ("ULENA" -> "DULENA"), as in Slack."""
        return f"D{channel}" if channel[:1] in ("U", "W") else channel

    def _next_ts(self) -> str:
        # Slack's ts: the posting time in seconds, made unique by the fraction.
        return f"{int(time.time())}.{next(self._ts):06d}"

    def history(self, params: dict) -> dict:
        """conversations.history: newest first, from `oldest`, `limit` per page with a cursor;
        metadata only with include_all_metadata (as in Slack)."""
        channel = params.get("channel", "")
        with self._lock:
            found = list(reversed(self.conversations.get(channel, [])))
        oldest = float(params.get("oldest") or 0)
        found = [m for m in found if float(m["ts"]) >= oldest]
        start = int(params.get("cursor") or 0)
        limit = int(params.get("limit") or 100)
        page = found[start : start + limit]
        if str(params.get("include_all_metadata")).lower() not in ("1", "true"):
            page = [{k: v for k, v in m.items() if k != "metadata"} for m in page]
        more = start + limit < len(found)
        return {
            "ok": True,
            "messages": page,
            "has_more": more,
            "response_metadata": {"next_cursor": str(start + limit) if more else ""},
        }

    def posted(self) -> list[dict]:
        """Every message Slack has, in every conversation."""
        with self._lock:
            return [m for messages in self.conversations.values() for m in messages]

    # --- the Slack app's calls (views, chat.update, a payload's response_url) -----------------

    def answer_app(self, request: Request) -> dict:
        payload = (request.json or {}) if request.body[:1] == b"{" else {}
        if request.method in ("views.open", "views.publish"):
            view = payload.get("view") or {}
            if isinstance(view, str):
                view = json.loads(view)
            return {"ok": True, "view": {**view, "id": f"V{next(self._ts):06d}", "hash": "h1"}}
        if request.method == "chat.update":
            return {"ok": True, "channel": payload.get("channel"), "ts": payload.get("ts")}
        if request.method == "chat.postEphemeral":
            return {"ok": True, "message_ts": f"1700000000.{next(self._ts):06d}"}
        return {"ok": True}

    def response_url(self, name: str = "r1") -> str:
        """A URL like a payload's `response_url`, answered by this server and recorded."""
        return f"http://127.0.0.1:{self.port}/{RESPONSE_PATH}/{name}"

    def calls(self, method: str) -> list[Request]:
        """Requests to one Web API method ("views.open") or to response URLs ("response")."""
        if method == "response":
            return [r for r in self.requests if r.path.startswith(f"/{RESPONSE_PATH}/")]
        return [r for r in self.requests if r.path == f"/api/{method}"]


class FakeWebhook(_FakeServer):
    """A Microsoft Teams incoming webhook: answers "1" (HTTP 200) unless told otherwise."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhook/teams-test"
