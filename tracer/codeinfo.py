"""Static facts about user code objects that keep the recorder's hot path short.

For every line of a code object we precompute which names the line can bind or
unbind, and whether it can change a value in place (a call, a subscript or
attribute store, an in-place operator on something other than a plain name...).
A line that can only rebind names is checked by reading just those names; any
other line, or any step after other traced code ran, re-checks every local.

Iterating runs code too (`iter(a.pop, 0)` pops at every step of a `for`), so a
line that iterates over, unpacks, extends from or searches a value is pure only
when that value is a plain name holding a builtin container (`iterates`: the
recorder checks the type at run time) or a literal; over anything else it may
mutate. `CodeInfo.scope` names the variables of outer scopes that a frame shows.
"""

from __future__ import annotations

import dis
from collections.abc import Iterator
from types import CodeType
from typing import NamedTuple

from .schema import Scope

# Opcodes that never change an existing value in place (they may bind names,
# which the recorder checks separately). Anything not listed here (or in
# _CONSUMERS) is assumed to possibly mutate some object, so the whole frame is
# re-checked. The tables hold the names of every supported version (3.11 to
# 3.13, and some of 3.14's).
_PURE_OPS = frozenset(
    [
        "NOP",
        "RESUME",
        "CACHE",
        "EXTENDED_ARG",
        "POP_TOP",
        "PUSH_NULL",
        "COPY",
        "SWAP",
        "END_FOR",
        "END_SEND",
        "NOT_TAKEN",
        "POP_ITER",
        "LOAD_FAST",
        "LOAD_FAST_CHECK",
        "LOAD_FAST_AND_CLEAR",
        "LOAD_FAST_LOAD_FAST",
        "LOAD_FAST_BORROW",
        "LOAD_FAST_BORROW_LOAD_FAST_BORROW",
        "LOAD_CONST",
        "LOAD_SMALL_INT",
        "LOAD_NAME",
        "LOAD_GLOBAL",
        "LOAD_DEREF",
        "LOAD_CLOSURE",
        "LOAD_ATTR",
        "LOAD_METHOD",
        "LOAD_SUPER_ATTR",
        "LOAD_ASSERTION_ERROR",
        "LOAD_BUILD_CLASS",
        "STORE_FAST",
        "STORE_FAST_LOAD_FAST",
        "STORE_FAST_STORE_FAST",
        "STORE_NAME",
        "STORE_GLOBAL",
        "STORE_DEREF",
        "DELETE_FAST",
        "DELETE_NAME",
        "DELETE_GLOBAL",
        "DELETE_DEREF",
        "MAKE_CELL",
        "COPY_FREE_VARS",
        "COMPARE_OP",
        "IS_OP",
        "UNARY_NEGATIVE",
        "UNARY_NOT",
        "UNARY_INVERT",
        "TO_BOOL",
        "BINARY_OP",
        "BINARY_SLICE",
        "GET_ITER",
        "JUMP_FORWARD",
        "JUMP_BACKWARD",
        "JUMP_BACKWARD_NO_INTERRUPT",
        "JUMP",
        "JUMP_NO_INTERRUPT",
        "POP_JUMP_IF_TRUE",
        "POP_JUMP_IF_FALSE",
        "POP_JUMP_IF_NONE",
        "POP_JUMP_IF_NOT_NONE",
        "POP_JUMP_FORWARD_IF_TRUE",
        "POP_JUMP_FORWARD_IF_FALSE",
        "POP_JUMP_FORWARD_IF_NONE",
        "POP_JUMP_FORWARD_IF_NOT_NONE",
        "POP_JUMP_BACKWARD_IF_TRUE",
        "POP_JUMP_BACKWARD_IF_FALSE",
        "POP_JUMP_BACKWARD_IF_NONE",
        "POP_JUMP_BACKWARD_IF_NOT_NONE",
        "JUMP_IF_TRUE_OR_POP",
        "JUMP_IF_FALSE_OR_POP",
        "RETURN_VALUE",
        "RETURN_CONST",
        "RETURN_GENERATOR",
        "BUILD_TUPLE",
        "BUILD_LIST",
        "BUILD_SET",
        "BUILD_MAP",
        "BUILD_CONST_KEY_MAP",
        "BUILD_STRING",
        "BUILD_SLICE",
        "LIST_APPEND",
        "SET_ADD",
        "MAP_ADD",
        "DICT_MERGE",
        "LIST_TO_TUPLE",
        "FORMAT_VALUE",
        "FORMAT_SIMPLE",
        "FORMAT_WITH_SPEC",
        "CONVERT_VALUE",
        "POP_EXCEPT",
        "PUSH_EXC_INFO",
        "CHECK_EXC_MATCH",
        "RAISE_VARARGS",
        "RERAISE",
        "MAKE_FUNCTION",
        "SET_FUNCTION_ATTRIBUTE",
        "PRECALL",
        "KW_NAMES",
        "YIELD_VALUE",
        "GEN_START",
    ]
)
_STORES = frozenset(
    {
        "STORE_FAST",
        "STORE_NAME",
        "STORE_DEREF",
        "DELETE_FAST",
        "DELETE_NAME",
        "DELETE_DEREF",
        "STORE_FAST_STORE_FAST",
        "LOAD_FAST_AND_CLEAR",
    }
)
_GLOBAL_STORES = frozenset({"STORE_GLOBAL", "DELETE_GLOBAL"})
_SUBSCRIPT = "BINARY_SUBSCR"  # pure unless a defaultdict is around (__missing__ inserts)
# Opcodes that iterate over (or search) the value on top of the stack: pure only over a builtin container.
_CONSUMERS = frozenset(
    {"FOR_ITER", "UNPACK_SEQUENCE", "UNPACK_EX", "LIST_EXTEND", "SET_UPDATE", "CONTAINS_OP", "DICT_UPDATE"}
)
# Loads of a name, whose value the recorder can look at: (opcode, is_global).
_NAME_LOADS = {
    "LOAD_FAST": False,
    "LOAD_FAST_CHECK": False,
    "LOAD_FAST_BORROW": False,
    "LOAD_DEREF": False,
    "LOAD_NAME": False,
    "LOAD_GLOBAL": True,
}
_DOUBLE_LOADS = frozenset({"LOAD_FAST_LOAD_FAST", "LOAD_FAST_BORROW_LOAD_FAST_BORROW"})
# Producers of a builtin container (a literal, a display): iterating it runs no code.
_BUILDS = frozenset(
    {"LOAD_CONST", "BUILD_LIST", "BUILD_TUPLE", "BUILD_SET", "BUILD_MAP", "BUILD_CONST_KEY_MAP", "LIST_TO_TUPLE"}
)
# What a comprehension (3.12+, inlined) puts between GET_ITER and its FOR_ITER.
_LOOP_PRELUDE = frozenset(
    {"LOAD_FAST_AND_CLEAR", "SWAP", "BUILD_LIST", "BUILD_SET", "BUILD_MAP", "EXTENDED_ARG", "NOP"}
)


