"""White-box questions (state, next, coverage, bundles of them) and CodeExecutor's dense metrics for steps:
what each asks on a known program, their gold answers against an independent settrace oracle, gold answers
scoring 1.0 and corrupted ones less on CRUXEval and generated programs, the answer reader, and how probes are
chosen."""

import copy
import json
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tracer
from rewards import score, score_batch, tasks
from rewards.probes import PROBED, Probe, Run, read_answers
from rewards.questions import PROBE_QUESTIONS, codeexecutor_metrics
from rewards.selection import CodeLines, select
from tests.strategies import HELPER, small_programs


@pytest.fixture(autouse=True)
def on_test_pool(pool, monkeypatch):
    monkeypatch.setattr("sandbox.default_pool", lambda: pool)


def state(line, variable, execution=1):
    return {"question": "state", "line": line, "variable": variable, "execution": execution}


def nxt(line, execution=1):
    return {"question": "next", "line": line, "execution": execution}


def covers(line=None):
    return {"question": "coverage", "line": line}


def reward(answer, probes, call="f([1, 3])", **kw):
    s = score(HELPER, [call], answer, probes=probes, **kw)
    assert s.status == "ok", s
    return s.reward


# ---------------------------------------------------------------- what each question asks


@pytest.mark.parametrize(
    "probe,right,wrong",
    [
        (state(10, "total"), "5", "6"),  # -1 + g(3)
        (state(3, "b"), "6", "6.0"),  # typed: 6.0 is a float
        (state(8, "x", 2), "3", "1"),
        (state(8, "x", 2), "{'value': 3, 'type': 'int'}", "{'value': 3, 'type': 'str'}"),
        (nxt(7), "8", "9"),
        (nxt(9), "12", "10"),  # x = 1: the else branch
        (nxt(9, 2), "10", "12"),
        (nxt(10), "8", "3"),  # the lines of g, which line 10 calls, do not count
        (nxt(8, 3), "13", "9"),  # the loop's exit
        (nxt(13), "-1", "8"),  # the call ends there
        (nxt(4), "8", "10"),  # after g returns, f's next line
        (nxt(12, 2), "-1", "8"),  # line 12 runs once only
        (covers(12), "True", "False"),
        (covers(4), "yes", "no"),
        (covers(), "[3, 4, 7, 8, 9, 10, 12, 13]", "[7, 8, 9, 10, 12, 13]"),
    ],
)
def test_each_question_on_a_known_program(probe, right, wrong):
    assert reward(right, [probe]) == 1.0
    assert reward(wrong, [probe]) < 1.0


def test_values_that_look_like_answer_wrappers_are_values_too():
    code = "def f():\n    a = {'value': 3}\n    b = {'answers': [5]}\n    return a, b\n"
    for line, variable in ((2, "a"), (3, "b")):
        task = tasks.build_task(code, call="f()", question="state", probes=[state(line, variable)])
        assert score(**task.score_args, predicted_trace=task.answer).reward == 1.0, task.answer
    assert score(code, ["f()"], "{'value': 3}", probes=[state(3, "a")]).reward == 1.0
    assert score(code, ["f()"], "{'value': 3, 'type': 'str'}", probes=[state(3, "a")]).reward == 0.0
    assert score(code, ["f()"], "{'answers': [{'value': 3}]}", probes=[state(3, "a")]).reward == 1.0


def test_a_state_answer_may_name_its_type():
    code = "from decimal import Decimal\ndef f():\n    d = Decimal('1.5')\n    n = None\n    return d, n\n"
    for answer, right in [
        ("Decimal('1.5')", 1.0),
        ("{'value': Decimal('1.5'), 'type': 'Decimal'}", 1.0),
        ("{'value': Decimal('1.5'), 'type': 'float'}", 0.0),
        ("1.5", 0.0),
    ]:
        assert score(code, ["f()"], answer, probes=[state(3, "d")]).reward == right, answer
    assert score(code, ["f()"], "{'value': None, 'type': 'NoneType'}", probes=[state(4, "n")]).reward == 1.0


