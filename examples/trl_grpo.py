"""TRL GRPO with execalign rewards: `python examples/trl_grpo.py MODEL` (any causal LM TRL can load).

The dataset mixes the two tasks by a `kind` column: "trace" rows ask the model to
predict an execution of `code` on `tests` (their `question` column says what is asked);
"rlvr" rows ask for code that passes `tests`.
"""

import sys

from datasets import Dataset
from trl import GRPOConfig, GRPOTrainer

from rewards.integrations import AsyncTRLReward

CODE = "def f(x):\n    y = x * 2\n    return y + 1"
rows = [
    {
        "prompt": f"```python\n{CODE}\n```\nAfter f(3), what is y? Answer with {{'y': value}}.",
        "kind": "trace",
        "code": CODE,
        "tests": ["f(3)"],
        "question": "final",  # the row names its question: the answer never chooses it
        "variables": ["y"],
    },
    {
        "prompt": "Write f(x) returning 2*x+1 in a ```python block.",
        "kind": "rlvr",
        "code": "",
        "tests": ["assert f(3) == 7", "assert f(0) == 1"],
    },
] * 8

if __name__ == "__main__":
    trainer = GRPOTrainer(
        model=sys.argv[1],
        reward_funcs=[AsyncTRLReward()],
        train_dataset=Dataset.from_list(rows),
        args=GRPOConfig(output_dir="grpo-execalign", max_steps=10, logging_steps=1),
    )
    trainer.train()
