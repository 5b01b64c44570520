"""OpenRLHF custom reward: pass this file as `--reward.remote_url examples/openrlhf_reward_func.py`.

Each label is a JSON object with the sample's fields, e.g.
{"kind": "trace", "code": "def f(x): ...", "tests": ["f(3)"], "question": "final"} or
{"kind": "rlvr", "tests": ["assert f(3) == 7"]}. A trace label names its question (never "auto").
Masked samples (infra_error, invalid_task) get reward 0.0 and extra_logs["masked"] = 1.0: drop them.
Or run `execalign serve --port 8000` and pass `--reward.remote_url http://127.0.0.1:8000/`.
"""

from rewards.integrations import openrlhf_reward


def reward_func(queries, prompts, labels):
    return openrlhf_reward(queries, prompts, labels)
