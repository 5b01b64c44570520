"""rewards: the exact examples, parsing, comparison, alignment, statuses, batches, questions, tasks and test suites."""

import math

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rewards
from rewards import align, questions, score, score_batch, tasks, testcases
from rewards.compare import coderl_equal, typed_equal
from rewards.parse import MAX_CHARS, ParseError, parse_answer, parse_arguments
from rewards.score import run_batch
from tests.strategies import same, small_programs, values
from tracer import encode, render

CODE = "def f(x):\n    y = x * 2\n    return y + 1"
PROGRAM = """
def main():
    n = int(input())
    total = 0
    for i in range(n):
        total += i * i
    print(total)

main()
"""


@pytest.fixture(autouse=True)
def on_test_pool(pool, monkeypatch):
    monkeypatch.setattr("sandbox.default_pool", lambda: pool)


# ---------------------------------------------------------------- the contract


def test_the_examples_that_must_hold_exactly():
    assert score(CODE, ["f(3)"], '{"y": 6}').reward == 1.0
    assert score(CODE, ["f(3)"], '{"y": 5}').reward == 0.0
    assert score(CODE, ["f(3)"], "7", question="output").reward == 1.0
    assert score(CODE, ["f(3)"], "8", question="output").reward == 0.0
    assert score(CODE, ["assert f(3) == 7"]).reward == 1.0
    assert score(CODE, ["assert f(3) == 8"]).reward == 0.0
    coderl = score(CODE, ["f(3)"], 'Step by step ...\n{"final_output": 7, "variables": {"y": 6}}')
    assert coderl.reward == 1.0 and coderl.question == "final"
    garbled = score(CODE, ["f(3)"], "so the answer is {'y': 6")
    assert garbled.status == "parse_error" and garbled.reward == 0.0 and garbled.message


def test_auto_says_which_question_it_chose():
    assert score(CODE, ["f(3)"], "{'lines': [2, 3]}").question == "lines"
    assert score(CODE, ["f(3)"], "[{'line': 2, 'changes': {'y': 6}}]").question == "steps"
    assert score(CODE, ["f(3)"], "7").question == "output"
    assert score(CODE, ["f(3)"], "{'y': 6}").question == "final"


def test_test_formats_and_test_index():
    assert (
        score(CODE, {"check": "def check(c):\n    assert c(1) == 3\n    assert c(2) == 0\n", "entry_point": "f"}).reward
        == 0.5
    )
    assert (
        score("print(int(input()) + 1)", [{"stdin": "1", "stdout": "2"}, {"stdin": "5", "stdout": "7"}]).reward == 0.5
    )
    assert score(CODE, ["f(1)", "f(3)"], "7", question="output", test_index=1).reward == 1.0
    assert score(CODE, ["assert f(1) == 3", "assert f(3) == 7"], "{'y': 6}", test_index=1).reward == 1.0
    assert score(PROGRAM, [{"stdin": "3\n", "stdout": "5\n"}], "'5\\n'", question="output").reward == 1.0


def test_main_style_programs_final_values():
    s = score(PROGRAM, [{"stdin": "3\n", "stdout": "5\n"}], "{'total': 5, 'n': 3, 'i': 2}")
    assert s.reward == 1.0 and {d.item for d in s.details} >= {"total", "i", "n"}


def test_final_values_of_a_run_longer_than_the_step_cap():
    """Final values and the output are recorded without line events: a run of 300,000 lines
    (three times the step cap) is judged on its real final values."""
    code = "def f(n):\n    total = 0\n    for i in range(n):\n        total += i % 7\n    return total"
    total = sum(i % 7 for i in range(100_000))
    assert score(code, ["f(100000)"], f"{{'total': {total}, 'i': 99999}}", question="final").reward == 1.0
    assert score(code, ["f(100000)"], str(total), question="output").reward == 1.0
    answer = {"final_output": total, "variables": {"total": total, "i": 99999}}
    assert score(code, ["f(100000)"], answer, mode="coderl_plus").reward == 1.0
    steps = score(code, ["f(100000)"], {"steps": [{"line": 2, "changes": {"total": 0}}]}, question="steps")
    assert steps.status == "ok"  # every line is recorded for questions about lines (up to the step cap)


