"""Hypothesis strategies for builtin and library values and small programs, and a known program, shared by the tests."""

import collections
import datetime
import decimal
import fractions

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

# a function with a loop, a branch and a call: lines 7 to 13 (f), 3 and 4 (g)
HELPER = """
def g(a):
    b = a * 2
    return b

def f(xs):
    total = 0
    for x in xs:
        if x > 1:
            total += g(x)
        else:
            total -= 1
    return total
"""

atoms = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(1 << 200), max_value=1 << 200),
    st.floats(allow_nan=True, allow_infinity=True),
    st.complex_numbers(allow_nan=False),
    st.text(max_size=20),
    st.binary(max_size=10),
)
hashable = st.recursive(atoms, lambda inner: st.tuples(inner, inner) | st.frozensets(inner, max_size=3), max_leaves=6)
values = st.recursive(
    atoms,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.tuples(inner, inner),
        st.lists(inner, max_size=3).map(tuple),
        st.sets(hashable, max_size=4),
        st.frozensets(hashable, max_size=3),
        st.dictionaries(hashable, inner, max_size=4),
    ),
    max_leaves=20,
)


def _object_array(elements: list) -> np.ndarray:
    out = np.empty(len(elements), dtype=object)
    for i, x in enumerate(elements):
        out[i] = x
    return out


_DTYPES = ["int64", "int8", "uint16", "uint64", "float64", "float32", "float16", "complex128", "complex64", "bool"]
_shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3)
arrays = st.one_of(
    st.sampled_from(_DTYPES).flatmap(lambda dtype: hnp.arrays(np.dtype(dtype), _shapes)),
    hnp.arrays(
        np.dtype("<U3"),
        _shapes,
        elements=st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=3),
    ),
    hnp.arrays(np.dtype("S2"), _shapes),
    st.lists(values, max_size=4).map(_object_array),
    hnp.arrays(np.int64, hnp.array_shapes(min_dims=2, max_dims=2, max_side=3)).map(np.matrix),
)
numpy_scalars = st.one_of(
    st.integers(-(1 << 63), (1 << 63) - 1).map(np.int64),
    st.integers(0, 255).map(np.uint8),
    st.floats().map(np.float64),
    st.floats(width=32).map(np.float32),
    st.booleans().map(np.bool_),
    st.text(max_size=5).map(np.str_),
    st.complex_numbers(allow_nan=False).map(np.complex128),
)
zones = (
    st.none()
    | st.just(datetime.UTC)
    | st.integers(-1439, 1439).map(lambda m: datetime.timezone(datetime.timedelta(minutes=m)))
)
library = st.one_of(
    arrays,
    numpy_scalars,
    st.builds(collections.deque, st.lists(atoms, max_size=4), st.none() | st.integers(4, 6)),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=3).map(collections.Counter),
    st.lists(st.tuples(hashable, atoms), max_size=3).map(collections.OrderedDict),
    st.builds(collections.defaultdict, st.sampled_from([int, list, None]), st.dictionaries(atoms, atoms, max_size=3)),
    st.decimals(),
    st.fractions(),
    st.dates(),
    st.datetimes(timezones=zones),
    st.times(timezones=zones),
    st.timedeltas(),
    st.binary(max_size=6).map(memoryview),
)
# builtin containers of library values (library values are not all hashable: kept out of sets and keys)
with_library = st.recursive(
    atoms | library,
    lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner) | st.dictionaries(hashable, inner, max_size=3),
    max_leaves=10,
)


def same(a, b) -> bool:
    """Exact, typed equality: nan equals nan, -0.0 differs from 0.0, True differs from 1."""
    if type(a) is not type(b):
        return False
    if type(a) is float:
        return (a != a and b != b) or (a == b and str(a) == str(b))
    if type(a) is complex:
        return same(a.real, b.real) and same(a.imag, b.imag)
    if type(a) in (list, tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if type(a) is collections.deque:
        return a.maxlen == b.maxlen and same(list(a), list(b))
    if type(a) is collections.OrderedDict:
        return same(list(a.items()), list(b.items()))
    if type(a) is collections.defaultdict and a.default_factory is not b.default_factory:
        return False
    if isinstance(a, dict):
        return len(a) == len(b) and all(any(same(k, k2) and same(v, b[k2]) for k2 in b) for k, v in a.items())
    if type(a) in (set, frozenset):
        return len(a) == len(b) and all(any(same(x, y) for y in b) for x in a)
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and a.shape == b.shape and same(a.ravel().tolist(), b.ravel().tolist())
    if isinstance(a, np.generic):
        return same(a.item(), b.item())
    if type(a) in (decimal.Decimal, fractions.Fraction) or isinstance(a, (datetime.date, datetime.time)):
        return repr(a) == repr(b)
    if type(a) is memoryview:
        return a.tobytes() == b.tobytes()
    return a == b


@st.composite
def small_programs(draw):
    ops = draw(
        st.lists(
            st.sampled_from(
                [
                    "acc += x",
                    "acc -= 1",
                    "seen.append(x)",
                    "acc = acc * 2 % 97",
                    "if x % 2:\n            acc += 3",
                    "seen = seen[-3:]",
                ]
            ),
            min_size=1,
            max_size=5,
        )
    )
    body = "\n        ".join(ops)
    return f"def f(xs):\n    acc = 0\n    seen = []\n    for x in xs:\n        {body}\n    return acc, seen\n"
