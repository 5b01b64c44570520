"""A real TRL GRPOTrainer (CPU, tiny random model, local tokenizer) trained with execalign rewards.

Needs torch and trl (the CI's integrations step installs them: see .ci/run);
skipped, saying so, where they are not installed.
"""

import pytest

torch = pytest.importorskip("torch", reason="torch not installed (CI installs it in its integrations step)")
trl = pytest.importorskip("trl", reason="trl not installed (CI installs it in its integrations step)")

from datasets import Dataset  # noqa: E402
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers  # noqa: E402
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast  # noqa: E402

from rewards.integrations import AsyncTRLReward, TRLReward  # noqa: E402

CODE = "def f(x):\n    y = x * 2\n    return y + 1"


def tiny_model_and_tokenizer():
    chars = sorted(set(" \n\t" + "".join(chr(c) for c in range(33, 127))))
    vocab = {tok: i for i, tok in enumerate(["<pad>", "<eos>", "<unk>", *chars])}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex("[\\s\\S]"), behavior="isolated")
    backend.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>"
    )
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=len(vocab),
        n_positions=512,
        n_embd=32,
        n_layer=1,
        n_head=2,
        bos_token_id=1,
        eos_token_id=1,
        pad_token_id=0,
    )
    return GPT2LMHeadModel(config), tokenizer


def test_grpo_trainer_runs_two_steps_with_execalign_rewards(tmp_path, pool, monkeypatch):
    monkeypatch.setattr("sandbox.default_pool", lambda: pool)
    model, tokenizer = tiny_model_and_tokenizer()
    rows = [
        {"prompt": "y after f(3)? ", "kind": "trace", "code": CODE, "tests": ["f(3)"], "question": "final"},
        {"prompt": "write f: ", "kind": "rlvr", "code": "", "tests": ["assert f(3) == 7"], "question": None},
    ] * 4
    config = trl.GRPOConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=8,
        max_steps=2,
        logging_steps=1,
        report_to="none",
        use_cpu=True,
        save_strategy="no",
        learning_rate=1e-3,
        bf16=False,
    )
    rewards = [TRLReward(name="execalign_sync"), AsyncTRLReward(name="execalign_async")]
    trainer = trl.GRPOTrainer(
        model=model,
        processing_class=tokenizer,
        reward_funcs=rewards,
        train_dataset=Dataset.from_list(rows),
        args=config,
    )
    trainer.train()
    logged = [entry for entry in trainer.state.log_history if "rewards/execalign_sync/mean" in entry]
    assert len(logged) >= 2 and trainer.state.global_step == 2
    assert all(0.0 <= entry["rewards/execalign_sync/mean"] <= 1.0 for entry in logged)
    assert any("execalign_async/parse_error_rate" in entry for entry in trainer.state.log_history)