def test_input_prediction():
    tests = ["assert f(??) == 7"]
    assert score(CODE, tests, "3").reward == 1.0
    assert score(CODE, tests, "f(3)").reward == 1.0
    assert score(CODE, tests, "The input is 2.\n[ANSWER]\nf(2)\n[/ANSWER]").reward == 0.0
    refused = score(CODE, tests, "f(__import__('os').system('touch /tmp/pwned'))")
    assert refused.status == "parse_error" and refused.reward == 0.0


def test_input_prediction_with_arguments_longer_than_the_value_caps():
    code = "def f(xs, s):\n    return sum(xs) + len(s)"
    xs, s = list(range(5000)), "a" * 20_000  # over EncodeLimits' 1000 items and 10,000 characters
    tests = [f"assert f(??) == {sum(xs) + len(s)}"]
    assert score(code, tests, f"f({xs!r}, {s!r})").reward == 1.0
    assert score(code, tests, f"f({xs[:-1]!r}, {s!r})").reward == 0.0


def test_typed_values_and_coderl_plus_leniency():
    code = "def f():\n    a = (1, 2)\n    b = {1: True}\n    c = 10 ** 30\n    return 0.1 + 0.2\n"
    assert score(code, ["f()"], "{'a': (1, 2), 'b': {1: True}, 'c': 10**30}").reward == 0.0  # 10**30 is no literal
    assert score(code, ["f()"], "{'a': (1, 2), 'b': {1: True}, 'c': 1000000000000000000000000000000}").reward == 1.0
    assert score(
        code, ["f()"], "{'a': [1, 2], 'b': {'1': 1}, 'c': 1000000000000000000000000000000}"
    ).reward == pytest.approx(1 / 3)
    assert score(code, ["f()"], "0.3", question="output").reward == 1.0  # relative tolerance
    lenient = score(
        code,
        ["f()"],
        '{"final_output": 0.3, "variables": {"a": [1, 2], "b": {"1": "true"}, "c": 1e30}}',
        mode="coderl_plus",
    )
    assert lenient.reward == pytest.approx(0.1 + 0.9 * 4 / 4)
    assert score(code, ["f()"], '{"a": [1, 2]}', mode="coderl_plus").status == "parse_error"


def test_statuses_are_distinct_and_masked_ones_have_no_reward():
    assert score("def f():\n    raise ValueError('x')", ["f()"], "1").status == "error"
    slow = score(  # a sleep: a busy loop on a busy machine may be `starved` (masked) instead
        "def f():\n    import time\n    time.sleep(60)",
        ["f()"],
        "1",
        limits=rewards.score.__globals__["Limits"](wall_time=0.5, cpu_time=5),
    )
    assert slow.status == "timeout" and slow.reward == 0.0
    bad = score(CODE, ["f(3"], "7")
    assert bad.status == "invalid_task" and bad.reward is None and bad.masked
    assert score(CODE, [], "7").status == "invalid_task"
    assert score(CODE, ["f(3)"], "7", question="nonsense").status == "invalid_task"
    assert score(CODE, ["f(3)"], "7", test_index=5).status == "invalid_task"


def test_batch_keeps_order_survives_bad_items_and_runs_each_code_once():
    rewards.CACHE.clear()
    misses = rewards.CACHE.misses
    items = [{"code": CODE, "tests": ["f(4)"], "predicted_trace": str(v), "question": "output"} for v in range(5, 13)]
    items.insert(3, {"code": CODE, "tests": "not a list of tests at all", "predicted_trace": 1})
    items.insert(5, {"nonsense": True})
    scores = score_batch(items, progress=True)
    assert [s.reward for s in scores] == [0, 0, 0, None, 0, None, 1, 0, 0, 0]  # f(4) == 9
    assert scores[5].status == "invalid_task"
    assert rewards.CACHE.misses - misses == 1


