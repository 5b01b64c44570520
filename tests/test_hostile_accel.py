"""Hostile traced code against the compiled accelerator (`tracer._accel`, issue 9): nothing the code does
to its objects or frames makes the compiled path record something the pure-Python path does not, and
neither crashes nor records a value the code did not hold.

Each program is traced both ways on every backend of this interpreter, in this process (as
`execalign trace FILE` does), and the last recorded state is checked against what the code returned.
"""

import textwrap

import pytest

import tracer
from tests.test_accel import both, needs_accel

HOSTILE = {
    "an object whose class changes under it": """
        class A:
            pass
        class B:
            pass
        def f():
            o = A()
            o.__class__ = B
            o.x = 1
            o.__class__ = A
            r = type(o).__name__
            return r
    """,
    "a frame written through f_locals": """
        import sys
        def f():
            x = 1
            fr = sys._getframe()
            fr.f_locals['x'] = 5
            y = x
            fr.f_locals['z'] = 7
            r = y
            return r
    """,
    "huge flat containers edited in place": """
        def f():
            x = list(range(200000))
            x[5] = 7
            x.append(3)
            d = dict.fromkeys(range(50000), 0)
            d[3] = 1
            r = (len(x), x[5], d[3])
            return r
    """,
    "atoms that compare equal but are not the same": """
        def f():
            x = [1.0, float('nan'), 0.0, 1]
            x[2] = -0.0
            x[3] = True
            x[1] = float('nan')
            x[0] = 1
            x.append('a' * 3)
            x[4] = 'aaa'
            r = [type(v).__name__ for v in x]
            return r
    """,
    "one name through list, dict, tuple and back": """
        def f():
            x = [1, 2]
            x = {1: 2}
            x = (1, 2)
            x = [1, 2]
            y = x
            y.clear()
            y.extend([1, 2])
            r = x
            return r
    """,
    "dict keys removed and put back": """
        def f():
            d = {'a': 1, 'b': 2}
            del d['a']
            d['a'] = 1
            d.popitem()
            d.update(x=1, y=2)
            r = list(d)
            return r
    """,
}


@needs_accel
@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_code_is_recorded_the_same_and_true_both_ways(backend, name):
    compiled, python = both(textwrap.dedent(HOSTILE[name]), "f()", backend)
    assert compiled == python and compiled.to_json() == python.to_json()
    assert compiled.stopped is None
    last = [s for s in compiled.steps if "r" in s.changes][-1].changes["r"]  # what `r` was recorded as
    assert tracer.render(last) == tracer.render(compiled.returned)


@needs_accel
def test_recursion_to_the_limit_is_recorded_truly_both_ways(backend):
    """The two paths use different stack depths, so RecursionError comes a few calls apart: each trace is true."""
    source = "def g(n):\n    return g(n + 1)\n\ndef f():\n    try:\n        g(0)\n"
    source += "    except RecursionError:\n        return 1"
    for trace in both(source, "f()", backend):
        assert tracer.to_python(trace.returned) == 1 and trace.exception is None
        calls = [s.changes["n"] for s in trace.steps if s.event == "call" and "n" in s.changes]
        assert [tracer.to_python(v) for v in calls] == list(range(len(calls)))  # every call seen, in order
