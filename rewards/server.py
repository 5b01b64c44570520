"""`execalign serve`: an HTTP reward server (OpenRLHF's remote reward JSON, plus a batch endpoint).

    POST /            {"query": [...], "prompts": [...], "labels": [...]}
                      -> {"rewards": [...], "scores": [...], "extra_logs": {...}}  (OpenRLHF --reward.remote_url)
    POST /batch       {"items": [{"code", "tests", "predicted_trace", "question", ...}, ...]}
                      -> {"scores": [Score, ...]}
    GET  /health      -> {"status": "ok", "pending": n, "max_pending": m, "layers": "..."}

`prompts` and `labels` may be left out (empty prompts, no labels); when given,
they have one entry per query, else 400. Every item of /batch that has an
answer names its question (as trainer rows do: see `rewards.integrations`);
one that does not is scored invalid_task.

At most `max_pending` requests are accepted at once; beyond that the server
answers 503 with Retry-After (backpressure) instead of queueing without bound.
Every answer is JSON, errors included ({"error": "..."}), whatever the method
or path: 400 malformed JSON or fields, or a bad Content-Length; 404 unknown
path; 405 a method the path does not take (with Allow); 408 a body that does
not arrive within `read_timeout` seconds; 411 a POST without Content-Length;
413 a body over `max_request_bytes`; 500 a failure of ours. On SIGTERM or
SIGINT it stops accepting, finishes every accepted request, then exits.

It uses every core of its machine: the sandbox's default pool has a slot per
core (spread over shards, each a process of its own) and large batches are read
and scored in scoring processes (`rewards.scorers`), so no single process and no
single GIL bounds it.
"""

from __future__ import annotations

import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import msgspec

import sandbox

from . import scorers
from .integrations import named_question, openrlhf_reward, score_samples
from .score import Score, jsonable

ENDPOINTS = {"/": "POST", "/reward": "POST", "/get_reward": "POST", "/batch": "POST", "/health": "GET"}


class RewardServer(ThreadingHTTPServer):
    daemon_threads = False  # server_close() waits for requests in flight
    block_on_close = True

    def __init__(
        self,
        address: tuple[str, int],
        max_pending: int = 64,
        max_request_bytes: int = 16 << 20,
        read_timeout: float = 30.0,
    ):
        super().__init__(address, _Handler)
        self.max_pending = max_pending
        self.max_request_bytes = max_request_bytes
        self.read_timeout = read_timeout
        self.slots = threading.BoundedSemaphore(max_pending)
        self.pending = 0
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


