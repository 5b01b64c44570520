"""Static facts about user code objects that keep the recorder's hot path short.

For every line of a code object we precompute which names the line can bind or
unbind, and whether it can change a value in place (a call, a subscript or
attribute store, an in-place operator on something other than a plain name...).
A line that can only rebind names is checked by reading just those names; any
other line, or any step after other traced code ran, re-checks every local.
"""

from __future__ import annotations

import dis
from collections.abc import Iterator
from types import CodeType
from typing import NamedTuple

# Opcodes that never change an existing value in place (they may bind names,
# which the recorder checks separately). Anything not listed here is assumed to
# possibly mutate some object, so the whole frame is re-checked. The tables hold
# the names of every supported version (3.11 to 3.13, and some of 3.14's).
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
        "CONTAINS_OP",
        "UNARY_NEGATIVE",
        "UNARY_NOT",
        "UNARY_INVERT",
        "TO_BOOL",
        "BINARY_OP",
        "BINARY_SLICE",
        "GET_ITER",
        "FOR_ITER",
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
        "LIST_EXTEND",
        "SET_UPDATE",
        "DICT_UPDATE",
        "DICT_MERGE",
        "LIST_TO_TUPLE",
        "FORMAT_VALUE",
        "FORMAT_SIMPLE",
        "FORMAT_WITH_SPEC",
        "CONVERT_VALUE",
        "UNPACK_SEQUENCE",
        "UNPACK_EX",
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


class LineInfo(NamedTuple):
    stores: tuple[tuple[str, bool], ...]  # (name, is_global) bound or unbound by the line
    mutates: bool  # may change an existing value in place
    inplace: tuple[str, ...]  # names whose value an in-place operator (`x += ...`) updates
    subscript: bool  # reads a subscript (mutates a defaultdict)


class CodeInfo(NamedTuple):
    lines: dict[int, LineInfo]
    globals_written: tuple[str, ...]  # names the code declares `global` and writes
    is_module: bool


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


def _analyse(code: CodeType) -> CodeInfo:
    lines_of = line_of_offsets(code)
    stores: dict[int, list[tuple[str, bool]]] = {}
    mutates: dict[int, bool] = {}
    inplace: dict[int, list[str]] = {}
    subscript: dict[int, bool] = {}
    globals_written: list[str] = []
    instructions = list(dis.get_instructions(code))
    for i, ins in enumerate(instructions):
        line = lines_of.get(ins.offset)
        if line is None:
            continue
        name = ins.opname
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
    all_lines = set(stores) | set(mutates) | set(inplace) | set(subscript)
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
        )
        for line in all_lines
    }
    info[START_LINE] = LineInfo((), False, (), False)
    return CodeInfo(info, tuple(dict.fromkeys(globals_written)), is_module)