class LineInfo(NamedTuple):
    stores: tuple[tuple[str, bool], ...]  # (name, is_global) bound or unbound by the line
    mutates: bool  # may change an existing value in place
    inplace: tuple[str, ...]  # names whose value an in-place operator (`x += ...`) updates
    subscript: bool  # reads a subscript (mutates a defaultdict)
    iterates: tuple[tuple[str, bool], ...]  # (name, is_global) iterated over: pure if it holds a builtin container


class CodeInfo(NamedTuple):
    lines: dict[int, LineInfo]
    globals_written: tuple[str, ...]  # names the code declares `global` and writes
    is_module: bool
    scope: dict[str, Scope]  # names of outer scopes a frame shows: "global" (declared, written) or "nonlocal" (free)


START_LINE = 0  # pseudo line that precedes the first line of a frame: binds nothing


def walk_code(code: CodeType) -> Iterator[CodeType]:
    """A code object and every code object nested in it."""
    yield code
    for const in code.co_consts:
        if isinstance(const, CodeType):
            yield from walk_code(const)


def line_of_offsets(code: CodeType) -> dict[int, int]:
    out: dict[int, int] = {}
    for start, end, line in code.co_lines():
        if line is not None:
            for offset in range(start, end, 2):
                out[offset] = line
    return out


_CACHE: dict[tuple[object, ...], CodeInfo] = {}
_CACHE_SIZE = 4096


