"""CodeRL+'s on-policy loop in a real TRL GRPOTrainer (CPU, tiny random model, tokenizer built here).

The tokenizer has, besides single characters, one token per candidate program (and one for a
correct answer to an alignment task), and generation may only emit those: a random model then
writes runnable code, some of it wrong, which is what the loop feeds on. Everything else is the
real thing: TRL samples, repeats and batches the prompts, calls the reward function, trains, and
logs; the failed rollouts of step t are traced in the runs that score them, become alignment tasks,
and come back as prompts of later steps. Needs torch and trl (CI's integrations step).
"""

import pytest

torch = pytest.importorskip("torch", reason="torch not installed (CI installs it in its integrations step)")
trl = pytest.importorskip("trl", reason="trl not installed (CI installs it in its integrations step)")

from datasets import Dataset  # noqa: E402

from rewards.buffer import AlignmentBuffer  # noqa: E402
from rewards.onpolicy import Extractor  # noqa: E402
from rewards.onpolicy_trl import OnPolicyDataset, OnPolicyTRLReward  # noqa: E402
from rewards.tasks import build_task  # noqa: E402
from tests.test_trl_trainer import tiny_model_and_tokenizer  # noqa: E402

SUM = "def f(xs):\n    total = 0\n    for x in xs:\n        total += x\n    return total\n"
PROGRAMS = [
    SUM,
    SUM.replace("total += x", "total = x"),  # f([1, 2, 3]) == 3
    SUM.replace("total = 0", "total = 1").replace("+=", "*="),  # 6, but f([]) == 1
    SUM.replace("total += x", "total -= x"),  # -6
    "def f(xs):\n    return xs[10]\n",  # raises
]
TESTS = ["assert f([1, 2, 3]) == 6", "assert f([]) == 0"]


def model_and_tokenizer():
    model, tokenizer = tiny_model_and_tokenizer()
    answer = build_task(PROGRAMS[1], call="f([1, 2, 3])", template="coderl_plus").answer
    tokenizer.add_tokens([*PROGRAMS, answer])
    model.resize_token_embeddings(len(tokenizer))
    model.config.n_positions = 512
    return model, tokenizer, [tokenizer.convert_tokens_to_ids(t) for t in [*PROGRAMS, answer]]


def test_failed_rollouts_of_step_t_come_back_as_prompts_of_later_steps(tmp_path, pool, monkeypatch):
    monkeypatch.setattr("sandbox.default_pool", lambda: pool)
    model, tokenizer, allowed = model_and_tokenizer()
    rows = [{"prompt": f"Write f, which sums a list ({i}): ", "kind": "rlvr", "tests": TESTS} for i in range(6)]
    config = trl.GRPOConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=8,
        num_generations=2,
        max_completion_length=1,  # one token: one program (or the answer)
        generation_kwargs={"suppress_tokens": [i for i in range(len(tokenizer)) if i not in allowed]},
        shuffle_dataset=False,
        max_steps=6,
        logging_steps=1,
        report_to="none",
        use_cpu=True,
        save_strategy="no",
        learning_rate=1e-3,
        bf16=False,
        seed=0,
    )
    buffer = AlignmentBuffer()
    seen = []  # (step, row) for every sample the trainer scored

    def record(prompts, completions, trainer_state, **columns):
        for i, completion in enumerate(completions):
            row = {key: value[i] for key, value in columns.items() if isinstance(value, list)}
            seen.append((trainer_state.global_step, completion, row))
        return [None] * len(completions)

    dataset = OnPolicyDataset(Dataset.from_list(rows), buffer, config, ratio=0.5)
    assert dataset.mix.per_batch == 2  # 8 samples = 4 prompts x 2 generations: 2 prompts from the buffer
    trainer = trl.GRPOTrainer(
        model=model,
        processing_class=tokenizer,
        reward_funcs=[OnPolicyTRLReward(buffer, Extractor(max_prompt_tokens=400, prompt_length=tokenizer)), record],
        train_dataset=dataset.iterable(),
        args=config,
    )
    trainer.train()
    assert trainer.state.global_step == 6

    failed = {}  # (step, program) of the model's own failed, cleanly running rollouts
    for step, completion, row in seen:
        if row["origin"] == "dataset" and completion in PROGRAMS[1:4]:
            failed.setdefault(completion, []).append(step)
    drawn = [(step, row) for step, _, row in seen if row["origin"] == "onpolicy"]
    assert drawn, "no alignment prompt came back"
    lags = set()
    for step, row in drawn:
        assert row["kind"] == "trace" and row["mode"] == "coderl_plus" and row["tests"] == ["f([1, 2, 3])"]
        made_at = row["onpolicy_step"]
        assert made_at < step and made_at in failed[row["code"]]  # the model's own failed rollout, earlier
        lags.add(step - made_at)
    by_step = {}
    for step, _, row in seen:
        by_step.setdefault(step, []).append(row["origin"])
    for step, origins in by_step.items():  # every batch: 2 of 4 prompts (x 2 generations), once the buffer fills
        assert origins.count("onpolicy") in (0, 4), (step, origins)
    assert min(lags) == 2  # accelerate's loader fetches one batch ahead (see rewards.onpolicy_trl)
    logged = [entry for entry in trainer.state.log_history if "execalign/onpolicy_reward_mean" in entry]
    assert logged and all(0.0 <= e["execalign/onpolicy_reward_mean"] <= 1.0 for e in logged)
    sizes = [e["execalign/buffer_size"] for e in trainer.state.log_history if "execalign/buffer_size" in e]
    assert sizes[-1] > 0 and any("execalign/buffer_skipped_passed" in e for e in trainer.state.log_history)
    print(f"lags {sorted(lags)}; buffer {buffer.stats()}")
