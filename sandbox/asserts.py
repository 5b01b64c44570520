"""Asserts mode, judge side: dataset tests run here; the solution's objects stay in the child.

Which names the tests take from the solution (`plan`): the task's entry points
when it names them (`Job.entry_points`, or a check block's `entry_point`), and
nothing else; without them, every name the tests read and neither bind nor
import, except builtins and the standard-library modules they use as modules
(`math.isclose`). Everything else resolves here: builtins, what the tests
import or define, and those modules (imported in the judge). So a solution
defining `isclose` or `math` changes nothing when the task names its entry
points; without them, a name only the solution defines is the solution's.

`serve(channel, job, names)` takes the child's `Ready` (the solution's values of
those names) and runs the tests. A builtin value comes back as itself; an
object with no builtin value (a function, a class, an instance) stays in the
child and is a `Remote` here: calling it, reading its attributes, iterating,
indexing or sizing it, each is a request to the child, and it equals nothing.
A Remote passed back as an argument reaches the child as its own object, so
`Solution().twoSum(...)`, design classes and linked lists work. What has no
builtin value and no handle (a list of objects) is an `Opaque`, equal to
nothing. Each `assert` is rewritten so that it records an outcome instead of
raising, and `assert a == b` reports "expected b, got a".

Every planned test counts (`TestsRun.outcomes`): an entry of an assert list is
one test, passed when it ran to its end and every assertion in it held (an
entry with no assertion is setup, and counts only if it fails); an entry that
never ran, because the solution ended, hung or flooded its output, failed. A
check block counts its assertions as they ran; when it did not run to its
end, the assertion it stopped in and each that never ran failed (and the block
itself, when it stopped outside an assertion).
"""

from __future__ import annotations

import ast
import builtins
import importlib
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal, NamedTuple, Protocol

from tracer import EncodeLimits, ExceptionInfo, NotDecodable, Value, encode, render, to_python

from .job import Job, TestOutcome
from .verdict import TestsRun
from .wire import HANDLE, AttrRequest, CallRequest, DoneRequest, Ready, Returned, ToChild, handle_value

RECORD = "__execalign_assert__"
_ARGUMENTS = EncodeLimits(max_depth=100, max_items=1 << 24, max_str=1 << 28)  # the tests' own values: never cut
_NOT_IMPORTED = frozenset({"this", "antigravity", "__future__", "__main__"})  # importing these does things
_KINDS: dict[type, Literal["list", "tuple", "set", "frozenset"]] = {
    list: "list",
    tuple: "tuple",
    set: "set",
    frozenset: "frozenset",
}
_UNRUN = "did not run: the solution process ended during the tests"
_UNFINISHED = "did not finish: the solution process ended during it"


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


# ---------------------------------------------------------------- which names come from where


class Names(NamedTuple):
    """Where the tests' free names resolve: `solution` (asked from the child), `modules` (imported here)."""

    solution: list[str]
    modules: list[str]
    declared: bool  # the task named its entry points: each must exist


def entry_points(job: Job) -> list[str]:
    """The names the task says the tests take from the solution (empty: none declared)."""
    names = list(job.entry_points)
    if job.entry_point and job.entry_point not in names:
        names.append(job.entry_point)
    return names


def plan(tests: list[str] | str, declared: Sequence[str]) -> Names:
    """Which free names of `tests` the solution supplies and which modules the judge imports."""
    loaded, bound, as_module = _free_names(tests)
    free = [n for n in loaded if n not in bound]
    if declared:
        solution = list(dict.fromkeys(declared))
    else:
        solution = [n for n in free if not hasattr(builtins, n) and not _is_module(n, as_module)]
    modules = [n for n in free if n not in solution and _is_module(n, as_module)]
    return Names(solution, modules, bool(declared))


def _is_module(name: str, as_module: set[str]) -> bool:
    return name in as_module and name in sys.stdlib_module_names and name not in _NOT_IMPORTED


