"""The value codec: lossless for builtins, capped, and never running user code."""

import collections
import decimal
import math

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tracer
from tests.strategies import same, values
from tracer import EncodeLimits, NotDecodable, Value, encode, from_literal, render, to_python
from tracer.encode import Encoder
from tracer.schema import KINDS


@given(values)
@settings(max_examples=400)
def test_builtin_values_round_trip(obj):
    value = encode(obj)
    assert same(to_python(value), obj)
    for codec in (msgspec.json, msgspec.msgpack):
        assert codec.decode(codec.encode(value), type=Value) == value


@given(values)
@settings(max_examples=300)
def test_render_parses_back_for_builtins(obj):
    assert same(from_literal(render(encode(obj))), obj)


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os').system('true')",
        "f(1)",
        "[x for x in ()]",
        "a.b",
        "{**a}",
        "lambda: 1",
        "float(1)",
        "1 if 2 else 3",
        "(" * 10000,
        "{[]}",
        "{[1]: 2}",
    ],
)
def test_from_literal_refuses_code(text):
    with pytest.raises(ValueError):
        from_literal(text)


def test_special_floats_and_exact_types():
    for x in (math.nan, math.inf, -math.inf, -0.0, 0.0, 1e308, 5e-324):
        assert same(to_python(encode(x)), x)
    assert encode(True) != encode(1)
    assert encode((1, 2)) != encode([1, 2])
    assert encode({1: "a"}) != encode({"1": "a"})
    assert encode(-0.0) != encode(0.0)
    assert render(encode(float("nan"))) == "float('nan')"


def test_big_ints_are_exact_beyond_str_digit_limit():
    n = 7**20000  # more than 4300 decimal digits: str() would refuse it
    value = Encoder(EncodeLimits(max_str=100_000)).encode(n)
    assert to_python(value) == n
    assert render(value).startswith("0x")


def test_set_order_is_canonical():
    a = {"pear", "apple", 3, 1.5, None, (1, 2)}
    b = set(reversed(list(a)))
    assert encode(a) == encode(b)
    assert render(encode({3, 1, 2})) == "{1, 2, 3}"


def test_shared_and_cyclic_references():
    inner = [1]
    shared = [inner, inner]
    decoded = to_python(encode(shared))
    assert decoded == [[1], [1]] and decoded[0] is decoded[1]
    cyclic = [1]
    cyclic.append(cyclic)
    decoded = to_python(encode(cyclic))
    assert decoded[1] is decoded
    assert render(encode(cyclic)) == "[1, [...]]"
    d = {}
    d["self"] = d
    assert render(encode(d)) == "{'self': {...}}"


@given(values, st.integers(1, 4), st.integers(0, 4), st.integers(0, 6))
@settings(max_examples=300)
def test_caps_are_never_exceeded(obj, depth, items, chars):
    value = Encoder(EncodeLimits(max_depth=depth, max_items=items, max_str=chars)).encode(obj)

    def check(v: Value, level: int) -> None:
        assert level <= depth
        if v.t in ("str", "bytes", "bytearray"):
            assert len(v.v) <= (chars if v.t == "str" else 2 * chars)
        if v.t in ("complex", "range"):
            return  # parts of an atom, not nesting
        assert len(v.items or []) <= items and len(v.attrs or {}) <= items
        for child in (v.items or []) + (v.keys or []) + list((v.attrs or {}).values()):
            check(child, level + 1)

    check(value, 0)


def test_truncation_is_marked_and_not_decodable():
    value = Encoder(EncodeLimits(max_items=2, max_str=3)).encode([1, 2, 3, 4])
    assert value.more == 2 and render(value) == "[1, 2, ...<+2>]"
    with pytest.raises(NotDecodable):
        to_python(value)
    text = Encoder(EncodeLimits(max_str=3)).encode("abcdef")
    assert text.v == "abc" and text.more == 3
    deep = Encoder(EncodeLimits(max_depth=2)).encode([[[[1]]]])
    assert render(deep) == "[[<list ...>]]"


def hostile_classes():
    """Classes whose every hook raises; built in a function so no tool scanning module globals trips on them."""

    class Hostile:
        """Every hook that could run code raises: the encoder must not touch any of them."""

        def __init__(self):
            self.x = 1
            self.items = [1, 2]

        def __repr__(self):
            raise AssertionError("__repr__ called")

        __str__ = __repr__

        def __eq__(self, other):
            raise AssertionError("__eq__ called")

        def __hash__(self):
            raise AssertionError("__hash__ called")

        def __getattr__(self, name):
            raise AssertionError("__getattr__ called")

        def __getattribute__(self, name):
            raise AssertionError("__getattribute__ called")

        def __iter__(self):
            raise AssertionError("__iter__ called")

        def __len__(self):
            raise AssertionError("__len__ called")

        @property
        def prop(self):
            raise AssertionError("property called")

    class HostileList(list):
        def __iter__(self):
            raise AssertionError("list __iter__ called")

        def __len__(self):
            raise AssertionError("list __len__ called")

        def __repr__(self):
            raise AssertionError("list __repr__ called")

    class HostileDict(dict):
        def items(self):
            raise AssertionError("dict items called")

        def __iter__(self):
            raise AssertionError("dict __iter__ called")

    class HostileInt(int):
        def __int__(self):
            raise AssertionError("__int__ called")

        def __index__(self):
            raise AssertionError("__index__ called")

        def __repr__(self):
            raise AssertionError("int __repr__ called")

    class FakeDict:
        @property
        def __dict__(self):
            raise AssertionError("__dict__ property called")

    class Meta(type):
        def __getattribute__(cls, name):
            raise AssertionError("metaclass __getattribute__ called")

    class WithMeta(metaclass=Meta):
        pass

    class Slotted:
        __slots__ = ("a", "b")

        def __init__(self):
            self.a = 1

    return Hostile, HostileList, HostileDict, HostileInt, FakeDict, WithMeta, Slotted


