"""execalign's rewards: a model's prediction of what code does, scored against what it does.

    import rewards
    code = "def f(x):\\n    y = x * 2\\n    return y + 1"
    rewards.score(code, ["f(3)"], '{"y": 6}').reward                  # 1.0: final values
    rewards.score(code, ["f(3)"], "7", task="output").reward          # 1.0
    rewards.score(code, ["assert f(3) == 7"]).reward                   # 1.0: tests' pass rate
    rewards.score(code, ["f(3)"], 'Step by step ...\\n{"final_output": 7, "variables": {"y": 6}}').reward  # 1.0
    rewards.score_batch([{"code": code, "tests": ["f(3)"], "predicted_trace": "7"}] * 16)  # one sandbox run

- `score(code, tests, predicted_trace=None, *, task="auto", ...) -> Score`
- `score_batch(items, ...) -> list[Score]` (order kept, one run per distinct code and test)
- `Score`: reward (None when masked), status, task, components, details, prediction
- `tasks.build_task(code, call=...)`: an alignment task (prompt, gold answer) from code and an input
- `parse.parse_answer(text)`: the answer found in free text
See `rewards.score` for the tasks, rewards and statuses, `rewards.compare` for
value equality, `rewards.align` for the trajectory alignment.
"""

from . import tasks
from .compare import DEFAULT_RTOL, typed_equal
from .parse import ParseError, parse_answer
from .score import DEFAULT_WEIGHTS, Detail, Item, Score, score, score_batch
from .truth import CACHE, InvalidTask

__all__ = [
    "CACHE",
    "DEFAULT_RTOL",
    "DEFAULT_WEIGHTS",
    "Detail",
    "InvalidTask",
    "Item",
    "ParseError",
    "Score",
    "parse_answer",
    "score",
    "score_batch",
    "tasks",
    "typed_equal",
]