class _BadRequest(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class _Handler(BaseHTTPRequestHandler):
    server: RewardServer
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.read_timeout)  # every read and write, headers included

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = msgspec.json.encode(body)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The errors `http.server` answers itself (a malformed request line, headers too long, an
        unknown method): JSON too, and the connection closed."""
        self.close_connection = True
        if self.request_version == "HTTP/0.9":  # a request line too broken to say its version: answer in HTTP/1.1
            self.request_version = self.protocol_version
        reason = self.responses.get(code, ("error", ""))[0]
        self._send(code, {"error": f"{reason}: {message}" if message else reason})

    def _route(self) -> None:
        """Every method comes here (others get 501 from `send_error`), so every answer is JSON."""
        path = self.path.split("?", 1)[0].rstrip("/") or "/"
        method = ENDPOINTS.get(path)
        try:
            if method is None:
                raise _BadRequest(404, f"no such endpoint {self.path[:200]}")
            if method == "GET" and self.command in ("GET", "HEAD"):
                self._health()
            elif self.command != method:
                self.close_connection = True
                self._send(405, {"error": f"{path} takes {method}, not {self.command}"}, {"Allow": method})
            else:
                self._post(path)
        except _BadRequest as error:
            self.close_connection = True
            self._send(error.status, {"error": str(error)})
        except TimeoutError:
            self.close_connection = True
            self._send(408, {"error": f"the body did not arrive within {self.server.read_timeout} s"})
        except (BrokenPipeError, ConnectionResetError):  # the client left: nobody to answer
            self.close_connection = True
        except Exception as error:  # a bug of ours: still JSON, and says what
            self.close_connection = True
            self._send(500, {"error": f"{type(error).__name__}: {str(error)[:500]}"})

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = _route

    def _health(self) -> None:
        layers = sandbox.default_pool().layers.describe().split("\n")[0]
        self._send(
            200,
            {"status": "ok", "pending": self.server.pending, "max_pending": self.server.max_pending, "layers": layers},
        )

    def _body(self) -> bytes:
        """The request's body: exactly Content-Length bytes, within `max_request_bytes` and `read_timeout`."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            raise _BadRequest(411, "send a Content-Length, not a chunked body")
        declared = self.headers.get("Content-Length")
        if declared is None:
            raise _BadRequest(411, "a POST needs a Content-Length")
        declared = declared.strip()
        if not declared.isdigit() or not declared.isascii():
            raise _BadRequest(400, f"Content-Length must be a number of bytes, got {declared[:40]!r}")
        length = int(declared)
        if length > self.server.max_request_bytes:
            raise _BadRequest(413, f"request of {length} bytes is over {self.server.max_request_bytes}")
        deadline = time.monotonic() + self.server.read_timeout
        chunks, left = [], length
        while left:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            self.connection.settimeout(remaining)
            chunk = self.rfile.read1(min(left, 1 << 16))
            if not chunk:
                raise _BadRequest(400, f"the body ended after {length - left} of its {length} bytes")
            chunks.append(chunk)
            left -= len(chunk)
        self.connection.settimeout(self.server.read_timeout)
        return b"".join(chunks)

    def _post(self, path: str) -> None:
        body = self._body()
        if not self.server.slots.acquire(blocking=False):
            self._send(503, {"error": "busy: too many requests in flight"}, {"Retry-After": "1"})
            return
        with self.server.lock:
            self.server.pending += 1
        try:
            try:
                request = msgspec.json.decode(body or b"{}")
            except (msgspec.DecodeError, RecursionError) as error:
                raise _BadRequest(400, f"malformed JSON: {str(error)[:200]}") from None
            self._send(200, self._openrlhf(request) if path != "/batch" else self._batch(request))
        finally:
            with self.server.lock:
                self.server.pending -= 1
            self.server.slots.release()

    @staticmethod
    def _openrlhf(request: Any) -> Any:
        usage = "expected {'query': [str, ...], 'prompts': [str, ...], 'labels': [...]}, one entry per sample"
        if not isinstance(request, dict) or not isinstance(request.get("query"), list):
            raise _BadRequest(400, usage)
        queries = request["query"]
        prompts = request.get("prompts") or [""] * len(queries)
        labels = request.get("labels") or [None] * len(queries)
        if not isinstance(prompts, list) or not isinstance(labels, list):
            raise _BadRequest(400, usage)
        if not all(isinstance(x, str) for x in queries + prompts):
            raise _BadRequest(400, "queries and prompts must be strings")
        if not len(queries) == len(prompts) == len(labels):
            raise _BadRequest(400, f"{len(queries)} queries, {len(prompts)} prompts and {len(labels)} labels: {usage}")
        return openrlhf_reward(queries, prompts, labels)

    @staticmethod
    def _batch(request: Any) -> Any:
        items = request.get("items") if isinstance(request, dict) else None
        if not isinstance(items, list):
            raise _BadRequest(400, "expected {'items': [...]}")
        checked: list[Any] = []
        for item in items:
            question = (
                named_question(item) if isinstance(item, dict) and item.get("predicted_trace") is not None else None
            )
            checked.append(question if isinstance(question, Score) else item)
        return {"scores": [jsonable(s) for s in score_samples(checked)]}


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    max_pending: int = 64,
    max_request_bytes: int = 16 << 20,
    ready: threading.Event | None = None,
    read_timeout: float = 30.0,
) -> None:
    """Run until SIGTERM/SIGINT, then finish what was accepted."""
    server = RewardServer((host, port), max_pending, max_request_bytes, read_timeout)
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
