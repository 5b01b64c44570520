"""Turning code plus an input into an execution-alignment task (prompt, gold answer, metadata).

`build_task(code, call="f([1, 2])")` (or `stdin=...` for a program) runs the code
traced in the sandbox and asks about it: the final values of a few variables
(CodeRL+'s task, but for locals of any function, so `def main()` programs work),
the output, the executed lines or the whole trajectory. Variables worth asking
about changed during the run, are not an argument left as passed, and are not
only ever assigned a constant; which ones are asked is fixed by `seed`. Code that
errors, times out, or has nothing to ask about is skipped, with the reason.
"""

from __future__ import annotations

import ast
import random
from typing import Any

import msgspec

import sandbox
import tracer
from sandbox import Limits
from tracer import Trace, Value, encode, render

from .compare import gold
from .truth import CACHE, ResultCache

_NOT_ASKED = {"function", "class", "module", "generator", "coroutine"}


class AlignmentTask(msgspec.Struct, kw_only=True):
    prompt: str
    answer: str  # the gold answer as text (what a perfect model writes last)
    gold: Any  # the gold answer as a value
    kind: str  # final, output, lines, steps
    code: str
    tests: list[Any]  # what to pass to rewards.score with the answer
    variables: list[str] = []
    metadata: dict[str, Any] = {}


class Skipped(msgspec.Struct, frozen=True):
    reason: str


def target_frames(trace: Trace) -> set[int]:
    """The frames a question is about: the traced call's own frame, or, for a
    program, module level and the functions it calls directly (`main`)."""
    if trace.call_step >= 0:
        first = next((s for s in trace.steps[trace.call_step :] if s.event == "call"), None)
        return {first.frame} if first is not None else set()
    return {f.id for f in trace.frames if f.depth <= 1 and f.thread == 0}


def _constant_only(code: str | None) -> set[str]:
    """Names that the code only ever assigns a literal constant (not worth asking)."""
    if not code:
        return set()
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return set()
    constant, other = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    (constant if isinstance(node.value, ast.Constant) else other).add(target.id)
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign, ast.For, ast.comprehension, ast.NamedExpr)):
            target = getattr(node, "target", None)
            for name in ast.walk(target) if target is not None else ():
                if isinstance(name, ast.Name):
                    other.add(name.id)
    return constant - other


def interesting_variables(trace: Trace, code: str | None = None) -> list[str]:
    """Variables worth asking about, in a stable order (see the module docstring)."""
    frames = target_frames(trace)
    constants = _constant_only(code)
    names: dict[str, None] = {}
    for frame in trace.frames:
        if frame.id not in frames:
            continue
        arguments = set()
        for step in trace.steps:
            if step.frame == frame.id and step.event == "call":
                arguments = set(step.changes)
                break
        for name, value in frame.locals.items():
            if value.t in _NOT_ASKED or name in constants or name.startswith("__"):
                continue
            if name in arguments and frame.defined_at.get(name) == frame.line:
                continue  # an argument never reassigned: a copy of the input
            names[name] = None
    return list(names)


def final_values(trace: Trace) -> dict[str, Value]:
    """Each name's final value, preferring the traced call's frame, then module level, then the rest."""
    values: dict[str, Value] = {}
    primary = target_frames(trace)
    for frame in sorted(trace.frames, key=lambda f: (f.id in primary, -f.depth, f.id)):
        values.update(frame.locals)
    return values


def line_steps(trace: Trace) -> list:
    """The line steps of the traced execution (of the call, when there is one)."""
    return [s for s in trace.steps[max(trace.call_step, 0) :] if s.event == "line"]


# ---------------------------------------------------------------- gold answers


def gold_final(trace: Trace, variables: list[str], with_output: bool = False) -> dict:
    values = final_values(trace)
    answer = {name: gold(values[name]) for name in variables if name in values}
    if with_output:
        return {"final_output": gold(trace.returned) if trace.returned is not None else None, "variables": answer}
    return answer


def gold_steps(trace: Trace) -> list[dict]:
    return [{"line": s.line, "changes": {k: gold(v) for k, v in s.changes.items()}} for s in line_steps(trace)]


def gold_lines(trace: Trace) -> list[int]:
    return [s.line for s in line_steps(trace)]


