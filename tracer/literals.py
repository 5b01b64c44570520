"""Python-literal text back to objects: `from_literal(text)`, without evaluating code.

It reads what `tracer.render` writes (and what a model writes in an answer):
what `ast.literal_eval` accepts, plus the few calls `render` uses for values
that have no literal.
"""

from __future__ import annotations

import ast
import warnings
from collections.abc import Callable
from typing import Any

MAX_LITERAL_CHARS = 1_000_000
_LITERAL_CALLS: dict[str, Callable[..., Any]] = {
    "set": set,
    "frozenset": frozenset,
    "float": float,
    "complex": complex,
    "range": range,
    "bytearray": bytearray,
    "tuple": tuple,
    "list": list,
    "dict": dict,
}


def from_literal(text: str) -> Any:
    """Parse Python-literal text, as `render` writes it, without evaluating code.

    Accepts what `ast.literal_eval` accepts plus the calls `render` uses for
    values that have no literal: `set()`, `frozenset({...})`, `float('nan')`,
    `complex(re, im)`, `range(...)`, `bytearray(b'..')`. Raises ValueError.
    """
    if len(text) > MAX_LITERAL_CHARS:
        raise ValueError(f"literal longer than {MAX_LITERAL_CHARS} characters")
    try:
        with warnings.catch_warnings():  # odd escapes in model output are not worth a warning on stderr
            warnings.simplefilter("ignore")  # SyntaxWarning (3.12+) or DeprecationWarning (3.11)
            tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, MemoryError, RecursionError) as error:
        raise ValueError(f"not a Python literal: {error}") from None
    try:
        return _literal(tree.body)
    except TypeError as error:  # an unhashable set element or dict key: {[]}
        raise ValueError(f"not a Python value: {error}") from None


def _literal(node: ast.expr) -> Any:
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _LITERAL_CALLS
        and not node.keywords
        and len(node.args) <= 3
    ):
        args = [_literal(a) for a in node.args]
        if node.func.id == "float" and not (len(args) == 1 and type(args[0]) is str):
            raise ValueError("float() takes one string here, e.g. float('nan')")
        try:
            return _LITERAL_CALLS[node.func.id](*args)
        except (TypeError, ValueError, OverflowError) as error:
            raise ValueError(f"bad {node.func.id}() literal: {error}") from None
    if isinstance(node, ast.Tuple):
        return tuple(_literal(e) for e in node.elts)
    if isinstance(node, ast.List):
        return [_literal(e) for e in node.elts]
    if isinstance(node, ast.Set):
        return {_literal(e) for e in node.elts}
    if isinstance(node, ast.Dict):
        if any(k is None for k in node.keys):
            raise ValueError("dict unpacking (**) is not a literal")
        return {_literal(k): _literal(v) for k, v in zip(node.keys, node.values) if k is not None}
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError) as error:
        raise ValueError(f"not a Python literal: {ast.dump(node)[:80]}") from error