def _free_names(tests: list[str] | str) -> tuple[list[str], set[str], set[str]]:
    """Names the tests read (in order), those they bind, and those read only as `name.attribute`."""
    loaded: list[str] = []
    bound: set[str] = set()
    bare: set[str] = set()
    dotted: set[str] = set()
    for source in [tests] if isinstance(tests, str) else tests:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        nodes = list(ast.walk(tree))
        prefixes = {id(n.value) for n in nodes if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)}
        for node in nodes:
            if isinstance(node, ast.Name):
                if not isinstance(node.ctx, ast.Load):
                    bound.add(node.id)
                    continue
                loaded.append(node.id)
                (dotted if id(node) in prefixes else bare).add(node.id)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                bound.add(node.name)
            elif isinstance(node, ast.arg):
                bound.add(node.arg)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                bound.update((a.asname or a.name).split(".")[0] for a in node.names)
    return list(dict.fromkeys(loaded)), bound, dotted - bare


def _judge_modules(names: list[str]) -> dict[str, Any]:
    found = {}
    for name in names:
        try:
            found[name] = importlib.import_module(name)
        except Exception:  # not importable here: the test's NameError says so
            pass
    return found


# ---------------------------------------------------------------- the solution's values, here


class Opaque:
    """A value from the child with no builtin equal and no handle: equal to nothing, shown by its encoding."""

    __slots__ = ("_value",)

    def __init__(self, value: Value):
        self._value = value

    def __eq__(self, other: object) -> bool:
        return False

    def __ne__(self, other: object) -> bool:
        return True

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return render(self._value)


