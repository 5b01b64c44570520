"""Python-literal text to and from values, without evaluating code: `from_literal`, `to_literal`.

`from_literal(text)` reads what `tracer.render` writes for values (and what a
model writes in an answer): what `ast.literal_eval` accepts, plus the calls
`render` writes for values without a literal (`set()`, `float('nan')`,
`Decimal('1.5')`, `array([[1, 2]], dtype=int64)`, `deque([1])` ...). It has a
budget, so no text costs the judge much: at most `MAX_LITERAL_CHARS` characters,
`MAX_LITERAL_NODES` syntax nodes and elements made by calls (`list(range(n))`,
`bytearray(n)`), nesting `MAX_LITERAL_DEPTH` deep, and arrays of at most
`tracer.library.MAX_ARRAY_BYTES`. Anything else is a ValueError that says why.

`to_literal(obj)` is the way back: exact Python source for a value made of what
`to_python` builds, with no caps; a ValueError for what has none (an object, a
cycle, a value beyond the budget above).
"""

from __future__ import annotations

import ast
import math
import re
import warnings
from collections import Counter, OrderedDict, defaultdict, deque
from collections.abc import Callable
from typing import Any

from .encode import EncodeLimits, Encoder
from .library import FACTORIES, build_array, build_call, numpy
from .render import literal_text
from .schema import Value

