"""Alignment tasks: a prompt about some code and an input, with its gold answer.

`build_task(code, call="f([1, 2])")` (or `stdin=...` for a program) runs the code
traced in the sandbox and asks one question about the run (`rewards.questions`):
the final values of a few variables (CodeRL+'s question, but for locals of any
function, so `def main()` programs work), the output, the executed lines or the
whole trajectory. The variables asked are drawn, fixed by `seed`, from those
worth asking about (`questions.interesting_variables`). Code that errors, times
out, or has nothing to ask about is skipped, with the reason.

An `AlignmentTask`'s gold answer scores 1.0 through `rewards.score` called with
its own fields: `score(t.code, t.tests, t.answer, question=t.question,
variables=t.variables, mode=t.mode)`.
"""

from __future__ import annotations

import random
from typing import Any

import msgspec

import sandbox
import tracer
from sandbox import Limits, Result
from tracer import encode, render

from .cache import CACHE, ResultCache
from .compare import to_json_value
from .jobs import trace_job
from .questions import QUESTIONS, Truth, gold_coderl_plus, interesting_variables
from .testcases import InvalidTask, parse_tests

TEMPLATES = ("execalign", "coderl_plus")


class AlignmentTask(msgspec.Struct, kw_only=True):
    prompt: str
    answer: str  # the gold answer as text (what a perfect model writes last)
    gold: Any  # the gold answer as a value
    question: str  # final, output, lines, steps
    code: str
    tests: list[Any]  # what to pass to rewards.score with the answer
    variables: list[str] = []
    mode: str = "typed"  # how rewards.score compares answers to it: typed, or coderl_plus (that template)
    metadata: dict[str, Any] = {}


class Skipped(msgspec.Struct, frozen=True):
    reason: str


def as_text(value: Any) -> str:
    """A gold value as the Python-literal text a model should write."""
    return render(encode(value, _TEXT_LIMITS))


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
    question: str | None = None,
    kind: str | None = None,
    template: str = "execalign",
    seed: int = 0,
    max_variables: int = 3,
    limits: Limits = Limits(),
    pool: sandbox.Pool | None = None,
    cache: ResultCache = CACHE,
    result: Result | None = None,
) -> AlignmentTask | Skipped:
    """One alignment task from code and an input (a call expression, or stdin for a program).

    `question` is final (the default), output, lines or steps; `kind=` is its old name, kept as
    an alias. The coderl_plus template asks CodeRL+'s question (output and final values).
    `result` is the traced run of this code on this input when the caller has it already (a call
    mode `Result` with status ok, or its equal: `rewards.onpolicy`): no sandbox run is made then."""
    question = question or kind or "final"
    if (call is None) == (stdin is None):
        return Skipped("give exactly one of call (a call expression) and stdin (for a program)")
    asked = QUESTIONS.get(question)
    if asked is None or asked.gold is None:
        askable = ", ".join(name for name, q in QUESTIONS.items() if q.gold is not None)
        return Skipped(f"unknown question {question!r}: choose {askable}")
    if template not in TEMPLATES:
        return Skipped(f"unknown template {template!r}: choose {', '.join(TEMPLATES)}")
    tests: list[Any] = [call] if call is not None else [{"stdin": stdin, "stdout": None}]
    try:
        job = trace_job(code, parse_tests(tests), 0, limits, {})
    except InvalidTask as error:
        return Skipped(str(error))
    if result is None:
        result = cache.run([job], pool)[0]
    if result.status != "ok" or result.trace is None:
        return Skipped(f"the code did not run cleanly: {result.status} {result.message}".strip())
    trace = result.trace
    if trace.stopped is not None or trace.tampered:
        return Skipped(f"the trace is incomplete: {trace.stopped.reason if trace.stopped else trace.tampered}")
    candidates = interesting_variables(trace, code)
    variables = sorted(random.Random(seed).sample(candidates, min(max_variables, len(candidates))))
    if question == "final" and not variables:
        return Skipped("no variable worth asking about")
    truth = Truth(result=result, code=code, stdio=stdin is not None, variables=variables)
    if template == "coderl_plus":
        question, mode = "final", "coderl_plus"
        value: Any = gold_coderl_plus(truth)
        answer = msgspec.json.encode(to_json_value(value)).decode()
        text = _CODERL.format(names=", ".join(variables), example=", ".join(f'"{v}": ...' for v in variables))
        numbered = False
    else:
        mode = "typed"
        value = asked.gold(truth)
        answer = as_text(value)
        what = f" on `{call}`" if call is not None else " with the given input"
        text = asked.prompt.format(what=what, names=", ".join(f"`{v}`" for v in variables))
        numbered = asked.numbered
    shown_input = f"Call: `{call}`" if call is not None else f"Input (stdin):\n```\n{stdin}\n```"
    prompt = f"```python\n{_numbered(code) if numbered else code}\n```\n{shown_input}\n\n{text}"
    return AlignmentTask(
        prompt=prompt,
        answer=answer,
        gold=value,
        question=question,
        code=code,
        tests=tests,
        variables=variables,
        mode=mode,
        metadata={"seed": seed, "template": template, "steps": len(trace.steps), "candidates": candidates},
    )