class Session:
    """The judge's side of one child's objects: requests through `channel`, answers as values or Remotes."""

    def __init__(self, channel: Channel):
        self.channel = channel
        self.remotes = 0  # Remotes handed out: until one is, arguments need no handle substitution

    def value(self, value: Value, handle: int) -> Any:
        try:
            return to_python(value)
        except (NotDecodable, RecursionError):
            pass
        if handle:
            self.remotes += 1
            return Remote(self, handle, value)
        return Opaque(value)

    def ask(self, request: CallRequest | AttrRequest) -> Any:
        self.channel.send(request)
        answer = self.channel.receive()
        if not isinstance(answer, Returned):
            raise ChildGone()
        if answer.exception is not None:
            raise_from_child(answer.exception)
        return self.value(answer.value if answer.value is not None else Value("none"), answer.handle)

    def call(self, handle: int, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        request = CallRequest(
            handle, [self._argument(a) for a in args], {k: self._argument(v) for k, v in kwargs.items()}
        )
        return self.ask(request)

    def _argument(self, obj: Any) -> Value:
        if not self.remotes:
            return encode(obj, _ARGUMENTS)
        if isinstance(obj, Remote):
            return handle_value(obj._handle)
        kind = type(obj)
        if kind in (list, tuple, set, frozenset):
            items = [self._argument(x) for x in obj]
            if any(_has_handle(x) for x in items):
                return Value(_KINDS[kind], items=items)
        if kind is dict:
            values = [self._argument(x) for x in obj.values()]
            if any(_has_handle(x) for x in values):
                return Value("dict", keys=[encode(k, _ARGUMENTS) for k in obj], items=values)
        return encode(obj, _ARGUMENTS)


def _has_handle(value: Value) -> bool:
    return (value.t == "object" and value.type == HANDLE) or any(_has_handle(x) for x in value.items or [])


class Remote(Opaque):
    """One of the solution's objects, left in the child: every use is a request, and it equals nothing."""

    __slots__ = ("_handle", "_next", "_session")

    def __init__(self, session: Session, handle: int, value: Value):
        super().__init__(value)
        self._session = session
        self._handle = handle
        self._next: Remote | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._session.call(self._handle, args, kwargs)

    def __getattr__(self, name: str) -> Any:
        return self._session.ask(AttrRequest(self._handle, name))

    def _method(self, name: str, *args: Any) -> Any:
        return self._session.ask(AttrRequest(self._handle, name))(*args)

    def __iter__(self) -> Iterator[Any]:
        iterator = self._method("__iter__")
        return iterator if isinstance(iterator, Remote) else iter(iterator)

    def __next__(self) -> Any:
        if self._next is None:
            self._next = self._session.ask(AttrRequest(self._handle, "__next__"))
        return self._next()

    def __len__(self) -> int:
        try:
            return int(self._method("__len__"))
        except AttributeError:  # as Python says it (list() asks for a length first)
            raise TypeError(f"object of type {self._value.type or self._value.t} has no len()") from None

    def __getitem__(self, key: Any) -> Any:
        return self._method("__getitem__", key)

    def __contains__(self, item: Any) -> bool:
        try:
            return bool(self._method("__contains__", item))
        except AttributeError:  # as Python does: look through it
            return any(x is item or x == item for x in self)

    def __bool__(self) -> bool:
        for name in ("__bool__", "__len__"):
            try:
                return bool(self._method(name))
            except AttributeError:
                continue
        return True


def raise_from_child(info: ExceptionInfo) -> None:
    cls = getattr(builtins, info.type, None)
    if isinstance(cls, type) and issubclass(cls, Exception) and cls.__module__ == "builtins":
        try:
            error = cls(info.message)
        except Exception:
            raise SolutionError(info) from None
        raise error
    raise SolutionError(info)


# ---------------------------------------------------------------- serving the tests


def serve(channel: Channel, job: Job, names: Names) -> tuple[Ready | None, TestsRun]:
    """Asserts mode once the child has its spec: its `Ready` (None if it never came), and the tests' run."""
    tests = job.tests if job.tests is not None else []
    ready = channel.receive()
    if not isinstance(ready, Ready):
        return None, TestsRun(outcomes=unrun(tests, "did not run: the solution ended before the tests"))
    if ready.exception is not None:  # the child has ended
        return ready, TestsRun(outcomes=unrun(tests, "did not run: the solution raised before the tests"))
    session = Session(channel)
    solution = {
        n: session.value(ready.names[n].value, ready.names[n].handle) for n in names.solution if n in ready.names
    }
    missing = [n for n in names.solution if n not in solution] if names.declared else []
    if missing:
        channel.send(DoneRequest())
        why = f"did not run: the solution does not define {', '.join(missing)}"
        return ready, TestsRun(outcomes=unrun(tests, why), missing=missing)
    namespace = {"__name__": "__tests__", **_judge_modules(names.modules), **solution}
    outcomes, lost = run_tests(tests, job.entry_point, namespace)
    if not lost:
        channel.send(DoneRequest())
    return ready, TestsRun(outcomes=outcomes, lost=lost)


def _show(value: Any) -> str:
    text = repr(value) if isinstance(value, Opaque) else render(encode(value))
    return text if len(text) <= 200 else text[:200] + "..."


class _Rewriter(ast.NodeTransformer):
    """`assert test` -> `RECORD(index, text, lambda: test[, lambda: left, lambda: right])`; `texts` by index."""

    def __init__(self, source: str):
        self.source = source
        self.texts: list[str] = []

    def visit_Assert(self, node: ast.Assert) -> ast.AST:
        text = ast.get_source_segment(self.source, node) or ast.unparse(node)
        test = node.test
        args: list[ast.expr] = [ast.Constant(len(self.texts)), ast.Constant(text), ast.Lambda(_no_args(), test)]
        self.texts.append(text)
        if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq):
            args += [ast.Lambda(_no_args(), test.left), ast.Lambda(_no_args(), test.comparators[0])]
        call = ast.Call(ast.Name(RECORD, ast.Load()), args, [])
        return ast.copy_location(ast.Expr(call), node)


def _no_args() -> ast.arguments:
    return ast.arguments(posonlyargs=[], args=[], vararg=None, kwonlyargs=[], kw_defaults=[], kwarg=None, defaults=[])


def _compile(source: str) -> tuple[Any, list[str]]:
    """The test rewritten and compiled, and the text of each of its assertions."""
    rewriter = _Rewriter(source)
    tree = rewriter.visit(ast.parse(source))
    ast.fix_missing_locations(tree)
    return compile(tree, "<tests>", "exec"), rewriter.texts