def test_scoring_processes_give_the_scores_of_one_process():
    """Large batches are read and scored in scoring processes (`rewards.scorers`): nothing in a Score changes."""
    code = "def f():\n    a = (1, 2)\n    b = {1: True}\n    c = 10 ** 30\n    return 0.1 + 0.2\n"
    gold_steps = tasks.build_task(CODE, call="f(3)", question="steps").answer
    items = [
        {"code": CODE, "tests": ["f(3)"], "predicted_trace": answer}
        for answer in ('{"y": 6}', '{"y": 5}', "7", "8", "{'lines': [2, 3]}", gold_steps, "{'y': 6", "[{'line': 9}]")
    ]
    items += [
        {"code": CODE, "tests": ["assert f(??) == 7"], "predicted_trace": "f(3)"},
        {"code": CODE, "tests": ["assert f(??) == 7"], "predicted_trace": "f(__import__('os'))"},
        {"code": code, "tests": ["f()"], "predicted_trace": "{'a': (1, 2), 'b': {1: True}, 'c': {2}}"},
        {"code": code, "tests": ["f()"], "predicted_trace": '{"final_output": 0.3, "variables": {"a": [1, 2]}}'},
        {"code": code, "tests": ["f()"], "predicted_trace": "{}", "mode": "coderl_plus"},
        {"code": PROGRAM, "tests": [{"stdin": "3\n", "stdout": "5\n"}], "predicted_trace": "{'total': 5, 'n': 3}"},
        {"code": CODE, "tests": ["f(3"], "predicted_trace": "7"},
        {"code": CODE, "tests": ["assert f(3) == 7", "assert f(1) == 0"]},
        {"nonsense": True},
        {"code": "def f():\n    raise ValueError('x')", "tests": ["f()"], "predicted_trace": "1"},
    ]
    items = items * 3  # answers that share a run, as a GRPO group's do
    statuses = set()
    for options in ({"trace_tests": True}, {"weights": {"tests": 0.5}, "trace_tests": True}):
        here = run_batch(items, processes=0, **options)
        there = run_batch(items, processes=2, **options)
        assert [s.score for s in there] == [s.score for s in here]
        assert [s.results for s in there] == [s.results for s in here]  # each with the runs it was scored from
        assert [type(s.score.prediction) for s in there] == [type(s.score.prediction) for s in here]  # a tuple stays
        statuses |= {s.score.status for s in here}
    assert statuses >= {"ok", "parse_error", "invalid_task", "error"}
    assert score_batch(items, processes=2) == score_batch(items, processes=0)


def test_task_is_the_old_name_of_question():
    assert score(CODE, ["f(3)"], "7", task="output").question == "output"
    assert score(CODE, ["f(3)"], "{'output': 7}", question="output", task="final").question == "output"
    item = {"code": CODE, "tests": ["f(3)"], "predicted_trace": "{'y': 6}", "task": "output"}
    assert score_batch([item])[0].question == "output"  # a dict item's "task" is read as "question"
    assert score_batch([{**item, "question": "final"}])[0].question == "final"  # "question" wins
    assert tasks.build_task(CODE, call="f(3)", kind="output").question == "output"
    assert b'"question":"final"' in msgspec.json.encode(score(CODE, ["f(3)"], "{'y': 6}"))


def test_unknown_question_names_it_and_the_valid_ones():
    s = score(CODE, ["f(3)"], "7", question="nonsense")
    assert (
        s.status == "invalid_task" and "'nonsense'" in s.message and "output, final, steps, lines, input" in s.message
    )
    assert "'nonsense'" in tasks.build_task(CODE, call="f(3)", question="nonsense").reason


def test_weights_mix_tests_and_prediction():
    s = score(CODE, ["assert f(3) == 7", "assert f(1) == 0"], "{'y': 6}", weights={"prediction": 1, "tests": 1})
    assert s.components == {"prediction": 1.0, "tests": 0.5} and s.reward == 0.75


# ---------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    "text,value",
    [
        ("7", 7),
        ("The answer is\n```python\n[1, (2, 3)]\n```", [1, (2, 3)]),
        ("<answer>{'a': 1}</answer> trailing", {"a": 1}),
        ("blah {'x': {1, 2}} and then {'y': None}", {"y": None}),
        ('so: {"a": true, "b": null}', {"a": True, "b": None}),
        ("\\boxed{42}", 42),
        ("reasoning... {'k': 'it\\'s'}", {"k": "it's"}),
        ("x\n{'a': [1, {'b': 2}]}", {"a": [1, {"b": 2}]}),
    ],
)
def test_parser_finds_the_answer(text, value):
    assert same(parse_answer(text).value, value)


