"""`rewards.diff`: the reward's own alignment of a prediction with the run, as rows to show."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import tracer
from rewards import align
from rewards.diff import comparison, prediction_diff
from rewards.questions import QUESTIONS, Truth
from rewards.tasks import build_task

CODE = (
    "def f(xs):\n    total = 0\n    for x in xs:\n        total += x\n        if x > 3:\n"
    "            total -= 1\n    return total\n"
)

similarities = st.integers(0, 12).flatmap(
    lambda rows: st.integers(0, 12).flatmap(
        lambda cols: arrays(np.float64, (rows, cols), elements=st.sampled_from([0.0, 0.25, 1 / 3, 0.5, 1.0]))
    )
)


@settings(max_examples=300, deadline=None)
@given(similarities)
def test_matching_is_a_best_alignment(similarity):
    """Its pairs increase in both indices and their similarities sum to what the score divides."""
    pairs = align.matching(similarity)
    rows, cols = similarity.shape
    assert all(a[0] < b[0] and a[1] < b[1] for a, b in itertools.pairwise(pairs))
    assert all(similarity[i, j] > 0 for i, j in pairs)
    total = sum(similarity[i, j] for i, j in pairs)
    score = align.alignment_score(similarity, rows, cols)
    assert (total / max(rows, cols) if rows or cols else 1.0) == pytest.approx(score, abs=1e-12)


def test_matching_of_nothing():
    assert align.matching(np.zeros((0, 3))) == [] and align.matching(np.zeros((2, 2))) == []


def steps(*pairs):
    return {"steps": [{"line": line, "changes": changes} for line, changes in pairs]}


def test_rows_show_matches_the_divergence_wrong_values_missing_and_extra_steps(pool):
    prediction = steps(
        (2, {"total": 0}),
        (3, {"x": 3}),
        (4, {"total": 3}),
        (5, {}),
        (3, {"x": 5}),
        (4, {"total": 9}),  # wrong: 8
        (5, {}),
        (7, {}),  # the run does `total -= 1` and the loop's end first: two missing steps
        (9, {"y": 1}),  # extra
    )
    diff = prediction_diff(CODE, ["f([3, 5])"], repr(prediction), pool=pool)
    assert (diff.score.status, diff.score.question, diff.score.reward) == ("ok", "steps", pytest.approx(0.7))
    rows = diff.rows
    assert [r.status for r in rows] == ["match"] * 5 + ["wrong", "match", "missing", "missing", "match", "extra"]
    assert diff.first_divergence == 5
    wrong = rows[5]
    assert [(v.name, v.predicted, v.actual, v.ok) for v in wrong.values] == [("total", "9", "8", False)]
    assert diff.trace.steps[wrong.step].line == 4 and wrong.line == 4 and wrong.predicted == 5
    assert [(v.name, v.predicted, v.actual) for v in rows[7].values] == [("total", "", "7")]
    assert rows[-1].step == -1 and [(v.name, v.predicted, v.ok) for v in rows[-1].values] == [("y", "1", False)]
    real = [r for r in rows if r.step >= 0]
    assert [diff.trace.steps[r.step].line for r in real] == [2, 3, 4, 5, 3, 4, 5, 6, 3, 7]
    # the reward is the rows' similarities over the longer length
    assert sum(r.similarity for r in rows) / max(len(real), 9) == pytest.approx(diff.score.reward)
    data = comparison(diff)
    assert data["rows"][5]["status"] == "wrong" and data["reward"] == diff.score.reward
    # CodeExecutor's metrics, i-th predicted step against i-th real step: steps 0-4 and 6 are right
    # (6 of 9 predicted, of 10 real); names: total=0, x=3, total=3, x=5 (4 of 6 predicted, of 6 real)
    line_f1 = 2 * (6 / 9) * (6 / 10) / (6 / 9 + 6 / 10)
    assert data["components"] == pytest.approx(
        {
            "prediction": 0.7,
            "line_precision": 6 / 9,
            "line_recall": 6 / 10,
            "line_f1": line_f1,
            "identifier_precision": 4 / 6,
            "identifier_recall": 4 / 6,
            "identifier_f1": 4 / 6,
        }
    )


def test_the_gold_answer_has_no_divergence(pool):
    task = build_task(CODE, call="f([1, 4, 2])", question="steps", seed=0)
    diff = prediction_diff(task.code, task.tests, task.answer, question="steps", pool=pool)
    assert diff.score.reward == 1.0 and diff.first_divergence == -1
    assert {r.status for r in diff.rows} == {"match"}


def test_lines_answers_are_aligned_too(pool):
    diff = prediction_diff(CODE, ["f([5])"], "{'lines': [2, 3, 4, 6, 3, 7]}", pool=pool)
    assert [r.status for r in diff.rows] == ["match"] * 3 + ["missing"] + ["match"] * 3
    assert [r.line for r in diff.rows] == [2, 3, 4, 5, 6, 3, 7]
    assert diff.score.reward == pytest.approx(6 / 7) == sum(r.similarity for r in diff.rows) / 7


def test_other_questions_show_their_details_and_bad_answers_their_status(pool):
    final = prediction_diff(CODE, ["f([5])"], "{'total': 4, 'x': 5}", pool=pool)
    assert final.score.question == "final" and final.rows == [] and final.trace is not None
    assert [(d.item, d.score) for d in final.score.details] == [("total", 1.0), ("x", 1.0)]
    broken = prediction_diff(CODE, ["f([5])"], "{'steps': [", pool=pool)
    assert broken.score.status == "parse_error" and broken.rows == [] and broken.trace is not None
    invalid = prediction_diff(CODE, ["f([5]"], "1", pool=pool)
    assert invalid.score.status == "invalid_task" and invalid.trace is None
    cwm = tracer.cwm.to_cwm(tracer.trace(CODE, call="f([5])"), CODE).completion  # a steps answer in CWM's format
    shown = prediction_diff(CODE, ["f([5])"], cwm, pool=pool)
    assert (shown.score.question, shown.score.reward, shown.rows, shown.trace is not None) == ("steps", 1.0, [], True)


def test_steps_scores_are_unchanged_by_the_exposed_alignment(pool):
    """score_steps is align_steps' score: the refactor kept the reward."""
    from rewards.jobs import trace_job
    from rewards.score import DEFAULT_LIMITS
    from rewards.testcases import parse_tests

    suite = parse_tests(["f([3, 5])"], "steps")
    run = pool.run(trace_job(CODE, suite, 0, DEFAULT_LIMITS, {}))
    truth = Truth(result=run, code=CODE)
    answer = [{"line": 4, "changes": {"total": 3}}, {"line": 4, "changes": {"total": 8, "x": 5}}]
    graded = QUESTIONS["steps"].score(answer, truth)
    # by hand: 10 real line steps; (line 4, total=3) matches the first; the second has 1 of its 2 names right
    assert graded.score == pytest.approx(1.5 / 10)
    assert [d.score for d in graded.details] == [1.0, 0.5]
