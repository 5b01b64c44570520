"""Hostile answers against the scoring processes (`rewards.scorers`, issue 9): nothing an answer or a
returned value holds may crash or stall a scoring process, or mask the other answers of its chunk.

Each batch here is scored both in this process and in scoring processes: the Scores must be the same,
and the attacking answer is the answer's own failure (never infra_error, never an exception here).
"""

import pytest

from rewards import score_batch

CODE = "def f(x):\n    y = x * 2\n    return y + 1"


@pytest.fixture(autouse=True)
def on_test_pool(pool, monkeypatch):
    monkeypatch.setattr("sandbox.default_pool", lambda: pool)


def _deep(depth: int) -> str:
    return "[" * depth + "1" + "]" * depth


HOSTILE_ANSWERS = {
    "a deeply nested output": (_deep(600), "output"),
    "a deeply nested final value": ("{'y': " + _deep(600) + "}", "final"),
    "a deeply nested step": ("[{'line': 2, 'changes': {'y': " + _deep(600) + "}}]", "steps"),
    "a deeply nested dict": ("{'a': " * 600 + "1" + "}" * 600, "output"),
}


@pytest.mark.parametrize("name", HOSTILE_ANSWERS)
def test_an_answer_never_masks_its_chunk_in_a_scoring_process(name):
    answer, question = HOSTILE_ANSWERS[name]
    honest = {"code": CODE, "tests": ["f(3)"], "predicted_trace": "7", "question": "output"}
    hostile = {"code": CODE, "tests": ["f(3)"], "predicted_trace": answer, "question": question}
    items = [honest, hostile, honest, hostile]
    there = score_batch(items, processes=1)
    here = score_batch(items, processes=0)
    assert [s.status for s in there] == [s.status for s in here]
    assert [s.reward for s in there] == [s.reward for s in here]
    assert there[0].status == "ok" and there[0].reward == 1.0
    assert there[1].status not in ("infra_error", "invalid_task", "starved") and there[1].reward == 0.0