def test_trainer_samples_of_probe_tasks_carry_their_probes():
    from rewards import integrations, onpolicy

    task = tasks.build_task(HELPER, call="f([1, 3])", question="bundle", seed=1)
    fields = onpolicy.task_fields(task)  # what the on-policy loop puts in TRL rows and verl's ground truth
    assert fields["probes"] == task.score_args["probes"] and len(fields["probes"]) == 3
    assert integrations.compute_score("execalign", task.answer, json.dumps(fields))["score"] == 1.0
    trl = integrations.TRLReward()(completions=[task.answer], **{k: [v] for k, v in fields.items()})
    assert trl == [1.0]


def test_a_line_that_never_runs():
    assert reward("False", [covers(10)], call="f([0])") == 1.0
    assert reward("-1", [nxt(10)], call="f([0])") == 1.0
    undefined = score(HELPER, ["f([0])"], "1", probes=[state(10, "total")])
    assert undefined.status == "invalid_task" and "does not run" in undefined.message and undefined.reward is None
    assert score(HELPER, ["f([0])"], "1", probes=[state(7, "nothing")]).status == "invalid_task"


def test_bundles_score_each_answer_and_report_each_question():
    probes = [state(10, "total"), nxt(9), covers(12)]
    s = score(HELPER, ["f([1, 3])"], "Reasoning.\n1. 5\n2. 12\n3. True", probes=probes)
    assert (s.question, s.reward) == ("bundle", 1.0)
    assert [d.item.split(":")[0] for d in s.details] == ["1", "2", "3"]
    half = score(HELPER, ["f([1, 3])"], "[5, 10, True]", probes=probes)
    assert half.reward == pytest.approx(2 / 3) and half.components["next"] == 0.0 and half.components["state"] == 1.0
    assert score(HELPER, ["f([1, 3])"], "[5]", probes=probes).reward == pytest.approx(1 / 3)  # the rest missing
    coderl = score(HELPER, ["f([1, 3])"], '{"answers": [5, 10, true]}', probes=probes, mode="coderl_plus")
    assert coderl.reward == pytest.approx(0.1 + 0.9 * 2 / 3) and coderl.components["format"] == 1.0


def test_malformed_probes_are_invalid_tasks():
    for probes, question, message in [
        ([{"question": "state", "line": 3}], "state", "variable"),
        ([{"question": "next"}], "next", "line"),
        ([{"question": "next", "line": 3, "execution": 0}], "next", "from 1"),
        ([{"question": "when", "line": 3}], "auto", "when"),
        ([nxt(3)], "state", "state probes only"),
        ([nxt(3)], "final", "not 'final'"),
        ([], "next", "needs probes"),
    ]:
        s = score(HELPER, ["f([1])"], "3", question=question, probes=probes)
        assert s.status == "invalid_task" and message in s.message and s.reward is None, (probes, s)


def test_unreadable_answers_are_parse_errors():
    assert score(HELPER, ["f([1])"], "", probes=[nxt(7)]).status == "parse_error"
    s = score(HELPER, ["f([1])"], "I think so.", probes=[nxt(7), covers(12)])
    assert s.status == "parse_error" and "2 questions" in s.message


# ---------------------------------------------------------------- the answer reader

SINGLE = [
    ("state", "5", 5),
    ("state", "Some reasoning.\nAnswer: 5", 5),
    ("state", "The answer is 5", 5),
    ("state", "**Answer:** 5", 5),
    ("state", "total = 5", 5),
    ("state", "`total` is 5", 5),
    ("state", "```\n5\n```", 5),
    ("state", "<answer>5</answer> and more words", 5),
    ("state", "1.5", 1.5),  # a float, not an item numbered 1
    ("state", "[5]", [5]),
    ("next", "so the values are [1, 2]\nLine 7", "Line 7"),
    ("next", "1. 7", 7),
    ("next", "\\boxed{7}", 7),
    ("coverage", "Yes, it runs.", "Yes, it runs."),
]


@pytest.mark.parametrize("question,text,value", SINGLE)
def test_reader_single_answers(question, text, value):
    probe = Probe(question=question, line=1, variable="x" if question == "state" else None)
    assert read_answers(text, [probe]) == [value]


