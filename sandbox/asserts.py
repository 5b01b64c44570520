"""Asserts mode, judge side: dataset tests run here, the solution's names are proxies.

Each `assert` is rewritten so that it records an outcome instead of raising
(every assertion counts, one failure does not hide the next), and `assert a == b`
reports "expected b, got a". A proxy call sends typed values to the child and
turns the answer back into builtin objects; what has no builtin form (an object,
a function, an AlwaysEqual trick) becomes an `Opaque` that equals nothing.
"""

from __future__ import annotations

import ast
import builtins
from collections.abc import Callable
from typing import Any

from tracer import ExceptionInfo, NotDecodable, Value, encode, render, to_python

from .result import TestOutcome

RECORD = "__execalign_assert__"


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
    bound, loaded = set(), []
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


def run_tests(tests: list[str] | str, entry_point: str | None, names: dict[str, Any]) -> tuple[list[TestOutcome], str]:
    """Run the tests with `names` (proxies and fetched values) in scope.

    Returns the outcomes and, if the child was lost in the middle (died, timed
    out), why; the outcomes so far are kept.
    """
    outcomes: list[TestOutcome] = []

    def record(test: Callable, text: str, left: Callable | None = None, right: Callable | None = None) -> None:
        try:
            if left is not None:
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
    except ChildGone as gone:
        return outcomes, str(gone) or "the solution process was lost"
    return outcomes, ""
