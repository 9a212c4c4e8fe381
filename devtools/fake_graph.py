"""A local stand-in for Facebook's Graph API (Messenger), for the end-to-end test and screenshots.

What it answers, with the shapes of the real API:

* ``POST /v18.0/me/messages`` (the Send API): records the body and answers
  ``{"recipient_id", "message_id"}``; :meth:`FakeGraph.messages_to` lists what a PSID received;
* ``GET /v18.0/me?fields=recipient&account_linking_token=...``: the PSID Messenger made that
  token for (:meth:`FakeGraph.tap` plays a Messenger user tapping the log-in button), else a
  Graph error 400.

The page token must come in the ``Authorization`` header (a token in the URL is refused, as our
client never sends one there). It listens on 127.0.0.1 only, in a thread of the calling process
(``with FakeGraph() as graph: ...``), or on its own with ``python -m devtools.fake_graph``.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

VERSION = "v18.0"


class FakeGraph:
    """The Graph API stand-in; ``url`` is what ``CARTGUARD_GRAPH_API_URL`` should be."""

    def __init__(self, page_token: str | None = None, port: int = 0) -> None:
        self.page_token = page_token
        self.calls: list[dict[str, Any]] = []
        self.linking_tokens: dict[str, str] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/{VERSION}"

    # -- running --------------------------------------------------------------------------

    def start(self) -> FakeGraph:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeGraph:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what tests ask ---------------------------------------------------------------------

    def tap(self, psid: str) -> str:
        """The ``account_linking_token`` Messenger adds when ``psid`` taps a log-in button."""
        token = "ALT" + secrets.token_urlsafe(24)
        with self._lock:
            self.linking_tokens[token] = psid
        return token

    def messages_to(self, psid: str) -> list[dict[str, Any]]:
        with self._lock:
            return [
                c["body"]["message"]
                for c in self.calls
                if c["body"].get("recipient", {}).get("id") == psid and "message" in c["body"]
            ]

    def wait_for(
        self, psid: str, found: Callable[[dict[str, Any]], bool], timeout: float = 120.0
    ) -> dict[str, Any]:
        """The first message to ``psid`` (sent from now on, or already) that ``found`` accepts."""
        deadline = time.monotonic() + timeout
        while True:
            for message in self.messages_to(psid):
                if found(message):
                    return message
            if time.monotonic() > deadline:
                sent = json.dumps(self.messages_to(psid), indent=1)[-3000:]
                raise AssertionError(
                    f"no such message to {psid} within {timeout:.0f} s; got {sent}"
                )
            time.sleep(0.2)

    # -- the HTTP side -----------------------------------------------------------------------

    def _authorized(self, header: str | None) -> bool:
        if not header or not header.startswith("Bearer "):
            return False
        return self.page_token is None or header.removeprefix("Bearer ") == self.page_token

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        graph = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _refuse(self, status: int, message: str) -> None:
                self._answer(status, {"error": {"code": 190 if status == 401 else 100,
                                                "message": message}})  # fmt: skip

            def _check(self) -> dict[str, list[str]] | None:
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                if "access_token" in query or not graph._authorized(
                    self.headers.get("Authorization")
                ):
                    self._refuse(401, "invalid OAuth access token")
                    return None
                return query

            def do_POST(self) -> None:
                query = self._check()
                if query is None:
                    return
                if urlsplit(self.path).path != f"/{VERSION}/me/messages":
                    self._refuse(404, "unknown path")
                    return
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    self._refuse(400, "body is not JSON")
                    return
                with graph._lock:
                    graph.calls.append({"path": self.path, "body": body, "at": time.time()})
                recipient = (body.get("recipient") or {}).get("id")
                self._answer(
                    200, {"recipient_id": recipient, "message_id": f"m_{len(graph.calls)}"}
                )

            def do_GET(self) -> None:
                query = self._check()
                if query is None:
                    return
                token = (query.get("account_linking_token") or [""])[0]
                with graph._lock:
                    psid = graph.linking_tokens.get(token)
                if urlsplit(self.path).path != f"/{VERSION}/me" or psid is None:
                    self._refuse(400, "invalid account_linking_token")
                    return
                if (query.get("fields") or [""])[0] != "recipient":
                    self._refuse(400, "fields=recipient expected")
                    return
                self._answer(200, {"id": "PAGE", "recipient": psid})

        return Handler


def main() -> None:
    import os

    graph = FakeGraph(port=int(os.environ.get("FAKE_GRAPH_PORT", "8091"))).start()
    print(f"fake Graph API on {graph.url} (set CARTGUARD_GRAPH_API_URL to it)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        graph.stop()


if __name__ == "__main__":
    main()
