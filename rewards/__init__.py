"""execalign's rewards: a model's prediction of what code does, scored against what it does.

    import rewards
    code = "def f(x):\\n    y = x * 2\\n    return y + 1"
    rewards.score(code, ["f(3)"], '{"y": 6}').reward                  # 1.0: final values
    rewards.score(code, ["f(3)"], "7", question="output").reward      # 1.0
    rewards.score(code, ["assert f(3) == 7"]).reward                   # 1.0: tests' pass rate
    rewards.score(code, ["f(3)"], 'Step by step ...\\n{"final_output": 7, "variables": {"y": 6}}').reward  # 1.0
    rewards.score_batch([{"code": code, "tests": ["f(3)"], "predicted_trace": "7"}] * 16)  # one sandbox run

- `score(code, tests, predicted_trace=None, *, question="auto", ...) -> Score` (`task=`: the old name)
- `score_batch(items, ...) -> list[Score]` (order kept, one run per distinct code and test)
- `Score`: reward (None when masked), status, question, components, details, prediction
- `QUESTIONS`: the questions an answer may predict, each with its scorer and gold answer
- `Probe`: one white-box question (state, next, coverage) about a point of the run
- `tasks.build_task(code, call=...)`: an alignment task (prompt, gold answer, `score_args`) from code and an input
- `dataset.build_rows(...)`: alignment tasks as rows for TRL and verl (`execalign tasks build`)
- `parse.parse_answer(text)`: the answer found in free text

Modules: `score` (scoring and batches), `scorers` (the processes that score large batches),
`questions` (the questions' scorers, gold answers and the helpers they share), `probes` (the
white-box questions: what they ask, their gold answers, reading answers to them), `selection`
(choosing probes), `cwm` (CWM-format traces read as steps answers), `testcases` (a dataset's
tests parsed into a `TestSuite`), `jobs` (the sandbox runs behind a score), `cache` (the shared
result cache), `parse`, `compare` (value equality), `align` (trajectory alignment), `tasks`,
`dataset` (rows for trainers), `onpolicy` (CodeRL+'s alignment tasks from a batch's failed
rollouts) and `buffer` (where they wait), `integrations` (trainer adapters), `onpolicy_trl` and
`onpolicy_verl` (the on-policy loop in TRL and verl), `server`, `ray_backend`, `cli`,
`dataset_cli`.
"""

from . import tasks
from .cache import CACHE, ResultCache
from .compare import DEFAULT_RTOL, typed_equal
from .parse import ParseError, parse_answer
from .probes import Probe
from .questions import QUESTIONS, Detail, Question
from .score import DEFAULT_WEIGHTS, Item, Score, score, score_batch
from .testcases import InvalidTask, TestCase, TestSuite, parse_tests

__all__ = [
    "CACHE",
    "DEFAULT_RTOL",
    "DEFAULT_WEIGHTS",
    "QUESTIONS",
    "Detail",
    "InvalidTask",
    "Item",
    "ParseError",
    "Probe",
    "Question",
    "ResultCache",
    "Score",
    "TestCase",
    "TestSuite",
    "parse_answer",
    "parse_tests",
    "score",
    "score_batch",
    "tasks",
    "typed_equal",
]