def test_parser_never_evaluates_code():
    for text in ["__import__('os').system('touch /tmp/x')", "f('x')", "open('/etc/passwd').read()", "[x for x in y]"]:
        with pytest.raises(ParseError):
            parse_answer(text)
    with pytest.raises(ParseError):
        parse_arguments("f(open('/etc/passwd'))", "f")


@given(st.one_of(st.text(max_size=300), st.text(alphabet="{}[]()'\",:0123456789abc \n\\", max_size=400)))
@settings(max_examples=600, deadline=2000)
def test_parser_fuzz_never_crashes_or_hangs(text):
    for parse in (parse_answer, lambda t: parse_arguments(t, "f")):
        try:
            parse(text)
        except ParseError:
            pass


def test_parser_bounds_size_and_nesting():
    assert parse_answer("x" * (5 * MAX_CHARS) + "\n5").value == 5
    with pytest.raises(ParseError):
        parse_answer("[" * 200_000)


@given(values)
@settings(max_examples=200)
def test_rendered_values_parse_back(obj):
    assert same(parse_answer("The answer:\n" + render(encode(obj))).value, obj)


# ---------------------------------------------------------------- comparison


@given(values)
def test_typed_equal_is_reflexive_and_strict_on_types(obj):
    assert typed_equal(obj, obj)
    if isinstance(obj, tuple):
        assert not typed_equal(obj, list(obj))


def test_typed_equal_rules():
    assert not typed_equal(True, 1) and not typed_equal(1, 1.0) and not typed_equal({1: 0}, {"1": 0})
    assert typed_equal(math.nan, math.nan) and typed_equal(0.1 + 0.2, 0.3) and not typed_equal(1.0, 1.001)
    assert typed_equal({1, 2}, {2, 1}) and typed_equal(10**50, 10**50) and not typed_equal(10**50, 10**50 + 1)
    assert (
        coderl_equal(1.0, 1) and coderl_equal("true", True) and coderl_equal(None, "null") and coderl_equal([1], [1.0])
    )


# ---------------------------------------------------------------- alignment


@given(st.lists(st.integers(0, 5), max_size=30), st.lists(st.integers(0, 5), max_size=30))
def test_alignment_is_in_range_and_exact_only_when_equal(a, b):
    s = align.alignment_score(align.line_similarity(a, b), len(a), len(b))
    assert 0.0 <= s <= 1.0
    assert (s == 1.0) == (a == b)


@given(st.lists(st.integers(0, 5), min_size=1, max_size=25), st.data())
def test_alignment_is_monotone_in_each_similarity(actual, data):
    rows = data.draw(st.integers(1, 25))
    sim = np.array(
        data.draw(
            st.lists(
                st.lists(st.floats(0, 1), min_size=len(actual), max_size=len(actual)), min_size=rows, max_size=rows
            )
        )
    )
    base = align.alignment_score(sim, rows, len(actual))
    i, j = data.draw(st.integers(0, rows - 1)), data.draw(st.integers(0, len(actual) - 1))
    better = sim.copy()
    better[i, j] = data.draw(st.floats(sim[i, j], 1))
    assert align.alignment_score(better, rows, len(actual)) >= base - 1e-12


def test_one_missed_step_does_not_zero_the_rest():
    actual = list(range(1, 21))
    assert align.alignment_score(align.line_similarity(actual[1:], actual), 19, 20) == 0.95


@given(small_programs(), st.lists(st.integers(-5, 5), max_size=6), st.randoms())
@settings(max_examples=25, deadline=None)
def test_real_trace_scores_one_and_corruption_lowers(program, xs, rnd):
    call = f"f({xs!r})"
    built = {kind: tasks.build_task(program, call=call, question=kind) for kind in ("steps", "lines", "output")}
    for kind, task in built.items():
        assert isinstance(task, tasks.AlignmentTask), task
        perfect = score(program, [call], "Reasoning.\n" + task.answer, question=kind)
        assert perfect.reward == 1.0, (kind, perfect)
    steps = built["steps"].gold["steps"]
    if steps:
        broken = [dict(s) for s in steps]
        k = rnd.randrange(len(broken))
        broken[k] = {"line": broken[k]["line"] + 1000, "changes": {}}
        corrupted = score(program, [call], tasks.as_text({"steps": broken}), question="steps")
        assert 0.0 <= corrupted.reward < 1.0
        del broken[k]
        assert 0.0 <= score(program, [call], tasks.as_text({"steps": broken}), question="steps").reward < 1.0


