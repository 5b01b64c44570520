"""Hypothesis strategies for builtin values and small programs, and a known program, shared by the tests."""

from hypothesis import strategies as st

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
    if type(a) is dict:
        return len(a) == len(b) and all(any(same(k, k2) and same(v, b[k2]) for k2 in b) for k, v in a.items())
    if type(a) in (set, frozenset):
        return len(a) == len(b) and all(any(same(x, y) for y in b) for x in a)
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