@pytest.mark.parametrize(
    "text",
    [
        "[5, True, 7]",
        "1. 5\n2. True\n3. 7",
        "1) 5\n2) True\n3) 7",
        "Q1: 5\nQ2: True\nQ3: 7",
        "- **1.** 5\n- **2.** True\n- **3.** 7",
        "{'1': 5, '2': True, '3': 7}",
        "{1: 5, 2: True, 3: 7}",
        '{"answers": [5, true, 7]}',
        "<answer>\n1. 5\n2. True\n3. 7\n</answer>",
        "1. First, x is 1\n2. then it loops\n\nSo:\n[5, True, 7]",
    ],
)
def test_reader_bundles(text):
    probes = [
        Probe(question="state", line=1, variable="x"),
        Probe(question="coverage", line=2),
        Probe(question="next", line=3),
    ]
    assert read_answers(text, probes) == [5, True, 7]


answers = st.recursive(st.integers() | st.text(max_size=5) | st.booleans() | st.none(), st.lists, max_leaves=5)


@given(st.lists(answers, min_size=1, max_size=4), st.sampled_from(["plain", "numbered", "tagged", "dict"]))
@settings(max_examples=200)
def test_reader_reads_back_any_written_answers(values, style):
    probes = [Probe(question="state", line=1, variable="x") for _ in values]
    written = [tracer.render(tracer.encode(v)) for v in values]
    whole = written[0] if len(values) == 1 else "[" + ", ".join(written) + "]"
    text = {
        "plain": f"Thinking...\nAnswer: {whole}",
        "numbered": "Thinking...\n" + "\n".join(f"{i}. {w}" for i, w in enumerate(written, 1)),
        "tagged": f"<answer>{whole}</answer>",
        "dict": "{" + ", ".join(f"{i}: {w}" for i, w in enumerate(written, 1)) + "}" if len(values) > 1 else whole,
    }[style]
    assert read_answers(text, probes) == values


# ---------------------------------------------------------------- gold answers against an independent oracle

CALLER = """
def g(v):
    if v > 0:
        return v * 2
    return -v
"""


@st.composite
def programs_with_calls(draw):
    program = draw(small_programs())
    extra = draw(st.sampled_from(["acc += g(x)", "if g(x) > 2:\n            acc -= 1", "seen.append(g(acc))"]))
    return CALLER + program.replace("    for x in xs:\n", f"    for x in xs:\n        {extra}\n", 1)


def oracle(code, call):
    """Each line execution of the call as sys.settrace sees it: (line, depth, variables after it, next line)."""
    namespace = {}
    exec(compile(code, "<oracle>", "exec"), namespace)
    events = []  # (frame, depth, line, event)
    snapshots = {}  # index of a line event -> the frame's variables at the frame's next event

    def depth_of(frame):
        depth, f = 0, frame.f_back
        while f is not None:
            depth += f.f_code.co_filename == "<oracle>"
            f = f.f_back
        return depth

    pending = {}  # frame -> index of its last line event

    def trace(frame, event, arg):
        if frame.f_code.co_filename != "<oracle>":
            return None
        if frame in pending:
            snapshots[pending.pop(frame)] = copy.deepcopy(dict(frame.f_locals))
        if event == "line":
            pending[frame] = len(events)
            events.append((depth_of(frame), frame.f_lineno))
        return trace

    previous = sys.gettrace()
    sys.settrace(trace)
    try:
        eval(compile(call, "<call>", "eval"), namespace)
    finally:
        sys.settrace(previous)
    out = []
    for i, (depth, line) in enumerate(events):
        following = next((later for d, later in events[i + 1 :] if d <= depth), -1)
        out.append((line, depth, snapshots[i], following))
    return out


