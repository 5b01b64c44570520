"""Alignment tasks: a prompt about some code and an input, with its gold answer.

`build_task(code, call="f([1, 2])")` (or `stdin=...` for a program) runs the code
traced in the sandbox and asks one question about the run (`rewards.questions`):
the final values of a few variables (CodeRL+'s question, but for locals of any
function, so `def main()` programs work), the output, the executed lines, the
whole trajectory, or white-box probes (state, next, coverage, or a bundle of
them: `rewards.probes`). The variables and probes asked are drawn, fixed by
`seed`, from those worth asking about (`questions.interesting_variables`,
`selection.select`). Code that errors, times out, or has nothing to ask about is
skipped, with the reason.

Templates: "execalign" (the question, a Python literal on the last line),
"coderl_plus" (CodeRL+'s prompt and JSON answer on the last line, scored with
its lenient values and 0.1 + 0.9 * correct share: the final question, or the
probes as {"answers": [...]}), "cwm" (steps only: Meta CWM's trace prompt and
its trace as the answer, `tracer.cwm`).

An `AlignmentTask`'s gold answer scores 1.0 through `rewards.score` called with
its own fields: `score(**t.score_args, predicted_trace=t.answer)`.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import msgspec

import sandbox
import tracer
from sandbox import Limits, Result
from tracer import encode, render
from tracer.cwm import to_cwm

from .cache import CACHE, ResultCache
from .compare import to_json_value
from .jobs import trace_job
from .probes import Probe, Run
from .questions import PROBE_QUESTIONS, QUESTIONS, Truth, asked_probes, gold_coderl_plus, interesting_variables
from .selection import CodeLines, select
from .testcases import InvalidTask, parse_tests

TEMPLATES = ("execalign", "coderl_plus", "cwm")
CWM_QUESTIONS = ("steps",)  # what the cwm template asks


class AlignmentTask(msgspec.Struct, kw_only=True):
    prompt: str
    answer: str  # the gold answer as text (what a perfect model writes last)
    gold: Any  # the gold answer as a value
    question: str  # final, output, lines, steps, state, next, coverage, bundle
    code: str
    tests: list[Any]  # what to pass to rewards.score with the answer
    variables: list[str] = []
    mode: str = "typed"  # how rewards.score compares answers to it: typed, or coderl_plus (that template)
    probes: list[Probe] = []  # what a state, next, coverage or bundle question asks
    metadata: dict[str, Any] = {}

    @property
    def score_args(self) -> dict[str, Any]:
        """The keyword arguments of `rewards.score` that check an answer to this task (all but
        the answer, `predicted_trace`), as builtin values (JSON-ready)."""
        return {
            "code": self.code,
            "tests": self.tests,
            "question": self.question,
            "variables": list(self.variables),
            "mode": self.mode,
            "probes": [msgspec.to_builtins(p) for p in self.probes],
        }


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
_CODERL_PROBES = (
    "Given the code and input below, reason step by step about its execution, then answer {which}. On "
    'the last line, write only a JSON object: {{"answers": [{example}]}}'
)
_PROBES = "Think step by step, then write {what} on the last line."
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
    max_probes: int | None = None,
    probes: Sequence[Probe | dict[str, Any]] | None = None,
    limits: Limits = Limits(),
    pool: sandbox.Pool | None = None,
    cache: ResultCache = CACHE,
    result: Result | None = None,
) -> AlignmentTask | Skipped:
    """One alignment task from code and an input (a call expression, or stdin for a program).

    `question` is final (the default), output, lines, steps, state, next, coverage or bundle;
    `kind=` is its old name, kept as an alias. Probe questions ask up to `max_probes` probes (1,
    or 3 for a bundle) chosen by `selection.select`, or the `probes` given. The coderl_plus template
    asks CodeRL+'s question (output and final values) for any question but the probe questions;
    the cwm template asks for the steps in Meta CWM's trace format. `result` is the traced run of
    this code on this input when the caller has it already (a call mode `Result` with status ok,
    or its equal: `rewards.onpolicy`): no sandbox run is made then."""
    question = question or kind or "final"
    if (call is None) == (stdin is None):
        return Skipped("give exactly one of call (a call expression) and stdin (for a program)")
    asked = QUESTIONS.get(question)
    if asked is None or asked.gold is None:
        askable = ", ".join(name for name, q in QUESTIONS.items() if q.gold is not None)
        return Skipped(f"unknown question {question!r}: choose {askable}")
    if template not in TEMPLATES:
        return Skipped(f"unknown template {template!r}: choose {', '.join(TEMPLATES)}")
    if template == "cwm" and question not in CWM_QUESTIONS:
        return Skipped(f"the cwm template asks {', '.join(CWM_QUESTIONS)}, not {question}")
    tests = task_tests(call, stdin)
    try:
        job = task_job(code, call, stdin, limits)
        _, given = asked_probes(question, probes) if probes else (question, [])
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
    coderl_final = template == "coderl_plus" and question not in PROBE_QUESTIONS  # CodeRL+'s question is a final one
    if (question == "final" or coderl_final) and not variables:
        return Skipped("no variable worth asking about")
    chosen: list[Probe] = []
    if question in PROBE_QUESTIONS:
        count = max_probes or (3 if question == "bundle" else 1)
        chosen = given or select(question, Run(trace), CodeLines.of(code), seed, count, program=stdin is not None)
        if not chosen:
            return Skipped(f"no line worth a {question} question")
    truth = Truth(result=result, code=code, stdio=stdin is not None, variables=variables, probes=tuple(chosen))
    what = f" on `{call}`" if call is not None else " with the given input"
    mode, numbered = "typed", asked.numbered
    value: Any
    if template == "cwm":
        exported = to_cwm(trace, code)
        value = answer = exported.completion
        prompt = exported.prompt
    else:
        if coderl_final:
            question, mode, numbered = "final", "coderl_plus", False
            value = gold_coderl_plus(truth)
            answer = msgspec.json.encode(to_json_value(value)).decode()
            text = _CODERL.format(names=", ".join(variables), example=", ".join(f'"{v}": ...' for v in variables))
        elif chosen:
            value = asked.gold(truth)
            mode = "coderl_plus" if template == "coderl_plus" else "typed"
            answer, text = _probe_task(chosen, value, what, mode)
        else:
            value = asked.gold(truth)
            answer = as_text(value)
            text = asked.prompt.format(what=what, names=", ".join(f"`{v}`" for v in variables))
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
        probes=chosen,
        metadata={"seed": seed, "template": template, "steps": len(trace.steps), "candidates": candidates},
    )


def task_tests(call: str | None, stdin: str | None) -> list[Any]:
    """The tests of a task on a call expression or a program's stdin (`AlignmentTask.tests`)."""
    return [call] if call is not None else [{"stdin": stdin, "stdout": None}]


