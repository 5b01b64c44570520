"""verl: point the trainer at execalign's compute_score.

    reward.custom_reward_function.path=pkg://rewards.integrations
    reward.custom_reward_function.name=compute_score          # or compute_score_async

Each sample's `reward_model.ground_truth` is a dict (or JSON string) with its fields:
{"kind": "trace", "code": ..., "tests": [...], "question": ...} (optional: "test_index", "variables",
"mode") or {"kind": "rlvr", "tests": [...]}. Another kind, or a trace without its question, is masked
(invalid_task, logged with why).
Every call returns the same keys (rewards.integrations.VERL_KEYS); `masked` = 1.0 marks
samples to drop (infra_error, invalid_task), whose score is 0.0.
This script calls it the way verl's reward loop does, to show the shape.
"""

from rewards.integrations import compute_score

if __name__ == "__main__":
    print(
        compute_score(
            data_source="execalign",
            solution_str="{'y': 6}",
            ground_truth={
                "kind": "trace",
                "code": "def f(x):\n    y = x * 2\n    return y + 1",
                "tests": ["f(3)"],
                "question": "final",
            },
            extra_info={},
        )
    )