MAX_LITERAL_CHARS = 1_000_000
MAX_LITERAL_NODES = 200_000  # syntax nodes, plus the elements that calls such as list(range(n)) make
MAX_LITERAL_DEPTH = 100  # syntax nesting
_EXACT = EncodeLimits(max_depth=MAX_LITERAL_DEPTH // 2, max_items=MAX_LITERAL_NODES, max_str=MAX_LITERAL_CHARS)


def from_literal(text: str) -> Any:
    """Parse Python-literal text, as `render` writes it, without evaluating code (see the module docstring).

    Raises ValueError, with what is wrong, for anything else or anything over the budget.
    """
    if len(text) > MAX_LITERAL_CHARS:
        raise ValueError(f"literal longer than {MAX_LITERAL_CHARS} characters")
    try:
        with warnings.catch_warnings():  # odd escapes in model output are not worth a warning on stderr
            warnings.simplefilter("ignore")  # SyntaxWarning (3.12+) or DeprecationWarning (3.11)
            tree = ast.parse(_labels_as_names(text.strip()), mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError) as error:
        raise ValueError(f"not a Python literal: {error}") from None
    _check_size(tree.body)
    reader = _Reader()
    try:
        return reader.value(tree.body)
    except (TypeError, OverflowError, ArithmeticError) as error:  # an unhashable set element or dict key: {[]}
        raise ValueError(f"not a Python value: {error}") from None


def to_literal(obj: Any) -> str:
    """Exact Python source of a value made of what `to_python` builds; `from_literal` reads it back.

    Builtin values, numpy arrays, matrices and scalars, deque, Counter,
    OrderedDict, defaultdict (builtin factory), Decimal, Fraction, the datetime
    types and memoryview, written in full (shared parts written out again)
    up to the limits of `from_literal`. Raises ValueError for anything else:
    an object, a function, a subclass, a value that contains itself.
    """
    value = Encoder(_EXACT).encode(obj)
    problem = _no_literal(value)
    if problem is not None:
        raise ValueError(problem)
    return literal_text(value, MAX_LITERAL_CHARS)


# render's labels (`#1=[0, 0]`, `#1`: a `#` starts a comment in Python), and the strings they may not be in
_LABELS = re.compile(
    r"'''(?:[^\\]|\\.)*?'''"
    r'|"""(?:[^\\]|\\.)*?"""'
    r"|'(?:[^'\\\n]|\\.)*'"
    r'|"(?:[^"\\\n]|\\.)*"'
    r"|#(\d{1,6})(=?)",
    re.DOTALL,
)
_LABEL_NAME = re.compile(r"_([LR])(\d+)_")


def _labels_as_names(text: str) -> str:
    """`#1=[0]` -> `_L1_@[0]` and `#1` -> `_R1_` outside strings, so that `ast` parses render's labels."""
    if "#" not in text:
        return text
    return _LABELS.sub(
        lambda m: m[0] if m[1] is None else f"_{'L' if m[2] else 'R'}{m[1]}_" + ("@" if m[2] else ""), text
    )


def _check_size(root: ast.expr) -> None:
    """ValueError past the budget of syntax nodes or the depth limit."""
    count = 0
    stack: list[tuple[ast.AST, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_LITERAL_NODES:
            raise ValueError(f"literal larger than {MAX_LITERAL_NODES} syntax nodes")
        if depth > MAX_LITERAL_DEPTH:
            raise ValueError(f"literal nested deeper than {MAX_LITERAL_DEPTH}")
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


_LIBRARY_CONTAINERS: set[tuple[str, str]] = {
    ("list", "deque"),
    ("dict", "Counter"),
    ("dict", "OrderedDict"),
    ("dict", "defaultdict"),
    ("bytes", "memoryview"),
    ("ndarray", "matrix"),
}
_NOT_VALUES = {"object", "exception", "function", "class", "module", "generator", "coroutine", "other", "enum"}


def _no_literal(root: Value) -> str | None:
    """Why an encoding (made without caps) has no exact literal, or None."""
    stack = [root]
    while stack:
        value = stack.pop()
        if value.t == "deep":
            return f"a value nested deeper than {_EXACT.max_depth} has no literal here"
        if value.more:
            return "a value too large for a literal"
        if value.t in _NOT_VALUES:
            return f"a {value.t} ({value.type or value.v}) has no Python literal"
        if value.type is not None and (value.t, value.type) not in _LIBRARY_CONTAINERS:
            return f"a {value.type} (a {value.t} of its own type) has no Python literal"
        factory = (value.attrs or {}).get("default_factory") if value.type == "defaultdict" else None
        if factory is not None and not (factory.t == "none" or (factory.t == "class" and factory.v in FACTORIES)):
            return "a defaultdict with a factory of its own has no Python literal"
        stack.extend(value.items or ())
        stack.extend(value.keys or ())
        stack.extend(v for k, v in (value.attrs or {}).items() if k != "default_factory")
    return None


# Names a call may use for each constructor of tracer.library.build_call.
_CALL_NAMES = {
    "Decimal": "Decimal",
    "decimal.Decimal": "Decimal",
    "Fraction": "Fraction",
    "fractions.Fraction": "Fraction",
    **{
        f"{prefix}{name}": f"datetime.{name}"
        for name in ("date", "datetime", "time", "timedelta", "timezone")
        for prefix in ("", "datetime.")
    },
}
_CONSTANTS: dict[str, Callable[[], Any]] = {
    "datetime.timezone.utc": lambda: build_call("datetime.timezone", [build_call("datetime.timedelta", [0], {})], {}),
    "timezone.utc": lambda: build_call("datetime.timezone", [build_call("datetime.timedelta", [0], {})], {}),
    "np.nan": lambda: math.nan,
    "numpy.nan": lambda: math.nan,
    "np.inf": lambda: math.inf,
    "numpy.inf": lambda: math.inf,
    "np.True_": lambda: numpy().True_,
    "numpy.True_": lambda: numpy().True_,
    "np.False_": lambda: numpy().False_,
    "numpy.False_": lambda: numpy().False_,
}
_IN_ARRAYS = {"nan": math.nan, "inf": math.inf}  # as numpy prints them: array([nan, 1.])


def _dotted(node: ast.expr) -> str | None:
    """`a.b.c` for a name or a chain of attributes, else None."""
    names: list[str] = []
    while isinstance(node, ast.Attribute):
        names.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    names.append(node.id)
    return ".".join(reversed(names))


class _Reader:
    """Evaluates a syntax tree within a budget of elements made and of nesting.

    A label's value is made again where the label recurs (by value, as a copy), and counts
    again against the budget: so that `#1=[0], #2=[#1, #1], #3=[#2, #2] ...` cannot grow
    exponentially, and the value read is always a tree, never shared nor cyclic.
    """

    def __init__(self) -> None:
        self.budget = MAX_LITERAL_NODES
        self.depth = 0
        self.labels: dict[str, ast.expr] = {}  # label -> the syntax of its value
        self.open: set[str] = set()  # labels whose value is being read (a reference to one is a cycle)

    def spend(self, n: int) -> None:
        self.budget -= n
        if self.budget < 0:
            raise ValueError(f"literal larger than {MAX_LITERAL_NODES} elements")

    def value(self, node: ast.expr, in_array: bool = False) -> Any:
        self.spend(1)
        self.depth += 1
        try:
            if self.depth > MAX_LITERAL_DEPTH:
                raise ValueError(f"literal nested deeper than {MAX_LITERAL_DEPTH}")
            return self.read(node, in_array)
        finally:
            self.depth -= 1

    def label(self, node: ast.expr) -> tuple[str, str] | None:
        """("L", "1") for a label's definition `_L1_@...`, ("R", "1") for a reference `_R1_`."""
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult):
            node = node.left
        match = _LABEL_NAME.fullmatch(node.id) if isinstance(node, ast.Name) else None
        return (match[1], match[2]) if match else None

    def labelled(self, node: ast.expr, kind: str, label: str, in_array: bool) -> Any:
        if kind == "R":
            if label in self.open:
                raise ValueError(f"#{label} is inside itself: a value that contains itself is not read")
            if label not in self.labels:
                raise ValueError(f"#{label} is used before #{label}= labels a value")
            return self.value(self.labels[label], in_array)
        if not isinstance(node, ast.BinOp):
            raise ValueError(f"#{label}= labels nothing")
        if self.labels.setdefault(label, node.right) is not node.right:
            raise ValueError(f"#{label}= labels two values")
        self.open.add(label)
        try:
            return self.value(node.right, in_array)
        finally:
            self.open.discard(label)

    def read(self, node: ast.expr, in_array: bool) -> Any:
        label = self.label(node)
        if label is not None:
            return self.labelled(node, *label, in_array)
        if isinstance(node, ast.Constant):
            if node.value is Ellipsis:
                raise ValueError("'...' is not a value (Python writes it for a container inside itself)")
            return node.value
        if isinstance(node, ast.Tuple):
            return tuple(self.value(e, in_array) for e in node.elts)
        if isinstance(node, ast.List):
            return [self.value(e, in_array) for e in node.elts]
        if isinstance(node, ast.Set):
            return {self.value(e) for e in node.elts}
        if isinstance(node, ast.Dict):
            if any(k is None for k in node.keys):
                raise ValueError("dict unpacking (**) is not a literal")
            return {self.value(k): self.value(v) for k, v in zip(node.keys, node.values) if k is not None}
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            operand = self.value(node.operand, in_array)
            if type(operand) not in (int, float, complex):
                raise ValueError("a sign applies to a number")
            return -operand if isinstance(node.op, ast.USub) else +operand
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
            return self.complex_sum(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        name = _dotted(node)
        if name is not None and name in _CONSTANTS:
            return _CONSTANTS[name]()
        if in_array and name in _IN_ARRAYS:
            return _IN_ARRAYS[name]
        raise ValueError(f"not a Python literal: {ast.dump(node)[:80]}")

    def complex_sum(self, node: ast.BinOp) -> complex:
        """`1+2j`, `-1.5-0j`: a real number plus or minus an imaginary one, as `ast.literal_eval` allows."""
        left, right = self.value(node.left), node.right
        if not (isinstance(right, ast.Constant) and type(right.value) is complex and type(left) in (int, float)):
            raise ValueError("only a complex number like 1+2j may be written with + or -")
        return complex(left + right.value if isinstance(node.op, ast.Add) else left - right.value)

    def call(self, node: ast.Call) -> Any:
        name = _dotted(node.func)
        if (
            name is None
            or any(k.arg is None for k in node.keywords)
            or any(isinstance(a, ast.Starred) for a in node.args)
        ):
            raise ValueError(f"not a Python literal: {ast.dump(node)[:80]}")
        if name in ("array", "np.array", "numpy.array", "matrix", "np.matrix", "numpy.matrix"):
            return self.array(node, matrix=name.endswith("matrix"))
        if name in ("defaultdict", "collections.defaultdict"):
            return self.defaultdict(node)
        args = [self.value(a) for a in node.args]
        kwargs = {k.arg: self.value(k.value) for k in node.keywords if k.arg is not None}
        short = name.removeprefix("collections.")
        builder = _BUILDERS.get(name) or (_BUILDERS.get(short) if short in _COLLECTIONS else None)
        if builder is not None:
            for arg in args:  # what the call may make from its argument: list(range(n)), bytearray(n)
                if type(arg) in (str, bytes, range, list, tuple, set, frozenset, dict):
                    self.spend(len(arg))
                elif type(arg) is int and short == "bytearray":
                    self.spend(max(arg, 0))
            try:
                return builder(*args, **kwargs)
            except (TypeError, OverflowError, ArithmeticError) as error:
                raise ValueError(f"bad {name}() literal: {error}") from None
        if name in _CALL_NAMES:
            return build_call(_CALL_NAMES[name], args, kwargs)
        if name.startswith(("np.", "numpy.")):
            return build_call(name, args, kwargs)
        raise ValueError(f"{name}() is not a literal")

    def defaultdict(self, node: ast.Call) -> Any:
        if node.keywords or not 1 <= len(node.args) <= 2:
            raise ValueError("defaultdict() takes a factory and a dict here")
        factory_node = node.args[0]
        is_none = isinstance(factory_node, ast.Constant) and factory_node.value is None
        factory = None if is_none else FACTORIES.get(_dotted(factory_node) or "")
        if factory is None and not is_none:
            raise ValueError(f"defaultdict() takes one of {', '.join(FACTORIES)} or None as its factory here")
        contents = self.value(node.args[1]) if len(node.args) == 2 else {}
        if type(contents) is not dict:
            raise ValueError("defaultdict() takes a dict")
        return defaultdict(factory, contents)

    def array(self, node: ast.Call, matrix: bool) -> Any:
        keywords = {k.arg: k.value for k in node.keywords if k.arg is not None}
        if len(node.args) == 2 and "dtype" not in keywords:
            keywords["dtype"] = node.args[1]
        if not 1 <= len(node.args) <= 2 or set(keywords) - {"dtype", "shape"}:
            raise ValueError("array() takes the elements, and dtype= and shape= here")
        dtype = self.dtype(keywords["dtype"]) if "dtype" in keywords else None
        flat, shape = self.elements(node.args[0], objects=dtype == "object")
        if "shape" in keywords:  # as numpy writes an array it cannot show: array([], shape=(0, 3), dtype=float64)
            given = self.value(keywords["shape"])
            shape = list(given) if type(given) is tuple else [given]
        return build_array(flat, shape, dtype, matrix)

    def dtype(self, node: ast.expr) -> str:
        if isinstance(node, ast.Constant) and type(node.value) is str:
            return node.value
        name = _dotted(node)
        if name is None:
            raise ValueError("dtype= takes a name such as int64 or a string such as '<U3'")
        return name.removeprefix("np.").removeprefix("numpy.")

    def elements(self, node: ast.expr, objects: bool) -> tuple[list[Any], list[int]]:
        """An array's elements in C order and its shape: the nested lists (and tuples, but for
        dtype=object, where an element that is a list is written list([...])) are its dimensions."""

        def dimension(n: ast.expr) -> bool:
            return isinstance(n, ast.List) or (isinstance(n, ast.Tuple) and not objects)

        shape: list[int] = []
        level = [node]
        while level and all(dimension(n) for n in level):
            sizes = {len(n.elts) for n in level}  # type: ignore[attr-defined]
            if len(sizes) != 1:
                raise ValueError("an array's rows must all have the same length")
            shape.append(sizes.pop())
            level = [e for n in level for e in n.elts]  # type: ignore[attr-defined]
        if level and any(dimension(n) for n in level):
            raise ValueError("an array's rows must all have the same depth")
        return [self.value(e, in_array=True) for e in level], shape


_COLLECTIONS = {"deque", "Counter", "OrderedDict"}
_BUILDERS: dict[str, Callable[..., Any]] = {
    "set": set,
    "frozenset": frozenset,
    "tuple": tuple,
    "list": list,
    "dict": dict,
    "range": range,
    "complex": complex,
    "deque": deque,
    "Counter": Counter,
    "OrderedDict": OrderedDict,
    "float": lambda text: (
        float(text) if type(text) is str else _refuse("float() takes one string here, e.g. float('nan')")
    ),
    "bytearray": lambda data=b"": bytearray(data),
    "memoryview": lambda data: (
        memoryview(data) if type(data) in (bytes, bytearray) else _refuse("memoryview() takes bytes")
    ),
}


def _refuse(message: str) -> Any:
    raise ValueError(message)
