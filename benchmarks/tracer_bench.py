"""Tracer speed, side by side in one run: untraced, execalign on each backend, PySnooper, snoop.

    python -m benchmarks.tracer_bench [--repeat 5] [--out benchmarks/results]

Workloads: a loop over a 200-item list, a recursive function, string building,
calls into library code (sorted, json.dumps), bubble sort of a 120-item list
(reversed: every comparison swaps) and the 800 CRUXEval functions. Each tool
records the same calls completely (PySnooper and snoop write their text to an
in-memory sink). Times are the best of --repeat runs. Per-event cost is
(traced - untraced) / line events. Targets on 3.12+: <= 0.5 us per line event,
>= 20x faster than PySnooper on every workload, and library code <= 1.05x its
untraced time. With the compiled accelerator built, the pure-Python path (`pure-*`) is measured
beside it in the same run. Also reported: the fixed cost of a trace, the size of the bubble-sort trace, and what
`record="final"` (final values and returns only) costs on a long loop against
the untraced run and a recording of every line.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time

import tracer
from tracer import accel

from .common import RESULTS, load_cruxeval, python_version, report

WORKLOADS = {
    "loop200": (
        """
def f(items):
    total = 0
    for x in items:
        if x % 3:
            total += x
    return total
""",
        "f(list(range(200)))",
    ),
    "recursion": (
        """
def f(n):
    if n < 2:
        return n
    return f(n - 1) + f(n - 2)
""",
        "f(14)",
    ),
    "strings": (
        """
def f(n):
    s = ''
    for i in range(n):
        s += str(i % 10)
    return len(s)
""",
        "f(300)",
    ),
    "library": (
        """
import json
def f(data):
    for _ in range(20):
        a = sorted(data)
        b = json.dumps(data)
    return len(b)
""",
        "f(list(range(20000, 0, -1)))",
    ),
    "bubble120": (
        """
def f(a):
    n = len(a)
    for i in range(n):
        for j in range(n - i - 1):
            if a[j] > a[j + 1]:
                a[j], a[j + 1] = a[j + 1], a[j]
    return a
""",
        "f(list(range(120, 0, -1)))",
    ),
}
# A competitive-programming-style run: one call, a long loop (record="final" against untraced and every line).
LONG_LOOP = (
    """
def f(n):
    total, seen = 0, {}
    for i in range(n):
        total = (total * 31 + i) % 1000003
        seen[total % 97] = i
    return total, len(seen)
