"""The library values the codec builds: by constructor name, checked, with bounded memory.

`to_python` (values from a trace) and `from_literal` (values in an answer) build
library values only through `build_call`, `build_array` and `FACTORIES`, so
both accept the same ones: numpy arrays, matrices and scalars, Decimal,
Fraction and the datetime types; deque, Counter, OrderedDict and defaultdict
are built where their containers are. numpy is imported on first use (never
by the tracer while it records). Arguments are checked before anything is
built, so no value can make the judge allocate more than `MAX_ARRAY_BYTES` for
an array or compute for long (no string exponents, no big allocations by size).
"""

from __future__ import annotations

import datetime
import decimal
import fractions
import math
import re
import warnings
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from typing import Any

MAX_ARRAY_BYTES = 1 << 26  # 64 MiB: the most one decoded or parsed array may take
ATOM_TYPES = (bool, int, float, complex, str, bytes)

# The factories a defaultdict decodes with, by the name its encoding gives them.
FACTORIES: dict[str, Callable[[], Any]] = {
    cls.__name__: cls
    for cls in (int, float, complex, str, bytes, bool, list, dict, set, frozenset, tuple, deque, Counter, OrderedDict)
}


def numpy() -> Any:
    """The numpy module (imported here, in the judge, the first time a numpy value is built)."""
    import numpy

    return numpy


def build_call(name: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
    """The value of the call `name(*args, **kwargs)` for a known constructor; ValueError otherwise."""
    if name in ("np.dtype", "numpy.dtype"):
        if kwargs or len(args) != 1 or type(args[0]) is not str:
            raise ValueError(f"{name}() takes the dtype's name here, e.g. np.dtype('int64')")
        return parse_dtype(args[0])
    if name.startswith(("np.", "numpy.")):
        if kwargs or len(args) != 1 or type(args[0]) not in ATOM_TYPES:
            raise ValueError(f"{name}() takes one number, string or bytes")
        constructor: Callable[..., Any] = scalar_type(name.partition(".")[2])
    else:
        found = _CALLS.get(name)
        if found is None:
            raise ValueError(f"{name}() is not a value")
        constructor = found
    try:
        return constructor(*args, **kwargs)
    except (TypeError, OverflowError, ArithmeticError) as error:  # Decimal's errors are ArithmeticErrors
        raise ValueError(f"bad {name}() value: {error}") from None


def scalar_type(name: str) -> type:
    """numpy's scalar type `name` (int64, float32, bool ...), for the dtypes an array may hold."""
    np = numpy()
    cls = np.__dict__.get(name)
    if not (isinstance(cls, type) and issubclass(cls, np.generic)) or not _readable(np.dtype(cls)):
        raise ValueError(f"np.{name} is not a numpy scalar type of a supported dtype")
    return cls


_DTYPE_TEXT = re.compile(r"[<>|=]?[A-Za-z_]+[0-9]*")


def parse_dtype(text: str) -> Any:
    """A numpy dtype from its name (`int64`, `bool`, `object`) or dtype string (`<U3`), of a supported kind."""
    if not _DTYPE_TEXT.fullmatch(text):
        raise ValueError(f"unsupported dtype {text!r}")
    np = numpy()
    try:
        dtype = np.dtype(text)
    except TypeError:
        raise ValueError(f"unknown dtype {text!r}") from None
    if not _readable(dtype):
        raise ValueError(f"unsupported dtype {text!r}")
    return dtype


def _readable(dtype: Any) -> bool:
    kind, size = dtype.kind, dtype.itemsize
    plain = dtype.fields is None and dtype.subdtype is None
    return plain and (kind in "biuUSO" or (kind == "f" and size <= 8) or (kind == "c" and size <= 16))


def build_array(flat: list[Any], shape: list[int], dtype: str | None, matrix: bool = False) -> Any:
    """An ndarray (or np.matrix) of the given shape from its elements in C order; ValueError if they do not fit."""
    np = numpy()
    if len(shape) > 32 or any(type(n) is not int or n < 0 for n in shape):
        raise ValueError(f"bad array shape {shape}")
    if math.prod(shape) != len(flat):
        raise ValueError(f"{len(flat)} elements do not make an array of shape {tuple(shape)}")
    kind = parse_dtype(dtype) if dtype is not None else None
    if kind is not None and kind.itemsize * len(flat) > MAX_ARRAY_BYTES:
        raise ValueError(f"an array over {MAX_ARRAY_BYTES} bytes")
    if kind is not None and kind.kind == "O":
        out = np.empty(len(flat), dtype=object)
        for i, element in enumerate(flat):
            out[i] = element
    elif all(type(x) in ATOM_TYPES for x in flat):
        out = np.array(flat, dtype=kind)
        if out.nbytes > MAX_ARRAY_BYTES:
            raise ValueError(f"an array over {MAX_ARRAY_BYTES} bytes")
    else:
        raise ValueError("array elements must be numbers, strings or bytes (or the dtype object)")
    out = out.reshape(shape)
    if not matrix:
        return out
    with warnings.catch_warnings():  # "the matrix subclass is not the recommended way": it is the value we have
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        return np.matrix(out)


def _ints(*args: Any) -> None:
    if any(type(a) is not int for a in args):
        raise ValueError("the arguments must be ints")


def _decimal(value: Any) -> decimal.Decimal:
    if type(value) not in (str, int):
        raise ValueError("Decimal() takes a string or an int here")
    return decimal.Decimal(value)


_FRACTION_TEXT = re.compile(r"\s*[+-]?\d+(\s*/\s*\d+)?\s*")  # no exponents: Fraction('1e999999999') would take forever


def _fraction(*args: Any) -> fractions.Fraction:
    if len(args) == 1 and type(args[0]) is str and _FRACTION_TEXT.fullmatch(args[0]):
        return fractions.Fraction(args[0])
    if not 1 <= len(args) <= 2:
        raise ValueError("Fraction() takes a numerator and a denominator")
    _ints(*args)
    return fractions.Fraction(*args)


def _zone(tzinfo: Any, fold: Any) -> None:
    if not (tzinfo is None or type(tzinfo) is datetime.timezone) or fold not in (0, 1):
        raise ValueError("tzinfo must be a datetime.timezone and fold 0 or 1")


def _date(*args: Any) -> datetime.date:
    _ints(*args)
    return datetime.date(*args)


def _datetime(*args: Any, tzinfo: Any = None, fold: Any = 0) -> datetime.datetime:
    _ints(*args)
    _zone(tzinfo, fold)
    return datetime.datetime(*args).replace(tzinfo=tzinfo, fold=fold)


def _time(*args: Any, tzinfo: Any = None, fold: Any = 0) -> datetime.time:
    _ints(*args)
    _zone(tzinfo, fold)
    return datetime.time(*args).replace(tzinfo=tzinfo, fold=fold)


def _timedelta(*args: Any, **kwargs: Any) -> datetime.timedelta:
    if any(type(a) not in (int, float) for a in (*args, *kwargs.values())):
        raise ValueError("timedelta() takes numbers")
    return datetime.timedelta(*args, **kwargs)


def _timezone(offset: Any, *name: Any) -> datetime.timezone:
    if type(offset) is not datetime.timedelta or any(type(n) is not str for n in name):
        raise ValueError("timezone() takes a timedelta and a name")
    return datetime.timezone(offset, *name)


_CALLS: dict[str, Callable[..., Any]] = {
    "Decimal": _decimal,
    "Fraction": _fraction,
    "datetime.date": _date,
    "datetime.datetime": _datetime,
    "datetime.time": _time,
    "datetime.timedelta": _timedelta,
    "datetime.timezone": _timezone,
}
