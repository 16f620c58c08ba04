"""The real listeners the tests start on loopback: an SMTP server (aiosmtpd) that keeps what it is sent, and an
HTTP listener that records what webhooks post. The `smtp` and `hook` fixtures (tests/conftest.py) start them."""

from __future__ import annotations

import asyncio
import email
import email.policy
import http.server
import json
import threading

from aiosmtpd.controller import Controller

from tests.helpers import free_port

# --- a real SMTP server ------------------------------------------------------------------------------------------


class Inbox:
    """aiosmtpd handler that keeps every message it accepts.

    With `overlap=n`, the first messages wait for one another until n of them are in flight at once (then
    nothing waits any more): n deliverers certainly send at the same moment, however fast the machine is.
    """

    def __init__(self, overlap: int = 1):
        self.messages: list[tuple[list[str], email.message.EmailMessage, bool]] = []
        self.lock = threading.Lock()
        self.overlap = overlap
        self.arrived = 0
        self.together: asyncio.Event | None = None  # made on the server's event loop

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        if self.overlap > 1:
            if self.together is None:
                self.together = asyncio.Event()
            self.arrived += 1
            if self.arrived >= self.overlap:
                self.together.set()
            await asyncio.wait_for(self.together.wait(), timeout=30)  # keep this client waiting for the others
        msg = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
        with self.lock:
            self.messages.append((list(envelope.rcpt_tos), msg, session.ssl is not None))
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[email.message.EmailMessage]:
        return [m for rcpt, m, _ in self.messages if address in rcpt]


class SmtpServer:
    def __init__(self, port: int | None = None, **kw):
        self.inbox = Inbox(kw.pop("overlap", 1))
        self.port = port or free_port()
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port, **kw)

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()


# --- a real HTTP listener ----------------------------------------------------------------------------------------


class Hook:
    def __init__(self):
        self.requests: list[tuple[str, dict, bytes]] = []
        self.status = 200
        hook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's hook name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                hook.requests.append((self.path, dict(self.headers), body))
                self.send_response(hook.status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/desk"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def posts(self) -> list[dict]:
        return [json.loads(body) for _, _, body in self.requests]


def smtp_config(server: SmtpServer, **extra) -> dict:
    return {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": server.port, **extra}