@given(programs_with_calls(), st.lists(st.integers(-4, 4), max_size=5))
@settings(max_examples=40, deadline=None)
def test_run_index_agrees_with_a_settrace_oracle(program, xs):
    call = f"f({xs!r})"
    run = Run(tracer.trace(program, call=call))
    expected = oracle(program, call)
    assert [(e.line, e.depth, e.next_line) for e in run.executions] == [(line, d, n) for line, d, _, n in expected]
    for execution, (_, _, after, _) in zip(run.executions, expected):
        assert {k: tracer.to_python(v) for k, v in execution.after.items()} == after


# ---------------------------------------------------------------- every gold answer scores 1.0, corruption less


def corrupt(value, question):
    if question == "state":
        return [value]  # wrapped: never equal to the value itself
    if question == "next":
        return value + 1
    return not value if isinstance(value, bool) else [*value[1:], 999]


def answers_to(task):
    """The gold answer's text, then one text per probe with that probe's answer corrupted."""
    answers = [task.gold] if len(task.probes) == 1 else list(task.gold)
    texts = [task.answer]
    for i, probe in enumerate(task.probes):
        broken = list(answers)
        broken[i] = corrupt(broken[i], probe.question)
        texts.append(tasks.as_text(broken[0] if len(broken) == 1 else broken))
    return texts


def rewards_of(task, texts):
    scores = score_batch([dict(task.score_args, predicted_trace=text) for text in texts])
    assert all(s.status == "ok" for s in scores), scores
    return [s.reward for s in scores]


def test_gold_answers_score_one_and_corrupted_less_on_cruxeval(cruxeval):
    built = []
    for number, row in enumerate(cruxeval):
        for question in PROBE_QUESTIONS:
            task = tasks.build_task(row["code"], call=f"f({row['input']})", question=question, seed=number)
            if isinstance(task, tasks.Skipped):
                assert "did not run cleanly" in task.reason or "no line" in task.reason, task
                continue
            built.append((task, answers_to(task)))
    assert len(built) > 3000
    items = [dict(task.score_args, predicted_trace=text) for task, texts in built for text in texts]
    scores = iter(score_batch(items))
    for task, texts in built:
        gold, *corrupted = [next(scores) for _ in texts]
        assert (gold.status, gold.reward) == ("ok", 1.0), (task, gold)
        assert all(s.status == "ok" and s.reward < 1.0 for s in corrupted), (task, corrupted)


@given(
    programs_with_calls(),
    st.lists(st.integers(-4, 4), min_size=1, max_size=5),
    st.sampled_from(PROBE_QUESTIONS),
    st.integers(0, 50),
    st.sampled_from(["execalign", "coderl_plus"]),
)
@settings(max_examples=30, deadline=None)
def test_gold_answers_score_one_and_corrupted_less_on_generated_programs(program, xs, question, seed, template):
    as_program = program + "\nprint(f([int(a) for a in input().split()]))\n"
    for code, run_on in ((program, {"call": f"f({xs!r})"}), (as_program, {"stdin": " ".join(map(str, xs))})):
        task = tasks.build_task(code, **run_on, question=question, seed=seed, template=template, max_probes=3)
        assert isinstance(task, tasks.AlignmentTask), task
        assert score(**task.score_args, predicted_trace=task.answer).reward == 1.0
        if template == "execalign":
            assert all(r < 1.0 for r in rewards_of(task, answers_to(task)[1:]))


# ---------------------------------------------------------------- choosing probes


def test_selection_is_deterministic_per_seed_and_varies_with_it(cruxeval):
    code, call = cruxeval[5]["code"], f"f({cruxeval[5]['input']})"
    run, lines = Run(tracer.trace(code, call=call)), CodeLines.of(code)
    for question in (*PROBED, "bundle"):
        picks = [select(question, run, lines, seed, 3, program=False) for seed in range(6)]
        assert picks == [select(question, run, lines, seed, 3, program=False) for seed in range(6)]
        assert len({tuple(p) for p in picks}) > 1, question
    bundle = select("bundle", run, lines, 0, 3, program=False)
    assert {p.question for p in bundle} == set(PROBED)


