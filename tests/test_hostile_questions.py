"""Hostile answers to the new questions (issue 9): CWM-format steps answers, probes (state, next,
coverage). No answer costs the judge more than bounded work, and none scores above the truth.

Costs are checked by how the CPU time grows between two sizes of the same input, never by a
wall-clock limit.
"""

import pytest

from rewards import cwm, parse
from tests.test_hostile_answers import growth

CODE = "x = 1\ny = 2\n"
FRAME = '<|line_sep|>{"a": ".."}<|action_sep|>x = 1\n<|frame_sep|>'


def test_unchanged_values_in_a_long_cwm_answer_are_read_in_linear_time():
    """Every frame's ".." looked back over every earlier frame: 8000 frames took 28 s."""
    assert growth(lambda n: cwm.read(FRAME * n, CODE), 1000, 4000) < 10  # 4x the frames: ~4x the time (was 16x)


def test_a_cwm_answer_is_read_up_to_the_answer_cap():
    huge = FRAME * (4 * parse.MAX_CHARS // len(FRAME))
    assert cwm.read(huge, CODE).frames <= parse.MAX_CHARS // len(FRAME) + 1


def test_unchanged_values_resolve_as_cwmdbg_resolves_them():
    text = "".join(
        f"<|{event}_sep|>{head}<|action_sep|>{source}\n<|frame_sep|>"
        for event, head, source in [
            ("line", '{"a": "1"}', "x = 1"),
            ("line", '{"a": ".."}', "y = 2"),  # 1, shown earlier in this call
            ("call", '{"b": "5"}', "def g(b):"),
            ("line", '{"a": ".."}', "x = 1"),  # not shown since the call: stays ".."
            ("line", '{"b": ".."}', "y = 2"),  # 5, shown in the call frame itself
        ]
    )
    steps = cwm.read(text, CODE).steps
    assert [line for line, _ in steps] == [1, 2, 1, 2]
    assert steps[0][1] == {} and steps[2][1] == {"b": 5}  # b: 5 shown in the call frame; a: ".." not since


@pytest.mark.parametrize("depth", [100, 600, 5000])
def test_json_answers_nest_no_deeper_than_literals(depth):
    """A JSON array nested deeper than a literal may be was read, and could not even be pickled."""
    with pytest.raises(parse.ParseError):
        parse.read_value("[" * depth + "true" + "]" * depth)
    assert parse.read_value("[" * 99 + "true" + "]" * 99) is not None


# ---------------------------------------------------------------- probes: hedges never beat the truth

HELPER_RUNS = {"f([1])": {"next": 12, "covered": False}, "f([3])": {"next": 10, "covered": True}}
HEDGES = {
    "next": ["10 or 12", "12 or 10", "[10, 12]", "{10, 12}", "line 10, line 12, line 13", "10 12 -1"],
    "coverage": ["yes or no", "no or yes", "[True, False]", "it runs, or not", "maybe"],
}


@pytest.mark.parametrize("question", HEDGES)
def test_a_hedged_probe_answer_is_wrong_on_one_of_two_runs(pool, monkeypatch, question):
    """A hedge names both answers: it may be read as one of them, never as right whatever the run did."""
    from rewards import score
    from tests.strategies import HELPER

    monkeypatch.setattr("sandbox.default_pool", lambda: pool)
    probe = {"question": question, "line": 9} if question == "next" else {"question": question, "line": 10}
    for call, truth in HELPER_RUNS.items():
        honest = str(truth["next"]) if question == "next" else ("yes" if truth["covered"] else "no")
        assert score(HELPER, [call], honest, probes=[probe]).reward == 1.0
    for hedge in HEDGES[question]:
        rewards = [score(HELPER, [call], hedge, probes=[probe]).reward for call in HELPER_RUNS]
        assert min(rewards) == 0.0, (hedge, rewards)


def test_every_line_as_the_covered_set_scores_below_the_truth(pool, monkeypatch):
    from rewards import score
    from tests.strategies import HELPER

    monkeypatch.setattr("sandbox.default_pool", lambda: pool)
    probe = {"question": "coverage", "line": None}
    every = str(list(range(1, len(HELPER.splitlines()) + 1)))
    assert score(HELPER, ["f([1])"], "[7, 8, 9, 12, 13]", probes=[probe]).reward == 1.0
    assert score(HELPER, ["f([1])"], every, probes=[probe]).reward < 0.7
    padded = score(HELPER, ["f([1])"], "[7, 8, 9, 12, 13, 13, 13, 7, 8]", probes=[probe])
    assert padded.reward == 1.0  # repeats are one line each: padding adds nothing