def unrun(tests: list[str] | str, why: str) -> list[TestOutcome]:
    """The outcomes of tests that never ran: each planned test failed, saying `why`."""
    if isinstance(tests, str):
        return [TestOutcome(text, False, why) for text in _assertions(tests)] + [
            TestOutcome("check(candidate)", False, why)
        ]
    return [TestOutcome(_label(t), False, why) for t in tests if _assertions(t) or not _parses(t)]


def _assertions(source: str) -> list[str]:
    try:
        return _compile(source)[1]
    except (SyntaxError, ValueError):
        return []


def _parses(source: str) -> bool:
    try:
        ast.parse(source)
    except (SyntaxError, ValueError):
        return False
    return True


def _label(source: str) -> str:
    return source.strip()[:500]


class _Record:
    """What `RECORD` calls: one assertion's outcome, kept in `results` (and which assertions ran)."""

    def __init__(self) -> None:
        self.results: list[TestOutcome] = []
        self.ran: set[int] = set()
        self.interrupted = False  # the child was lost in the middle of an assertion

    def __call__(
        self,
        index: int,
        text: str,
        test: Callable[[], Any],
        left: Callable[[], Any] | None = None,
        right: Callable[[], Any] | None = None,
    ) -> None:
        self.ran.add(index)
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
            self.results.append(TestOutcome(text, False, _UNFINISHED))
            self.interrupted = True
            raise
        except Exception as error:
            passed, message = False, _error(error)
        self.results.append(TestOutcome(text, passed, message))


def _error(error: BaseException) -> str:
    try:
        return f"{type(error).__name__}: {error}"[:1000]
    except Exception:
        return type(error).__name__


def run_tests(
    tests: list[str] | str, entry_point: str | None, namespace: dict[str, Any]
) -> tuple[list[TestOutcome], bool]:
    """Run the tests with `namespace` (the solution's values and the judge's modules) in scope.

    Returns one outcome per planned test (see the module docstring) and whether
    the child was lost in the middle (died, timed out, flooded its output).
    """
    record = _Record()
    namespace = {**namespace, RECORD: record}
    if isinstance(tests, str):
        return _run_check(tests, entry_point, namespace, record)
    outcomes: list[TestOutcome] = []
    for position, source in enumerate(tests):
        try:
            code, texts = _compile(source)
        except (SyntaxError, ValueError) as error:
            outcomes.append(TestOutcome(_label(source), False, _error(error)))
            continue
        record.results = []
        failure = None
        try:
            exec(code, namespace)
        except ChildGone:
            if texts:
                outcomes.append(TestOutcome(_label(source), False, _UNFINISHED))
            return outcomes + unrun(tests[position + 1 :], _UNRUN), True
        except Exception as error:
            failure = _error(error)
        if texts:
            outcomes.append(_one_test(source, record.results, failure))
        elif failure is not None:  # setup that failed
            outcomes.append(TestOutcome(_label(source), False, failure))
    return outcomes, False


def _one_test(source: str, results: list[TestOutcome], failure: str | None) -> TestOutcome:
    first = next((r for r in results if not r.passed), None)
    if first is not None:
        message = first.message if len(results) == 1 else f"{first.test}: {first.message}"
    elif failure is not None:
        message = failure
    elif not results:
        message = "no assertion ran"
    else:
        return TestOutcome(_label(source), True)
    return TestOutcome(_label(source), False, message)


def _run_check(
    source: str, entry_point: str | None, namespace: dict[str, Any], record: _Record
) -> tuple[list[TestOutcome], bool]:
    lost, failure = False, None
    try:
        code, texts = _compile(source)
    except (SyntaxError, ValueError) as error:
        return [TestOutcome(_label(source), False, _error(error))], False
    try:
        exec(code, namespace)
        if callable(namespace.get("check")) and entry_point:
            namespace["check"](namespace[entry_point])
    except ChildGone:
        lost, failure = True, _UNFINISHED
    except Exception as error:
        failure = f"did not finish: {_error(error)}"
    outcomes = record.results
    if failure is not None:
        outcomes += [TestOutcome(t, False, _UNRUN) for i, t in enumerate(texts) if i not in record.ran]
        if not record.interrupted:  # the block itself failed outside its assertions
            outcomes.append(TestOutcome("check(candidate)", False, failure))
    return outcomes, lost
