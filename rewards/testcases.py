"""A dataset's tests, parsed once into a typed `TestSuite`.

Tests come in one of five forms: a list of assert statements ("asserts"), a
list of call expressions ("calls"), a list of {"stdin", "stdout"} pairs
("stdio"), a HumanEval {"check", "entry_point"} block ("check"), or CRUXEval-I
asserts whose input is the question, `assert f(??) == [1, 2]` ("input").

Each `TestCase` holds what scoring needs: the call expression a predicted trace
describes (`f(3)` in `assert f(3) == 7`, the call itself, the first
`candidate(...)` call of a check block with the entry point's name), the
function it calls, the expected value where the test states one (the `7`), and
for stdio its stdin and expected stdout. Malformed tests raise `InvalidTask`:
the dataset's fault, not the model's.
"""

from __future__ import annotations

import ast
from typing import Any, Literal

import msgspec

from tracer import from_literal

Form = Literal["asserts", "calls", "stdio", "check", "input"]


class InvalidTask(ValueError):
    """The tests (or arguments) given to `score` are malformed: the dataset's fault, not the model's."""


class TestCase(msgspec.Struct, frozen=True, kw_only=True):
    """One test. Its fields are empty where its form has no such thing."""

    __test__ = False  # not a pytest class

    source: str = ""  # the test's Python text: an assert, a call, a check block ("" for stdio)
    call: str | None = None  # the call expression a predicted trace describes
    function: str | None = None  # the name of the function `call` calls
    expected: str | None = None  # the expected value's source: `7` in `assert f(3) == 7`
    stdin: str = ""  # stdio: the program's input
    stdout: str | None = None  # stdio: its expected output (None: not given)

    def expected_value(self) -> Any:
        """The expected value as a Python value (a literal, never evaluated)."""
        if self.expected is None:
            raise InvalidTask(f"the test states no expected value: {self.source!r}")
        try:
            return from_literal(self.expected)
        except ValueError as error:
            raise InvalidTask(f"the expected output is not a literal: {error}") from None


class TestSuite(msgspec.Struct, frozen=True):
    """A dataset's tests: their form and each test case."""

    __test__ = False

    form: Form
    cases: list[TestCase]
    entry_point: str | None = None  # check: the function the block checks

    def case(self, index: int) -> TestCase:
        if not 0 <= index < len(self.cases):
            raise InvalidTask(f"test_index {index} is out of range for {len(self.cases)} tests")
        return self.cases[index]

    def call(self, index: int) -> str:
        """The call expression whose execution a predicted trace describes."""
        case = self.case(index)
        if case.call is not None:
            return case.call
        if self.form == "stdio":
            raise InvalidTask("stdio tests have no call expression")
        if self.form == "check":
            raise InvalidTask("the check block never calls candidate(...)")
        raise InvalidTask(f"cannot find the call in {case.source!r}")


def parse_tests(tests: Any, question: str = "auto") -> TestSuite:
    """Tests in any accepted shape as a `TestSuite` (CRUXEval-I form for the question "input")."""
    if isinstance(tests, dict):
        if "check" in tests:
            if not tests.get("entry_point"):
                raise InvalidTask("a check block needs an entry_point")
            return _check_suite(str(tests["check"]), str(tests["entry_point"]))
        tests = [tests]
    if isinstance(tests, str):
        tests = [tests]
    if not isinstance(tests, (list, tuple)) or not tests:
        raise InvalidTask(f"tests must be a non-empty list, got {type(tests).__name__}")
    if all(isinstance(t, dict) and "stdin" in t for t in tests):
        return TestSuite("stdio", [TestCase(stdin=str(t.get("stdin", "")), stdout=t.get("stdout")) for t in tests])
    if not all(isinstance(t, str) for t in tests):
        raise InvalidTask("tests must be all strings (asserts or calls) or all {'stdin', 'stdout'} pairs")
    trees, holes = [], False
    for t in tests:
        try:
            trees.append(ast.parse(t))
        except SyntaxError as error:
            try:
                trees.append(ast.parse(t.replace("??", "__input__")))  # CRUXEval-I: `??` marks the input
                holes = True
            except SyntaxError:
                raise InvalidTask(f"test is not valid Python: {t[:80]!r}: {error.msg}") from None
    form: Form
    if question == "input" or holes:
        form = "input"
    elif all(t.lstrip().startswith("assert") for t in tests):
        form = "asserts"
    elif any(t.lstrip().startswith("assert") for t in tests):
        raise InvalidTask("tests mix assert statements and call expressions")
    else:
        form = "calls"
    return TestSuite(form, [_case(t, tree, form) for t, tree in zip(tests, trees)])


def _case(source: str, tree: ast.Module, form: Form) -> TestCase:
    node = tree.body[0] if tree.body else None
    expr = node.test if isinstance(node, ast.Assert) else getattr(node, "value", None)
    expected = None
    if form != "calls" and isinstance(expr, ast.Compare) and len(expr.ops) == 1 and isinstance(expr.ops[0], ast.Eq):
        expected = ast.unparse(expr.comparators[0])
        expr = expr.left
    if form == "calls":
        call: str | None = source  # as written: the sandbox evaluates it
    else:
        call = ast.unparse(expr) if isinstance(expr, ast.expr) else None
    return TestCase(source=source, call=call, function=_called(expr), expected=expected)


def _check_suite(check: str, entry_point: str) -> TestSuite:
    try:
        tree = ast.parse(check)
    except SyntaxError as error:
        raise InvalidTask(f"the check block is not valid Python: {error.msg}") from None
    call = None
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "candidate":
            node.func.id = entry_point
            call = ast.unparse(node)
            break
    case = TestCase(source=check, call=call, function=entry_point if call else None)
    return TestSuite("check", [case], entry_point)


def _called(expr: Any) -> str | None:
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name):
        return expr.func.id
    return None