def gold_answer(trace: Trace, kind: str, variables: list[str] | None = None, stdio: bool = False) -> Any:
    if kind == "output":
        return trace.stdout if stdio else (gold(trace.returned) if trace.returned is not None else None)
    if kind == "final":
        return gold_final(trace, variables or [])
    if kind == "steps":
        return {"steps": gold_steps(trace)}
    if kind == "lines":
        return {"lines": gold_lines(trace)}
    raise ValueError(f"unknown kind {kind!r}")


def as_text(value: Any) -> str:
    """A gold value as the Python-literal text a model should write."""
    return render(encode(value, _TEXT_LIMITS))


# ---------------------------------------------------------------- prompts

_OURS = {
    "final": "After the code runs{what}, what are the final values of {names}? Think step by step, then write "
    "a Python dict literal mapping each name to its value on the last line.",
    "output": "What does the code produce{what}? Think step by step, then write the value as a Python literal "
    "on the last line.",
    "lines": "Which line numbers execute{what}, in order? Think step by step, then write {{'lines': [...]}} on "
    "the last line.",
    "steps": "Trace the execution{what} line by line: for each executed line, the variables it changes. Think step "
    "by step, then write {{'steps': [{{'line': n, 'changes': {{name: value}}}}, ...]}} on the last line.",
}
_CODERL = (
    "Given the code and input below, reason step by step about its execution, then give the final "
    "output and the final values of the variables {names}. On the last line, write only a JSON object: "
    '{{"final_output": <output>, "variables": {{{example}}}}}'
)
_TEXT_LIMITS = tracer.EncodeLimits(max_depth=50, max_items=100_000, max_str=1_000_000)


def _numbered(code: str) -> str:
    return "\n".join(f"{i:>3} | {line}" for i, line in enumerate(code.splitlines(), 1))


def build_task(
    code: str,
    call: str | None = None,
    stdin: str | None = None,
    *,
    kind: str = "final",
    template: str = "execalign",
    seed: int = 0,
    max_variables: int = 3,
    limits: Limits = Limits(),
    pool: sandbox.Pool | None = None,
    cache: ResultCache = CACHE,
) -> AlignmentTask | Skipped:
    """One alignment task from code and an input (a call expression, or stdin for a program)."""
    if (call is None) == (stdin is None):
        return Skipped("give exactly one of call (a call expression) and stdin (for a program)")
    if kind not in _OURS:
        return Skipped(f"unknown kind {kind!r}")
    if template not in ("execalign", "coderl_plus"):
        return Skipped(f"unknown template {template!r}")
    task = sandbox.Job(
        mode="call" if call is not None else "script",
        code=code,
        call=call,
        stdin=stdin or "",
        trace=True,
        limits=limits,
    )
    result = cache.run([task], pool)[0]
    if result.status != "ok" or result.trace is None:
        return Skipped(f"the code did not run cleanly: {result.status} {result.message}".strip())
    trace = result.trace
    if trace.stopped is not None or trace.tampered:
        return Skipped(f"the trace is incomplete: {trace.stopped.reason if trace.stopped else trace.tampered}")
    candidates = interesting_variables(trace, code)
    variables = sorted(random.Random(seed).sample(candidates, min(max_variables, len(candidates))))
    if kind == "final" and not variables:
        return Skipped("no variable worth asking about")
    what = f" on `{call}`" if call is not None else " with the given input"
    coderl = template == "coderl_plus"
    if coderl:
        value = gold_final(trace, variables, with_output=True)
        answer = msgspec.json.encode(_jsonable(value)).decode()
        question = _CODERL.format(names=", ".join(variables), example=", ".join(f'"{v}": ...' for v in variables))
        kind = "final"
    else:
        value = gold_answer(trace, kind, variables, stdio=stdin is not None)
        answer = as_text(value)
        question = _OURS[kind].format(what=what, names=", ".join(f"`{v}`" for v in variables))
    shown_input = f"Call: `{call}`" if call is not None else f"Input (stdin):\n```\n{stdin}\n```"
    prompt = f"```python\n{_numbered(code) if kind in ('lines', 'steps') else code}\n```\n{shown_input}\n\n{question}"
    tests = [call] if call is not None else [{"stdin": stdin, "stdout": None}]
    return AlignmentTask(
        prompt=prompt,
        answer=answer,
        gold=value,
        kind=kind,
        code=code,
        tests=tests,
        variables=variables,
        metadata={"seed": seed, "template": template, "steps": len(trace.steps), "candidates": candidates},
    )


def _jsonable(value: Any) -> Any:
    from .compare import to_json_value

    return to_json_value(value)