# ---------------------------------------------------------------- building tasks


def test_build_task_for_main_style_programs_and_coderl_template():
    task = tasks.build_task(PROGRAM, stdin="4\n", seed=1)
    assert isinstance(task, tasks.AlignmentTask) and task.variables
    assert set(task.variables) <= {"n", "total", "i"}
    assert score(task.code, task.tests, task.answer).reward == 1.0
    again = tasks.build_task(PROGRAM, stdin="4\n", seed=1)
    assert again.variables == task.variables and again.prompt == task.prompt
    coderl = tasks.build_task(CODE, call="f(3)", template="coderl_plus")
    assert coderl.answer == '{"final_output":7,"variables":{"y":6}}'
    assert score(CODE, coderl.tests, coderl.answer, mode="coderl_plus").reward == 1.0


def test_build_task_skips_with_reasons():
    assert "did not run cleanly" in tasks.build_task("def f():\n    1/0", call="f()").reason
    assert "no variable" in tasks.build_task("def f(x):\n    return x", call="f(1)").reason
    for question in ("output", "steps", "lines"):  # the coderl_plus template asks CodeRL+'s final question
        coderl = tasks.build_task("def f(x):\n    return x", call="f(1)", question=question, template="coderl_plus")
        assert "no variable" in coderl.reason
        assert tasks.build_task("def f(x):\n    return x", call="f(1)", question=question).question == question
    assert "only" not in tasks.build_task("K = 5\ndef f(x):\n    return K", call="f(1)").reason


def test_interesting_variables_skip_constants_arguments_and_functions():
    code = "import math\ndef f(x, y):\n    LIMIT = 10\n    y = y + 1\n    z = math.sqrt(x)\n    g = len\n    return z\n"
    task = tasks.build_task(code, call="f(4, 1)", max_variables=10)
    assert task.variables == ["y", "z"]


# ---------------------------------------------------------------- every gold answer scores 1.0

LOOP = """
def f(xs):
    best = None
    seen = []
    for x in xs:
        if best is None or x > best:
            best = x
        seen.append(best)
    return best, seen
"""
PRINTER = """
import sys
words = sys.stdin.read().split()
count = {}
for w in words:
    count[w] = count.get(w, 0) + 1
print(sorted(count.items()))
"""
INPUTS = [
    (CODE, {"call": "f(3)"}),
    (LOOP, {"call": "f([3, 1, 4, 1, 5])"}),
    (PROGRAM, {"stdin": "21\n"}),
    (PRINTER, {"stdin": "a b a\nc\n"}),
]
ASKABLE = [name for name, q in rewards.QUESTIONS.items() if q.gold is not None]
ASKED = [(q, t) for t in tasks.TEMPLATES for q in ASKABLE if t != "cwm" or q in tasks.CWM_QUESTIONS]


def check_gold_scores_one(code, run_on, question, template):
    task = tasks.build_task(code, **run_on, question=question, template=template)
    assert isinstance(task, tasks.AlignmentTask), task
    s = score(**task.score_args, predicted_trace=task.answer)
    assert (s.status, s.reward) == ("ok", 1.0), (question, template, task.answer, s)
    if not task.probes:
        s = score(task.code, task.tests, task.answer, question=task.question, variables=task.variables, mode=task.mode)
        assert (s.status, s.reward) == ("ok", 1.0), (question, template, task.answer, s)
    return task


@pytest.mark.parametrize("question,template", ASKED)
@pytest.mark.parametrize("code,run_on", INPUTS)
def test_every_gold_answer_scores_one_with_its_own_fields(code, run_on, question, template):
    check_gold_scores_one(code, run_on, question, template)


def test_a_programs_output_is_what_it_printed():
    task = tasks.build_task(PROGRAM, stdin="21\n", kind="output")
    assert task.gold == "2870\n" and score(task.code, task.tests, task.answer, question="output").reward == 1.0
    coderl = tasks.build_task(PROGRAM, stdin="21\n", template="coderl_plus")
    assert coderl.gold["final_output"] == "2870\n"