def test_no_user_code_is_called():
    Hostile, HostileList, HostileDict, HostileInt, FakeDict, WithMeta, Slotted = hostile_classes()
    obj = object.__new__(Hostile)
    object.__setattr__(obj, "x", 1)
    hostile_list = HostileList([1, 2])
    cases = [
        obj,
        [obj, obj],
        {1: obj},
        hostile_list,
        HostileDict(a=1),
        HostileInt(5),
        FakeDict(),
        WithMeta,
        WithMeta(),
        Slotted(),
        ValueError(obj),
    ]
    rendered = [render(encode(c)) for c in cases]
    assert rendered[0] == "Hostile(x=1)"
    assert rendered[3] == "HostileList([1, 2])"
    assert rendered[4] == "HostileDict({'a': 1})"
    assert rendered[5] == "HostileInt(5)"
    assert rendered[6] == "<FakeDict object>"
    assert rendered[7] == "<class WithMeta>"
    assert rendered[9] == "Slotted(a=1)"
    assert rendered[10] == "ValueError(Hostile(x=1))"
    assert to_python(encode(HostileInt(5))) == 5 and type(to_python(encode(HostileInt(5)))) is int


def test_library_types():
    assert render(encode(collections.Counter("aab"))) == "Counter({'a': 2, 'b': 1})"
    assert render(encode(collections.deque([1, 2]))) == "deque([1, 2])"
    assert render(encode({"a": 1}.items())) == "dict_items([('a', 1)])"
    assert render(encode(range(0, 10, 2))) == "range(0, 10, 2)"
    assert render(encode(len)) == "<function len>"
    import datetime
    import decimal

    assert (
        render(encode([decimal.Decimal("1.5"), datetime.date(2020, 1, 2)]))
        == "[Decimal('1.5'), datetime.date(2020, 1, 2)]"
    )
    assert render(encode(math)) == "<module math>"
    assert render(encode(x for x in [])).startswith("<generator")
    point = collections.namedtuple("Point", "x y")(1, 2)
    assert render(encode(point)) == "Point((1, 2))"
    assert to_python(encode(point)) == (1, 2)


def test_an_invented_kind_fails_at_decode():
    forged = msgspec.msgpack.encode({"t": "evil", "v": 1})
    with pytest.raises(msgspec.ValidationError, match="Invalid enum value 'evil'"):
        msgspec.msgpack.decode(forged, type=Value)
    trace = tracer.trace("x = 1")
    wire = msgspec.to_builtins(trace)
    wire["frames"][0]["locals"]["x"]["t"] = "evil"
    with pytest.raises(msgspec.ValidationError):
        tracer.Trace.from_msgpack(msgspec.msgpack.encode(wire))


@pytest.mark.parametrize(
    "value",
    [
        Value("complex"),
        Value("complex", items=[Value("float", 1.0)]),
        Value("dict", items=[Value("int", 1)]),
        Value("dict", keys=[Value("list", items=[])], items=[Value("int", 1)]),
        Value("bytes", "zz"),
        Value("float", "many"),
        Value("list"),
        Value("range", items=[Value("str", "a")]),
    ],
)
def test_a_malformed_value_is_not_decodable(value):
    with pytest.raises(NotDecodable, match="malformed"):
        to_python(value)


def test_every_kind_is_encoded_and_rendered():
    async def coroutine():
        pass

    class Point:
        def __init__(self):
            self.x = 1

    shared = [1]
    made = [
        None, True, 1, 1.5, 1j, "s", b"b", bytearray(b"a"), range(3), [shared, shared], (1,), {1}, frozenset({2}),
        {"k": 1}, Point(), ValueError("e"), len, Point, math, (x for x in ()), coroutine(), decimal.Decimal("1.5"),
    ]  # fmt: skip
    values = [encode(obj) for obj in made] + [Encoder(EncodeLimits(max_depth=1)).encode([[1]])]
    made[20].close()

    def kinds(v: Value) -> set[str]:
        inner = (v.items or []) + (v.keys or []) + list((v.attrs or {}).values())
        return {v.t}.union(*(kinds(child) for child in inner))

    assert set().union(*(kinds(v) for v in values)) == set(KINDS)
    texts = [render(v) for v in values]
    assert texts[9] == "[[1], [1]]" and texts[14] == "Point(x=1)" and texts[-1] == "[<list ...>]"