def test_selection_prefers_informative_probes(cruxeval):
    branching = changing = covered = not_covered = 0
    for number, row in enumerate(cruxeval):
        code, call = row["code"], f"f({row['input']})"
        run, lines = Run(tracer.trace(code, call=call)), CodeLines.of(code)
        (probe,) = select("next", run, lines, number, 1, program=False) or (None,)
        if probe is not None and any(line in run.by_line for line in lines.branches & lines.stable):
            following = {e.next_line for e in run.by_line.get(probe.line, [])}
            decides = probe.line in lines.branches or len(following) > 1 or probe.line not in run.by_line
            assert decides, (code, probe)
            branching += 1
        changed = [
            (line, name)
            for line, runs in run.by_line.items()
            if line in lines.stable
            for e in runs
            for name, v in e.changed.items()
            if v.t not in ("function", "module", "class") and len(tracer.render(v)) <= 80
        ]
        (probe,) = select("state", run, lines, number, 1, program=False) or (None,)
        if changed:
            execution = run.by_line[probe.line][probe.execution - 1]
            assert probe.variable in execution.changed, (code, probe)
            changing += 1
        (probe,) = select("coverage", run, lines, number, 1, program=False) or (None,)
        askable = lines.stable & lines.in_function
        if askable & set(run.by_line) and askable - set(run.by_line):  # it could be either
            if probe.line in run.by_line:
                covered += 1
            else:
                not_covered += 1
    assert branching > 300 and changing > 500
    # where some lines run and some do not, either answer is as likely: "always True" is no strategy
    assert 0.3 < not_covered / (covered + not_covered) < 0.7, (covered, not_covered)


def test_unstable_lines_are_never_chosen():
    code = "def f(xs):\n    ys = [x * 2 for x in xs]\n    z = (1 +\n         2)\n    w = len(ys) + z\n    return w\n"
    lines = CodeLines.of(code)
    assert lines.stable == {5, 6}
    run = Run(tracer.trace(code, call="f([1, 2])"))
    for question in (*PROBED, "bundle"):
        for seed in range(5):
            assert all(p.line in (None, 5, 6) for p in select(question, run, lines, seed, 5, program=False))


# ---------------------------------------------------------------- CodeExecutor's dense metrics for steps


def test_dense_metrics_on_a_known_trace():
    gold = tasks.build_task(HELPER, call="f([1, 3])", question="steps").gold["steps"]
    perfect = score(HELPER, ["f([1, 3])"], tasks.as_text(gold), question="steps")
    metrics = {k: v for k, v in perfect.components.items() if k.startswith(("line_", "identifier_"))}
    assert len(metrics) == 6 and set(metrics.values()) == {1.0}
    wrong = [dict(s) for s in gold]
    k = next(i for i, s in enumerate(wrong) if s["changes"])
    wrong[k] = {"line": wrong[k]["line"], "changes": {name: "wrong" for name in wrong[k]["changes"]}}
    c = score(HELPER, ["f([1, 3])"], tasks.as_text(wrong), question="steps").components
    n, names = len(gold), sum(len(s["changes"]) for s in gold)
    changed = len(wrong[k]["changes"])
    assert c["line_precision"] == c["line_recall"] == pytest.approx((n - 1) / n)
    assert c["identifier_precision"] == c["identifier_recall"] == pytest.approx((names - changed) / names)
    shifted = score(HELPER, ["f([1, 3])"], tasks.as_text(gold[1:]), question="steps").components
    assert shifted["line_recall"] < 0.5  # CodeExecutor compares position by position


@given(
    st.lists(
        st.tuples(st.integers(1, 4), st.dictionaries(st.sampled_from("abc"), st.integers(0, 2), max_size=2)), max_size=8
    ),
    st.lists(
        st.tuples(st.integers(1, 4), st.dictionaries(st.sampled_from("abc"), st.integers(0, 2), max_size=2)), max_size=8
    ),
)
def test_dense_metrics_lie_in_range_and_are_one_only_when_equal(predicted, actual):
    metrics = codeexecutor_metrics(predicted, actual, lambda a, b: a == b)
    assert all(0.0 <= v <= 1.0 for v in metrics.values())
    assert (metrics["line_f1"] == 1.0) == (predicted == actual)
