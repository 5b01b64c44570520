"""What actually happens: tests normalised, sandbox tasks planned, results cached.

Tests come as a list of assert statements, a list of call expressions, a list
of {"stdin", "stdout"} pairs, a HumanEval {"check", "entry_point"} block, or
CRUXEval-I asserts (`assert f(??) == [1, 2]`). A predicted trace refers to the
execution of test number `test_index` (default 0): that call expression, the
call on the left of that assert (`f(3)` in `assert f(3) == 7`), that stdin, or
the first `candidate(...)` call of a check block.

Every sandbox run goes through a bounded cache keyed by the content hash of
its task, shared by all calls of `score` and `score_batch`: the G answers of a
GRPO group cost one execution. Concurrent requests for the same task wait for
the one run in flight. infra_error results are never cached.
"""

from __future__ import annotations

import ast
import hashlib
import threading
from collections import OrderedDict
from concurrent.futures import Future
from typing import Any, Literal

import msgspec

import sandbox
from sandbox import Job, Limits, Result


class InvalidTask(ValueError):
    """The tests (or arguments) given to `score` are malformed: the dataset's fault, not the model's."""


class Tests(msgspec.Struct, frozen=True):
    kind: Literal["asserts", "calls", "stdio", "check", "input"]
    items: list[Any]
    entry_point: str | None = None


def normalize_tests(tests: Any, task: str = "auto") -> Tests:
    if isinstance(tests, dict):
        if "check" in tests:
            if not tests.get("entry_point"):
                raise InvalidTask("a check block needs an entry_point")
            return Tests("check", [tests["check"]], tests["entry_point"])
        tests = [tests]
    if isinstance(tests, str):
        tests = [tests]
    if not isinstance(tests, (list, tuple)) or not tests:
        raise InvalidTask(f"tests must be a non-empty list, got {type(tests).__name__}")
    if all(isinstance(t, dict) and "stdin" in t for t in tests):
        return Tests("stdio", [{"stdin": str(t.get("stdin", "")), "stdout": t.get("stdout")} for t in tests])
    if not all(isinstance(t, str) for t in tests):
        raise InvalidTask("tests must be all strings (asserts or calls) or all {'stdin', 'stdout'} pairs")
    holes = []
    for t in tests:
        try:
            ast.parse(t)
            holes.append(False)
        except SyntaxError as error:
            try:
                ast.parse(t.replace("??", "__input__"))  # CRUXEval-I: `??` marks the input to predict
                holes.append(True)
            except SyntaxError:
                raise InvalidTask(f"test is not valid Python: {t[:80]!r}: {error.msg}") from None
    if task == "input" or any(holes):
        return Tests("input", list(tests))
    if all(t.lstrip().startswith("assert") for t in tests):
        return Tests("asserts", list(tests))
    if any(t.lstrip().startswith("assert") for t in tests):
        raise InvalidTask("tests mix assert statements and call expressions")
    return Tests("calls", list(tests))


def target_call(tests: Tests, index: int) -> str:
    """The call expression whose execution a predicted trace describes."""
    if not 0 <= index < len(tests.items):
        raise InvalidTask(f"test_index {index} is out of range for {len(tests.items)} tests")
    if tests.kind == "calls":
        return tests.items[index]
    if tests.kind in ("asserts", "input"):
        node = ast.parse(tests.items[index].replace("??", "__input__")).body[0]
        expr = node.test if isinstance(node, ast.Assert) else getattr(node, "value", None)
        if isinstance(expr, ast.Compare) and len(expr.ops) == 1 and isinstance(expr.ops[0], ast.Eq):
            expr = expr.left
        if expr is None:
            raise InvalidTask(f"cannot find the call in {tests.items[index]!r}")
        return ast.unparse(expr)
    if tests.kind == "check":
        for node in ast.walk(ast.parse(tests.items[0])):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "candidate":
                node.func.id = tests.entry_point
                return ast.unparse(node)
        raise InvalidTask("the check block never calls candidate(...)")
    raise InvalidTask(f"{tests.kind} tests have no call expression")


def expected_output(tests: Tests, index: int) -> Any:
    """CRUXEval-I: the literal on the right of `assert f(??) == <output>`."""
    node = ast.parse(tests.items[index].replace("??", "__input__")).body[0]
    if not (isinstance(node, ast.Assert) and isinstance(node.test, ast.Compare) and len(node.test.comparators) == 1):
        raise InvalidTask(f"input tests look like 'assert f(??) == output', got {tests.items[index]!r}")
    from tracer import from_literal

    try:
        return from_literal(ast.unparse(node.test.comparators[0]))
    except ValueError as error:
        raise InvalidTask(f"the expected output is not a literal: {error}") from None


