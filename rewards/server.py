"""`execalign serve`: an HTTP reward server (OpenRLHF's remote reward JSON, plus a batch endpoint).

    POST /            {"query": [...], "prompts": [...], "labels": [...]}
                      -> {"rewards": [...], "scores": [...], "extra_logs": {...}}  (OpenRLHF --reward.remote_url)
    POST /batch       {"items": [{"code", "tests", "predicted_trace", "question", ...}, ...]}
                      -> {"scores": [Score, ...]}
    GET  /health      -> {"status": "ok", "pending": n, "max_pending": m, "layers": "..."}

At most `max_pending` requests are accepted at once; beyond that the server
answers 503 with Retry-After (backpressure) instead of queueing without bound.
Bodies over `max_request_bytes` get 413, malformed JSON 400. On SIGTERM or
SIGINT it stops accepting, finishes every accepted request, then exits.

It uses every core of its machine: the sandbox's default pool has a slot per
core (spread over shards, each a process of its own) and large batches are read
and scored in scoring processes (`rewards.scorers`), so no single process and no
single GIL bounds it.
"""

from __future__ import annotations

import json
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import msgspec

import sandbox

from . import scorers
from .integrations import openrlhf_reward
from .score import score_batch


class RewardServer(ThreadingHTTPServer):
    daemon_threads = False  # server_close() waits for requests in flight
    block_on_close = True

    def __init__(self, address: tuple[str, int], max_pending: int = 64, max_request_bytes: int = 16 << 20):
        super().__init__(address, _Handler)
        self.max_pending = max_pending
        self.max_request_bytes = max_request_bytes
        self.slots = threading.BoundedSemaphore(max_pending)
        self.pending = 0
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


class _Handler(BaseHTTPRequestHandler):
    server: RewardServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = msgspec.json.encode(body)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/health":
            layers = sandbox.default_pool().layers.describe().split("\n")[0]
            self._send(
                200,
                {
                    "status": "ok",
                    "pending": self.server.pending,
                    "max_pending": self.server.max_pending,
                    "layers": layers,
                },
            )
        else:
            self._send(404, {"error": f"no such endpoint {self.path}"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > self.server.max_request_bytes:
            self.close_connection = True
            self._send(413, {"error": f"request of {length} bytes is over {self.server.max_request_bytes}"})
            return
        body = self.rfile.read(length)
        if not self.server.slots.acquire(blocking=False):
            self._send(503, {"error": "busy: too many requests in flight"}, {"Retry-After": "1"})
            return
        with self.server.lock:
            self.server.pending += 1
        try:
            try:
                request = json.loads(body or b"{}")
            except ValueError as error:
                self._send(400, {"error": f"malformed JSON: {error}"})
                return
            path = self.path.rstrip("/") or "/"
            if path in ("/", "/reward", "/get_reward"):
                if not isinstance(request, dict) or not isinstance(request.get("query"), list):
                    self._send(400, {"error": "expected {'query': [...], 'prompts': [...], 'labels': [...]}"})
                    return
                queries = request["query"]
                prompts = request.get("prompts") or [""] * len(queries)
                labels = request.get("labels") or [None] * len(queries)
                self._send(200, openrlhf_reward(queries, prompts, labels))
            elif path == "/batch":
                items = request.get("items") if isinstance(request, dict) else None
                if not isinstance(items, list):
                    self._send(400, {"error": "expected {'items': [...]}"})
                    return
                self._send(200, {"scores": score_batch(items)})
            else:
                self._send(404, {"error": f"no such endpoint {self.path}"})
        finally:
            with self.server.lock:
                self.server.pending -= 1
            self.server.slots.release()


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    max_pending: int = 64,
    max_request_bytes: int = 16 << 20,
    ready: threading.Event | None = None,
) -> None:
    """Run until SIGTERM/SIGINT, then finish what was accepted."""
    server = RewardServer((host, port), max_pending, max_request_bytes)
    sandbox.default_pool()  # every core: a shard per core (a driver and its zygote), started before the first request
    scorers.start_shared()  # and the processes that read and score large batches, where there are cores to spare
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    thread = threading.Thread(target=server.serve_forever, name="execalign-serve", daemon=True)
    thread.start()
    print(f"execalign serve: listening on {server.url}", flush=True)
    if ready is not None:
        ready.set()
    stop.wait()
    server.shutdown()  # stop accepting
    server.server_close()  # wait for requests in flight
    print("execalign serve: stopped", flush=True)
