"""The compiled accelerator (`tracer._accel`) and the pure-Python path give identical traces.

Every CRUXEval function, generated programs (those of test_backends: generators driven
by send, throw and close, iterators that mutate, `del`, classes) and programs that reach
each of the accelerator's hand-offs to Python are traced both ways on every backend of this
interpreter and the traces compared whole. EXECALIGN_PURE=1 forces the pure path (.ci/run
runs the suite's tracer tests that way too); where a C compiler is present the install must
have built the accelerator.
"""

import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap

import pytest
from hypothesis import given, settings

import tracer
from benchmarks.tracer_bench import WORKLOADS
from tests.conftest import BACKENDS
from tests.test_backends import programs
from tracer import accel

needs_accel = pytest.mark.skipif(not accel.compiled(), reason="the accelerator is not built, or EXECALIGN_PURE=1")


def pure(*args, **kw):
    """tracer.trace on the pure-Python path."""
    accel.compiled()  # (loaded once, on first use)
    saved, accel._ACCEL = accel._ACCEL, None
    try:
        return tracer.trace(*args, **kw)
    finally:
        accel._ACCEL = saved


def both(source, call, backend, **kw):
    return tracer.trace(source, call, backend=backend, **kw), pure(source, call, backend=backend, **kw)


def test_the_install_built_the_accelerator_where_it_could():
    if os.environ.get("EXECALIGN_PURE") == "1":
        assert not accel.compiled() and accel.line_hook(tracer.recorder.Recorder(None, 1, 1, print)) is None
        return
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) is None:
        pytest.skip(f"no C compiler ({compiler}): the pure-Python path is the one installed")
    assert accel.compiled(), "pip install -e . did not build tracer._accel (see setup.py)"


def test_EXECALIGN_PURE_forces_the_pure_python_path():
    code = "import tracer; from tracer import accel; t = tracer.trace('x = 1'); print(accel.compiled(), len(t.steps))"
    env = {**os.environ, "EXECALIGN_PURE": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", str(len(tracer.trace("x = 1").steps))]


@needs_accel
def test_compiled_and_pure_agree_on_every_cruxeval_function(cruxeval, backend):
    differing = [
        row["id"]
        for row in cruxeval
        if len(set(map(tracer.Trace.to_json, both(row["code"], f"f({row['input']})", backend)))) != 1
    ]
    assert differing == [], f"{len(differing)} of {len(cruxeval)} differ"


@needs_accel
@given(programs())
@settings(max_examples=60, deadline=None)
def test_compiled_and_pure_agree_on_generated_programs(program):
    for backend in BACKENDS:
        compiled, python = both(program, "main()", backend)
        assert compiled == python, program


# Each reaches one hand-off of the accelerator to the recorder's Python methods, or one rule of `_settle`.
def program(text):
    source, _, call = textwrap.dedent(text).partition("# call: ")
    return source, call.strip() or None


PROGRAMS = {
    "bubble sort (flat lists edited in place)": (WORKLOADS["bubble120"][0], "f(list(range(30, 0, -1)))"),
    "module-level code and globals": program("""
        import math
        G = 0
        def bump():
            global G
            G += 1
            del_me = G
            del del_me
        for k in range(3):
            bump()
        x = [k, G]
        d = {'a': 1}
        d['b'] = math.pi
        del x
    """),
    "atoms of every kind": program("""
        def f():
            a = 1
            a = 1.0
            a = -0.0
            a = 0.0
            a = float('nan')
            a = float('nan')
            a = 1j
            a = True
            a = None
            a = 'x'
            a = b'x'
            a = range(3)
            a = 10**30
            a = 10**30 + 0
            return a
        # call: f()
    """),
    "functions, classes, modules (weak references)": program("""
        import json
        class C:
            pass
        def f():
            g, c, m = f, C, json
            for _ in range(3):
                g, c, m = f, C, json
            return 1
        # call: f()
    """),
    "containers of objects, dicts, nesting": program("""
        class P:
            def __init__(self, v):
                self.v = v
        def f():
            xs = [P(1)]
            d = {}
            for i in range(5):
                d[i] = [i]
                d[i].append(i)
                xs[0].v = i
                xs.append(i)
            t = (xs, d)
            s = {1, 2}
            s.add(3)
            return len(t)
        # call: f()
    """),
    "defaultdict subscripts, in-place operators, iteration": program("""
        from collections import defaultdict
        def f():
            dd = defaultdict(list)
            xs = [1]
            n = 1
            for i in range(4):
                y = dd[i]
                xs += [i]
                n += i
                s = 'a'
                s += 'b'
            for v in xs:
                w = v
            it = iter(xs.pop, 0)
            for v in it:
                w = v
            return w
        # call: f()
    """),
    "generators, exceptions, recursion": program("""
        def gen(n):
            total = 0
            while True:
                got = yield total
                total += got or 1
        def rec(n):
            if n < 2:
                return n
            return rec(n - 1) + rec(n - 2)
        def f():
            g = gen(0)
            a = next(g)
            a = g.send(10)
            try:
                b = 1 // 0
            except ZeroDivisionError as e:
                b = str(e)
            g.close()
            return rec(6), a, b
        # call: f()
    """),
    "a frame on another thread": program("""
        from concurrent.futures import ThreadPoolExecutor
        def work(n):
            m = n * 2
            return m
        def f():
            got = ThreadPoolExecutor(1).submit(work, 3).result()  # (set once work has returned)
            return got
        # call: f()
    """),
    "closures and nonlocals": program("""
        def f():
            count = 0
            def inc():
                nonlocal count
                count += 1
                return count
            for _ in range(3):
                inc()
            return count
        # call: f()
    """),
    "one-line loops and comprehensions": program("""
        def f():
            xs = [i * i for i in range(5)]
            d = {k: v for k, v in enumerate(xs)}
            t = 0
            for x in xs: t += x
            return sum(x for x in xs), d, t
        # call: f()
    """),
}


@needs_accel
@pytest.mark.parametrize("name", PROGRAMS)
def test_compiled_and_pure_agree_on_each_hand_off(backend, name):
    source, call = PROGRAMS[name]
    for options in ({}, {"max_items": 4}, {"max_steps": 40}, {"max_values": 60}, {"record": "final"}):
        compiled, python = both(source, call, backend, **options)
        assert compiled == python, options
        assert compiled.to_json() == python.to_json()


@needs_accel
def test_a_failure_in_the_compiled_path_stops_recording_as_a_tracer_error(backend, monkeypatch):
    def broken(*args):
        raise ValueError("broken")

    monkeypatch.setattr(tracer.recorder.Recorder, "_check", broken)
    source = textwrap.dedent("""
        def f():
            xs = [1]
            xs = [2]
            return 7
    """)
    compiled, python = both(source, "f()", backend)
    assert compiled == python
    assert compiled.stopped.reason == "tracer_error" and compiled.stopped.detail == "ValueError: broken"
    assert compiled.exception is None and tracer.to_python(compiled.returned) == 7
