"""Asserts mode, judge side: dataset tests run here, the solution's names are proxies.

`serve(channel, job)` takes the child's `Ready` (which of the names the tests
need the solution defines), fetches plain values, and runs the tests with a
proxy for each solution function. Each `assert` is rewritten so that it records
an outcome instead of raising (every assertion counts, one failure does not hide
the next), and `assert a == b` reports "expected b, got a". A proxy call sends
typed values to the child and turns the answer back into builtin objects; what
has no builtin form (an object, a function, an AlwaysEqual trick) becomes an
`Opaque` that equals nothing. What the tests found goes to `sandbox.verdict`.
"""

from __future__ import annotations

import ast
import builtins
from collections.abc import Callable
from typing import Any, Protocol

from tracer import ExceptionInfo, NotDecodable, Value, encode, render, to_python

from .job import Job, TestOutcome
from .verdict import TestsRun
from .wire import CallRequest, DoneRequest, FetchRequest, Ready, Returned, ToChild

RECORD = "__execalign_assert__"


class Channel(Protocol):
    """The judge's end of a child's pipes (`sandbox.execution.Execution`)."""

    def send(self, message: ToChild) -> None: ...

    def receive(self) -> Ready | Returned | None:
        """The child's next message; None once it is gone (ended, killed, or its channel broken)."""
        ...


class ChildGone(Exception):
    """The child died, timed out or broke the protocol in the middle of the tests."""


class SolutionError(Exception):
    """An exception of a type the judge cannot recreate, raised by the solution in the child."""

    def __init__(self, info: ExceptionInfo):
        super().__init__(f"{info.type}: {info.message}")
        self.info = info


class Opaque:
    """A value from the child with no builtin equal: equal to nothing, shown by its encoding."""

    __slots__ = ("value",)

    def __init__(self, value: Value):
        self.value = value

    def __eq__(self, other: object) -> bool:
        return False

    def __ne__(self, other: object) -> bool:
        return True

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return render(self.value)


def serve(channel: Channel, job: Job) -> tuple[Ready | None, TestsRun]:
    """Asserts mode once the child has its spec: its `Ready` (None if it never came), and the tests' run."""
    ready = channel.receive()
    if not isinstance(ready, Ready):
        return None, TestsRun()
    if ready.exception is not None:  # the child has ended
        return ready, TestsRun()
    tests = job.tests if job.tests is not None else []
    names: dict[str, Any] = {name: _Proxy(channel, name) for name in ready.callable}
    try:
        for name in ready.values:
            names[name] = from_child(_ask(channel, FetchRequest(name)).value)
    except ChildGone:
        return ready, TestsRun(lost=True)
    missing = [n for n in ([job.entry_point] if job.entry_point else []) if n not in names]
    if missing:
        channel.send(DoneRequest())
        return ready, TestsRun(missing=missing)
    outcomes, lost = run_tests(tests, job.entry_point, names)
    if not lost:
        channel.send(DoneRequest())
    return ready, TestsRun(outcomes=outcomes, lost=lost)


def _ask(channel: Channel, request: CallRequest | FetchRequest) -> Returned:
    channel.send(request)
    answer = channel.receive()
    if not isinstance(answer, Returned):
        raise ChildGone()
    return answer


class _Proxy:
    """Stands for a solution function in the judge's test namespace."""

    def __init__(self, channel: Channel, name: str):
        self._channel = channel
        self._name = name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        request = CallRequest(self._name, [encode(a) for a in args], {k: encode(v) for k, v in kwargs.items()})
        answer = _ask(self._channel, request)
        if answer.exception is not None:
            raise_from_child(answer.exception)
        return from_child(answer.value)

    def __repr__(self) -> str:
        return f"<solution function {self._name}>"


def from_child(value: Value | None) -> Any:
    if value is None:
        return None
    try:
        return to_python(value)
    except NotDecodable:
        return Opaque(value)


def raise_from_child(info: ExceptionInfo) -> None:
    cls = getattr(builtins, info.type, None)
    if isinstance(cls, type) and issubclass(cls, Exception) and cls.__module__ == "builtins":
        try:
            error = cls(info.message)
        except Exception:
            raise SolutionError(info) from None
        raise error
    raise SolutionError(info)


def _show(value: Any) -> str:
    text = repr(value) if isinstance(value, Opaque) else render(encode(value))
    return text if len(text) <= 200 else text[:200] + "..."


class _Rewriter(ast.NodeTransformer):
    def __init__(self, source: str):
        self.source = source

    def visit_Assert(self, node: ast.Assert) -> ast.AST:
        text = ast.get_source_segment(self.source, node) or ast.unparse(node)
        test = node.test
        args: list[ast.expr] = [ast.Lambda(_no_args(), test), ast.Constant(text)]
        if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq):
            args += [ast.Lambda(_no_args(), test.left), ast.Lambda(_no_args(), test.comparators[0])]
        call = ast.Call(ast.Name(RECORD, ast.Load()), args, [])
        return ast.copy_location(ast.Expr(call), node)


def _no_args() -> ast.arguments:
    return ast.arguments(posonlyargs=[], args=[], vararg=None, kwonlyargs=[], kw_defaults=[], kwarg=None, defaults=[])


def solution_names(tests: list[str] | str, entry_point: str | None) -> list[str]:
    """Names the tests read but never bind: those come from the solution."""
    source = tests if isinstance(tests, str) else "\n".join(tests)
    tree = ast.parse(source)
    bound: set[str] = set()
    loaded: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (bound.add if isinstance(node.ctx, (ast.Store, ast.Del)) else loaded.append)(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names)
    names = [n for n in dict.fromkeys(loaded) if n not in bound and not hasattr(builtins, n)]
    if entry_point and entry_point not in names:
        names.append(entry_point)
    return names


def run_tests(tests: list[str] | str, entry_point: str | None, names: dict[str, Any]) -> tuple[list[TestOutcome], bool]:
    """Run the tests with `names` (proxies and fetched values) in scope.

    Returns the outcomes and whether the child was lost in the middle (died,
    timed out); the outcomes so far are kept.
    """
    outcomes: list[TestOutcome] = []

    def record(
        test: Callable[[], Any],
        text: str,
        left: Callable[[], Any] | None = None,
        right: Callable[[], Any] | None = None,
    ) -> None:
        try:
            if left is not None and right is not None:
                got = left()
                expected = right()
                passed = bool(got == expected)
                message = "" if passed else f"expected {_show(expected)}, got {_show(got)}"
            else:
                passed = bool(test())
                message = "" if passed else "assertion is false"
        except ChildGone:
            raise
        except Exception as error:
            passed, message = False, f"{type(error).__name__}: {error}"
        outcomes.append(TestOutcome(text, passed, message))

    namespace: dict[str, Any] = {"__name__": "__tests__", RECORD: record, **names}
    sources = [tests] if isinstance(tests, str) else list(tests)
    try:
        for source in sources:
            try:
                tree = _Rewriter(source).visit(ast.parse(source))
                ast.fix_missing_locations(tree)
                exec(compile(tree, "<tests>", "exec"), namespace)
            except ChildGone:
                raise
            except Exception as error:
                outcomes.append(TestOutcome(source.strip()[:500], False, f"{type(error).__name__}: {error}"))
        if isinstance(tests, str) and callable(namespace.get("check")) and entry_point:
            try:
                namespace["check"](names[entry_point])
            except ChildGone:
                raise
            except Exception as error:
                outcomes.append(TestOutcome("check(candidate)", False, f"{type(error).__name__}: {error}"))
    except ChildGone:
        return outcomes, True
    return outcomes, False
