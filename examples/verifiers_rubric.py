"""verifiers: use `rewards.integrations.verifiers_reward` as a rubric reward function (async).

    import verifiers as vf
    rubric = vf.Rubric(funcs=[verifiers_reward])

Fields come from the sample's `info` (or its `answer` as a JSON object). Masked samples score 0.0.
"""

import asyncio

from rewards.integrations import verifiers_reward

if __name__ == "__main__":
    print(
        asyncio.run(
            verifiers_reward(
                completion="{'y': 6}",
                info={
                    "kind": "trace",
                    "code": "def f(x):\n    y = x * 2\n    return y + 1",
                    "tests": ["f(3)"],
                    "question": "final",
                },
            )
        )
    )