def task_job(code: str, call: str | None, stdin: str | None, limits: Limits = Limits()) -> sandbox.Job:
    """The traced run `build_task` asks about (run it first, through the cache, to build many tasks at once)."""
    return trace_job(code, parse_tests(task_tests(call, stdin)), 0, limits, {})


def _probe_task(chosen: list[Probe], value: Any, what: str, mode: str) -> tuple[str, str]:
    """The gold answer's text and the question's text for probes (one, or several numbered)."""
    answers = [value] if len(chosen) == 1 else list(value)
    if len(chosen) == 1:
        questions = chosen[0].text()
    else:
        questions = "\n".join(f"{i}. {p.text()}" for i, p in enumerate(chosen, 1))
    if mode == "coderl_plus":
        which = "this question" if len(chosen) == 1 else "these questions, in order"
        text = _CODERL_PROBES.format(which=which, example=", ".join(f"<answer {i}>" for i in range(1, len(chosen) + 1)))
        answer = msgspec.json.encode({"answers": [to_json_value(a) for a in answers]}).decode()
        return answer, f"{text}\n{questions}"
    if len(chosen) == 1:
        return as_text(value), f"About the execution{what}: {questions}\n{_PROBES.format(what='the answer')}"
    last = _PROBES.format(what="a Python list with one answer per question, in order,")
    return as_text(answers), f"Answer these questions about the execution{what}:\n{questions}\n{last}"