def analyse(code: CodeType) -> CodeInfo:
    """The CodeInfo of a code object, cached by content (the same source compiled again hits)."""
    key = (
        code.co_code,
        code.co_names,
        code.co_varnames,
        code.co_cellvars,
        code.co_freevars,
        code.co_name,
        code.co_firstlineno,
        code.co_linetable,
    )
    info = _CACHE.get(key)
    if info is None:
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.clear()
        info = _CACHE[key] = _analyse(code)
    return info


def _iterated(instructions: list[dis.Instruction], i: int) -> tuple[str, bool] | bool:
    """What the iterating instruction `i` iterates over: a (name, is_global) the recorder
    checks, True for a literal or display (pure), False for anything else (may mutate)."""
    j = i - 1
    if instructions[i].opname == "FOR_ITER":  # its iterator: made by GET_ITER, or a comprehension's `.0` (3.11)
        while j >= 0 and instructions[j].opname in _LOOP_PRELUDE:
            j -= 1
        if j >= 0 and instructions[j].opname == "GET_ITER":
            j -= 1
    if j < 0:
        return False
    source = instructions[j]
    if source.opname in _NAME_LOADS and not (
        source.opname == "LOAD_GLOBAL" and source.arg is not None and source.arg & 1
    ):
        return source.argval, _NAME_LOADS[source.opname]
    if source.opname in _DOUBLE_LOADS:
        return source.argval[1], False
    return source.opname in _BUILDS


def _analyse(code: CodeType) -> CodeInfo:
    lines_of = line_of_offsets(code)
    stores: dict[int, list[tuple[str, bool]]] = {}
    mutates: dict[int, bool] = {}
    inplace: dict[int, list[str]] = {}
    subscript: dict[int, bool] = {}
    iterates: dict[int, list[tuple[str, bool]]] = {}
    globals_written: list[str] = []
    instructions = list(dis.get_instructions(code))
    for i, ins in enumerate(instructions):
        line = lines_of.get(ins.offset)
        if line is None:
            continue
        name = ins.opname
        if name in _CONSUMERS:
            over = _iterated(instructions, i)
            if over is False:
                mutates[line] = True
            elif over is not True:
                iterates.setdefault(line, []).append(over)
            else:
                mutates.setdefault(line, False)
            continue
        if name in _STORES or name == "STORE_FAST_LOAD_FAST":
            names = ins.argval if isinstance(ins.argval, tuple) else (ins.argval,)
            if name == "STORE_FAST_LOAD_FAST":
                names = names[:1]
            stores.setdefault(line, []).extend((n, False) for n in names)
        elif name in _GLOBAL_STORES:
            stores.setdefault(line, []).append((ins.argval, True))
            globals_written.append(ins.argval)
        elif name == "BINARY_OP" and ins.argrepr.endswith("=") and ins.argrepr not in ("==", "!=", "<=", ">="):
            nxt = instructions[i + 1] if i + 1 < len(instructions) else None
            if nxt is not None and nxt.opname in ("STORE_FAST", "STORE_NAME", "STORE_DEREF", "STORE_GLOBAL"):
                inplace.setdefault(line, []).append(nxt.argval)
            else:
                mutates[line] = True
        elif name == _SUBSCRIPT:
            subscript[line] = True
        elif name not in _PURE_OPS:
            mutates[line] = True
        else:
            mutates.setdefault(line, False)
    all_lines = set(stores) | set(mutates) | set(inplace) | set(subscript) | set(iterates)
    is_module = code.co_name == "<module>"
    if is_module:  # module dunders (__doc__, __annotations__ ...) are not shown
        stores = {
            line: [(n, g) for n, g in names if not (n[:2] == "__" and n[-2:] == "__")] for line, names in stores.items()
        }
    info = {
        line: LineInfo(
            tuple(dict.fromkeys(stores.get(line, ()))),
            mutates.get(line, False),
            tuple(inplace.get(line, ())),
            subscript.get(line, False),
            tuple(dict.fromkeys(iterates.get(line, ()))),
        )
        for line in all_lines
    }
    info[START_LINE] = LineInfo((), False, (), False, ())
    written = tuple(dict.fromkeys(globals_written))
    scope: dict[str, Scope] = {name: "nonlocal" for name in code.co_freevars}
    scope.update((name, "global") for name in written)
    return CodeInfo(info, written, is_module, scope)