@given(small_programs(), st.lists(st.integers(-5, 5), min_size=1, max_size=5), st.sampled_from(ASKABLE))
@settings(max_examples=12, deadline=None)
def test_gold_answers_of_generated_programs_score_one(program, xs, question):
    as_program = program + "\nprint(f([int(a) for a in input().split()]))\n"
    for code, run_on in ((program, {"call": f"f({xs!r})"}), (as_program, {"stdin": " ".join(map(str, xs))})):
        for template in tasks.TEMPLATES:
            if template != "cwm" or question in tasks.CWM_QUESTIONS:
                check_gold_scores_one(code, run_on, question, template)


def test_a_question_is_one_entry_in_the_registry(monkeypatch):
    def count_steps(answer, truth):
        real = len(questions.line_steps(truth.trace))
        return questions.Graded(float(answer == real), [questions.Detail("steps", float(answer == real))])

    monkeypatch.setitem(
        rewards.QUESTIONS,
        "count",
        questions.Question(
            "count", count_steps, lambda truth: len(questions.line_steps(truth.trace)), "How many lines run{what}?"
        ),
    )
    task = tasks.build_task(LOOP, call="f([2, 1])", question="count")
    executed = tasks.build_task(LOOP, call="f([2, 1])", question="lines").gold["lines"]
    assert task.gold == len(executed) and "How many lines run on `f([2, 1])`?" in task.prompt
    assert score(LOOP, ["f([2, 1])"], task.answer, question="count").reward == 1.0
    assert score(LOOP, ["f([2, 1])"], str(len(executed) - 1), question="count").reward == 0.0


# ---------------------------------------------------------------- parsing tests


def test_test_suites_forms_and_cases():
    suite = testcases.parse_tests(["assert f(3) == 7", "assert g(1, k=2)", "assert f(2) > 1"])
    assert suite.form == "asserts"
    assert [(c.call, c.function, c.expected) for c in suite.cases] == [
        ("f(3)", "f", "7"),
        ("g(1, k=2)", "g", None),
        ("f(2) > 1", None, None),
    ]
    assert testcases.parse_tests(["f(1)", "f( 2 )"]).cases[1].call == "f( 2 )"  # run as written
    stdio = testcases.parse_tests([{"stdin": "1", "stdout": "2"}])
    assert stdio.form == "stdio" and (stdio.cases[0].stdin, stdio.cases[0].stdout) == ("1", "2")
    check = testcases.parse_tests(
        {"check": "def check(candidate):\n    assert candidate(1, 2) == 3\n", "entry_point": "add"}
    )
    assert check.form == "check" and check.call(0) == "add(1, 2)" and check.entry_point == "add"
    holes = testcases.parse_tests(["assert f(??) == [1, (2, 'x')]"])
    assert holes.form == "input" and holes.cases[0].function == "f"
    assert holes.cases[0].expected_value() == [1, (2, "x")]
    assert testcases.parse_tests(["f(3)"], question="input").form == "input"


@pytest.mark.parametrize(
    "tests,message",
    [
        ([], "non-empty list"),
        (["f(3"], "not valid Python"),
        (["assert f(1) == 2", "f(1)"], "mix"),
        ({"check": "def check(c):\n    assert c(1) ==", "entry_point": "f"}, "check block is not valid Python"),
        ({"check": "def check(c): pass"}, "entry_point"),
    ],
)
def test_malformed_tests_are_invalid_tasks(tests, message):
    with pytest.raises(testcases.InvalidTask, match=message):
        testcases.parse_tests(tests)
    s = score(CODE, tests, "7")
    assert s.status == "invalid_task" and s.reward is None and message.split()[0] in s.message


def test_input_tests_need_an_equality_with_a_literal():
    assert score(CODE, ["assert f(??) != 7"], "3").status == "invalid_task"  # no expected value stated
    assert "not a literal" in score(CODE, ["assert f(??) == g(1)"], "3").message
    assert "out of range" in score(CODE, ["assert f(??) == 7"], "3", test_index=1).message


@given(st.lists(values, max_size=3), values)
@settings(max_examples=150)
def test_an_asserts_call_and_expected_value_parse_back(args, expected):
    call = f"f({', '.join(render(encode(a)) for a in args)})"
    case = testcases.parse_tests([f"assert {call} == {render(encode(expected))}"]).cases[0]
    assert case.function == "f" and case.call is not None
    assert same(case.expected_value(), expected)
    assert testcases.parse_tests([case.call]).cases[0].function == "f"