""",
    "f(20000)",
)


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def compiled(source: str):
    namespace: dict = {"__name__": "__bench__"}
    exec(compile(source, "<bench>", "exec"), namespace)
    return namespace


def run_untraced(cases):
    def go():
        for source, call in cases:
            namespace = compiled(source)
            eval(call, namespace)

    return go


def run_ours(cases, backend, **options):
    def go():
        for source, call in cases:
            tracer.trace(source, call, backend=backend, **options)

    return go


def run_pure(cases, backend, **options):
    """run_ours on the pure-Python path (tracer.accel), for a same-run comparison with the compiled one."""
    ours = run_ours(cases, backend, **options)

    def go():
        saved, accel._ACCEL = accel._ACCEL, None
        try:
            ours()
        finally:
            accel._ACCEL = saved

    return go


def run_decorated(cases, decorate):
    def go():
        for source, call in cases:
            namespace = compiled(source)
            namespace["f"] = decorate(namespace["f"])  # recursion goes through the wrapper too
            eval(call, namespace)

    return go


def pysnooper_decorator():
    import pysnooper

    def decorate(fn):
        return pysnooper.snoop(output=io.StringIO(), color=False)(fn)

    return decorate


def snoop_decorator():
    import snoop

    config = snoop.Config(out=io.StringIO(), color=False, columns="")

    def decorate(fn):
        return config.snoop(fn)

    return decorate


def line_events(cases) -> int:
    total = 0
    for source, call in cases:
        t = tracer.trace(source, call, backend="settrace", max_steps=10**9)
        total += sum(1 for s in t.steps[t.call_step :] if s.event == "line")
    return total


def long_loop(repeat: int) -> str:
    """record="final" on LONG_LOOP: its time against the untraced run and a recording of every line."""
    cases = [LONG_LOOP]
    untraced = best(run_untraced(cases), repeat)
    backends = ["settrace", "monitoring"] if tracer.env.HAS_MONITORING else ["settrace"]
    parts = []
    for backend in backends:
        final = best(run_ours(cases, backend, record="final"), repeat)
        full = best(run_ours(cases, backend, max_steps=10**9), repeat)
        parts.append(
            f"{backend}: final {final * 1000:.1f} ms ({final / untraced:.2f}x untraced),"
            f" every line {full * 1000:.1f} ms ({full / untraced:.1f}x)"
        )
    return f"long loop ({LONG_LOOP[1]}), untraced {untraced * 1000:.1f} ms; " + "; ".join(parts)


def fixed_cost(repeat: int, crux) -> str:
    """What a trace costs besides its events: a one-line function traced against untraced, and the
    800 CRUXEval functions' traced time per function (their events included) against untraced."""
    one = [("def f():\n    return 1\n", "f()")]
    untraced = best(run_untraced(one), repeat * 20)
    backends = ["settrace", "monitoring"] if tracer.env.HAS_MONITORING else ["settrace"]
    parts = [f"{b} {(best(run_ours(one, b), repeat * 20) - untraced) * 1e6:.0f} us" for b in backends]
    text = f"fixed cost of one trace (a one-line function, traced - untraced): {', '.join(parts)}"
    if crux:
        base = best(run_untraced(crux), repeat)
        per = [f"{b} {(best(run_ours(crux, b), repeat) - base) * 1e6 / len(crux):.0f} us" for b in backends]
        text += f"; cruxeval800, (traced - untraced) per function: {', '.join(per)}"
        text += f" (untraced {base * 1e6 / len(crux):.0f} us per function, compile included)"
    return text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--no-baselines", action="store_true", help="skip PySnooper and snoop")
    args = parser.parse_args(argv)

    workloads = {name: [case] for name, case in WORKLOADS.items()}
    rows = load_cruxeval()
    if rows:
        workloads["cruxeval800"] = [(r["code"], f"f({r['input']})") for r in rows]

    tools = [("untraced", run_untraced)]
    tools.append(("execalign-settrace", lambda c: run_ours(c, "settrace")))
    if tracer.env.HAS_MONITORING:
        tools.append(("execalign-monitoring", lambda c: run_ours(c, "monitoring")))
    backends = ["settrace", "monitoring"] if tracer.env.HAS_MONITORING else ["settrace"]
    if accel.compiled():  # the pure-Python path beside the compiled one, same run
        for backend in backends:
            tools.append((f"pure-{backend}", lambda c, b=backend: run_pure(c, b)))
    if not args.no_baselines:
        try:
            pys, snp = pysnooper_decorator(), snoop_decorator()
            tools.append(("pysnooper", lambda c: run_decorated(c, pys)))
            tools.append(("snoop", lambda c: run_decorated(c, snp)))
        except ImportError as error:
            print(f"note: {error}; install the bench extra (pip install -e .[bench]) for baselines", file=sys.stderr)

    path = "compiled line events (tracer._accel)" if accel.compiled() else "pure Python (EXECALIGN_PURE=1 or not built)"
    header = f"# Tracer benchmark, Python {python_version()}, {os.cpu_count()} CPUs, best of {args.repeat}, {path}\n"
    lines = [
        header,
        "| workload | line events | "
        + " | ".join(f"{t} ms" for t, _ in tools)
        + " | us/event (ours) | vs PySnooper | vs snoop |",
        "|---" * (len(tools) + 5) + "|",
    ]
    for name, cases in workloads.items():
        events = line_events(cases)
        ms = {tool: best(make(cases), args.repeat) * 1000 for tool, make in tools}
        ours = [t for t in ms if t.startswith("execalign")]
        fastest = min(ours, key=ms.get)
        per_event = ", ".join(f"{t.split('-')[1]} {(ms[t] - ms['untraced']) * 1000 / max(events, 1):.2f}" for t in ours)
        vs = [f"{ms[base] / ms[fastest]:.1f}x" if base in ms else "-" for base in ("pysnooper", "snoop")]
        lines.append(
            f"| {name} | {events} | "
            + " | ".join(f"{ms[t]:.2f}" for t, _ in tools)
            + f" | {per_event} | {vs[0]} | {vs[1]} |"
        )
        print(lines[-1], file=sys.stderr, flush=True)
    lib = workloads["library"]
    lib_ratio = ", ".join(
        f"{t.split('-')[1]} {best(make(lib), args.repeat) / best(run_untraced(lib), args.repeat):.3f}x"
        for t, make in tools
        if t.startswith("execalign")
    )
    lines.append(f"\nlibrary workload, traced / untraced time: {lib_ratio}")
    source, call = WORKLOADS["bubble120"]
    bubble = tracer.trace(source, call)
    lines.append(
        f"bubble120 trace: {len(bubble.to_json()):,} bytes of JSON, {len(bubble.to_msgpack()):,} of MessagePack"
    )
    lines.append(long_loop(args.repeat))
    lines.append(fixed_cost(args.repeat, workloads.get("cruxeval800", [])))
    lines.append(
        "ratios vs PySnooper/snoop use the faster execalign backend; us/event = (traced - untraced) / line events"
    )
    report("tracer", "\n".join(lines) + "\n", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