def function_name(tests: Tests, index: int) -> str:
    node = ast.parse(tests.items[index].replace("??", "__input__")).body[0]
    call = node.test.left if isinstance(node, ast.Assert) and isinstance(node.test, ast.Compare) else None
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)):
        raise InvalidTask(f"cannot find the function in {tests.items[index]!r}")
    return call.func.id


def verdict_tasks(code: str, tests: Tests, limits: Limits) -> list[Job]:
    """The sandbox runs that give the tests' pass rate."""
    if tests.kind in ("asserts", "check"):
        return [
            Job(
                mode="asserts",
                code=code,
                tests=tests.items if tests.kind == "asserts" else tests.items[0],
                entry_point=tests.entry_point,
                limits=limits,
            )
        ]
    if tests.kind == "stdio":
        return [
            Job(mode="stdio", code=code, stdin=t["stdin"], expected_stdout=t["stdout"] or "", limits=limits)
            for t in tests.items
        ]
    if tests.kind == "calls":
        return [Job(mode="call", code=code, call=c, limits=limits) for c in tests.items]
    raise InvalidTask("input tests have no verdict without a predicted input")


def trace_task(code: str, tests: Tests, index: int, limits: Limits, trace_limits: dict) -> Job:
    """The traced run a predicted trace is compared with."""
    if tests.kind == "stdio":
        if not 0 <= index < len(tests.items):
            raise InvalidTask(f"test_index {index} is out of range for {len(tests.items)} tests")
        return Job(
            mode="script",
            code=code,
            stdin=tests.items[index]["stdin"],
            trace=True,
            trace_limits=trace_limits,
            limits=limits,
        )
    return Job(
        mode="call", code=code, call=target_call(tests, index), trace=True, trace_limits=trace_limits, limits=limits
    )


def pass_rate(tests: Tests, results: list[Result]) -> float:
    if tests.kind in ("asserts", "check"):
        r = results[0]
        return r.passed / r.total if r.total else 0.0
    if tests.kind == "stdio":
        return sum(r.status == "passed" for r in results) / len(results)
    return sum(r.status == "ok" for r in results) / len(results)


# ---------------------------------------------------------------- the cache


class ResultCache:
    """A bounded LRU of sandbox results by task content hash, with in-flight sharing."""

    def __init__(self, max_entries: int = 4096):
        self.max_entries = max_entries
        self.lock = threading.Lock()
        self.entries: OrderedDict[bytes, Result] = OrderedDict()
        self.inflight: dict[bytes, Future] = {}
        self.hits = self.misses = 0

    @staticmethod
    def key(task: Job) -> bytes:
        return hashlib.sha256(msgspec.msgpack.encode(task)).digest()

    def run(self, tasks: list[Job], pool: sandbox.Pool | None = None, progress: bool = False) -> list[Result]:
        """Results of `tasks` in order, each distinct task run at most once."""
        pool = pool or sandbox.default_pool()
        waiting: list[Any] = []
        with self.lock:
            for task in tasks:
                key = self.key(task)
                if key in self.entries:
                    self.entries.move_to_end(key)
                    self.hits += 1
                    waiting.append(self.entries[key])
                elif key in self.inflight:
                    self.hits += 1
                    waiting.append(self.inflight[key])
                else:
                    self.misses += 1
                    future = pool.submit(task)
                    self.inflight[key] = future
                    future.add_done_callback(lambda f, k=key: self._store(k, f))
                    waiting.append(future)
        if progress:
            return sandbox.track([w if isinstance(w, Future) else _done(w) for w in waiting], "sandbox")
        return [w.result() if isinstance(w, Future) else w for w in waiting]

    def _store(self, key: bytes, future: Future) -> None:
        with self.lock:
            self.inflight.pop(key, None)
            if future.cancelled() or future.exception() is not None:
                return
            result = future.result()
            if result.status != "infra_error" and self.max_entries > 0:
                self.entries[key] = result
                while len(self.entries) > self.max_entries:
                    self.entries.popitem(last=False)

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()


def _done(result: Result) -> Future:
    future: Future = Future()
    future.set_result(result)
    return future


CACHE = ResultCache()
