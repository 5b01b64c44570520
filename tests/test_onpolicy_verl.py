"""CodeRL+'s on-policy loop with verl 0.9's own classes, on a local Ray instance.

Real: verl loads `OnPolicyRLHFDataset` by path (`create_rl_dataset`, `data.custom_cls`), makes its
sampler (`create_rl_sampler`) and the StatefulDataLoader with verl's `collate_fn` as RayPPOTrainer
does; the reward function is loaded by path (`get_custom_reward_fn`, with `reward_kwargs`) and
called by verl's `NaiveRewardManager.run_single` on `DataProto` samples, inside a Ray actor (another
process, as verl's reward workers are); the buffer is a `RayBuffer`. Not run: the generation (the
responses are programs chosen here; verl's rollout needs vLLM or SGLang) and the PPO update.

Needs verl (installed without its dependencies), ray, torch and the few light packages its dataset
and reward modules import (CI's integrations step installs them).
"""

import asyncio
import itertools
import json

import pytest

ray = pytest.importorskip("ray", reason="ray not installed (CI installs it in its integrations step)")
pytest.importorskip("verl", reason="verl not installed (CI installs it in its integrations step)")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from datasets import Dataset  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402
from torchdata.stateful_dataloader import StatefulDataLoader  # noqa: E402
from verl.trainer.ppo.utils import create_rl_dataset, create_rl_sampler  # noqa: E402
from verl.utils.dataset.rl_dataset import collate_fn  # noqa: E402

from rewards.buffer import RayBuffer  # noqa: E402
from rewards.integrations import VERL_KEYS  # noqa: E402
from tests.test_trl_trainer import tiny_model_and_tokenizer  # noqa: E402

SUM = "def f(xs):\n    total = 0\n    for x in xs:\n        total += x\n    return total\n"
PROGRAMS = [SUM, SUM.replace("total += x", "total = x"), SUM.replace("total += x", "total -= x")]
TESTS = ["assert f([1, 2, 3]) == 6", "assert f([]) == 0"]
BUFFER = "test_onpolicy_verl"


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, namespace="execalign-tests")
    yield
    ray.shutdown()


@ray.remote
class RewardWorker:
    """Where verl scores: a process of its own, with verl's reward manager and the function it loads by path."""

    def __init__(self, tokenizer):
        import sandbox

        sandbox.default_pool = lambda: self.pool  # a small pool of its own
        self.pool = sandbox.Pool(1)
        config = OmegaConf.create(
            {
                "reward": {
                    "custom_reward_function": {
                        "path": "pkg://rewards.onpolicy_verl",
                        "name": "compute_score",
                        "reward_kwargs": {"buffer": BUFFER, "max_per_prompt": 2},
                    }
                }
            }
        )
        from verl.trainer.ppo.reward import get_custom_reward_fn

        self.config, self.tokenizer, self.compute_score = config, tokenizer, get_custom_reward_fn(config)

    def score(self, samples):
        from verl import DataProto
        from verl.experimental.reward_loop.reward_manager.naive import NaiveRewardManager

        async def run():
            manager = NaiveRewardManager(self.config, self.tokenizer, self.compute_score)
            return [await manager.run_single(DataProto.from_single_dict(sample)) for sample in samples]

        return asyncio.run(run())

    def close(self):
        self.pool.close()


def verl_sample(tokenizer, row, response):
    """One sample as verl's reward manager reads it: prompt and response ids, mask, the row's fields."""
    ids = tokenizer(response, add_special_tokens=False)["input_ids"]
    prompt = torch.zeros(1, 2, dtype=torch.long)
    return {
        "prompts": prompt,
        "responses": torch.tensor([ids]),
        "attention_mask": torch.ones(1, 2 + len(ids), dtype=torch.long),
        **{key: objects(row[key]) for key in ("data_source", "reward_model", "extra_info")},
    }


def objects(value):
    array = np.empty(1, dtype=object)
    array[0] = value
    return array


def test_verl_dataset_sampler_and_reward_run_the_loop(tmp_path, local_ray):
    _, tokenizer = tiny_model_and_tokenizer()
    tokenizer.chat_template = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    rows = [
        {
            "data_source": "sums",
            "prompt": [{"role": "user", "content": f"Write f, which sums a list ({i})."}],
            "ability": "code",
            "reward_model": {"style": "rule", "ground_truth": json.dumps({"kind": "rlvr", "tests": TESTS})},
            "extra_info": {"index": i},
        }
        for i in range(4)
    ]
    Dataset.from_list(rows).to_parquet(str(tmp_path / "train.parquet"))
    config = OmegaConf.create(
        {
            "train_files": [str(tmp_path / "train.parquet")],
            "val_files": [str(tmp_path / "val.parquet")],
            "prompt_key": "prompt",
            "max_prompt_length": 4096,
            "filter_overlong_prompts": False,
            "train_batch_size": 4,
            "shuffle": False,
            "dataloader_num_workers": 0,
            "cache_dir": str(tmp_path / "cache"),
            "custom_cls": {"path": "pkg://rewards.onpolicy_verl", "name": "OnPolicyRLHFDataset"},
            "onpolicy": {"ratio": 0.5, "buffer": BUFFER, "replace": False},
        }
    )
    dataset = create_rl_dataset(config.train_files, config, tokenizer, None)
    assert type(dataset).__name__ == "OnPolicyRLHFDataset" and len(dataset) == 8  # 2 batches of 2 + 2 per pass
    loader = StatefulDataLoader(
        dataset, batch_size=4, num_workers=0, drop_last=True, collate_fn=collate_fn,
        sampler=create_rl_sampler(config, dataset),
    )  # fmt: skip
    worker = RewardWorker.remote(tokenizer)
    n = 2  # rollout.n: verl repeats each prompt after the fetch
    made = {}  # batch -> failed programs of that batch
    seen = []
    for batch_index, batch in enumerate(itertools.chain(loader, loader)):  # two passes of two batches
        samples, programs = [], []
        for i in range(4):
            row = {key: batch[key][i] for key in ("data_source", "reward_model", "extra_info")}
            seen.append((batch_index, row))
            for j in range(n):
                program = PROGRAMS[(i + j + batch_index) % 3]
                answer = "I think it returns 3." if row["data_source"] == "execalign_onpolicy" else program
                samples.append(verl_sample(tokenizer, row, f"```python\n{answer}```"))
                programs.append(program if row["data_source"] != "execalign_onpolicy" else None)
        results = ray.get(worker.score.remote(samples))
        made[batch_index] = {p for p, r in zip(programs, results) if p is not None and r["reward_score"] < 1.0}
        for sample, result in zip(samples, results):
            info = result["reward_extra_info"]
            assert set(info) == {*VERL_KEYS, "onpolicy"}
            assert info["onpolicy"] == float(sample["data_source"][0] == "execalign_onpolicy")
    ray.get(worker.close.remote())

    assert all(row["data_source"] == "sums" for b, row in seen if b == 0)
    for b in (1, 2, 3):  # from the second batch on: 2 of 4 prompts are alignment tasks
        drawn = [row for batch_index, row in seen if batch_index == b and row["data_source"] == "execalign_onpolicy"]
        assert len(drawn) == 2
        for row in drawn:
            fields = json.loads(row["reward_model"]["ground_truth"])
            assert fields["kind"] == "trace" and fields["tests"] == ["f([1, 2, 3])"]
            assert row["extra_info"]["onpolicy_step"] == b - 1  # one step behind
            assert fields["code"] in made[b - 1]  # a failed rollout of the previous batch
    stats = RayBuffer(BUFFER).stats()
    assert stats.added > 0 and stats.skipped.get("passed", 0) > 0


@ray.remote
def draw_elsewhere(buffer, key):
    return [task.prompt for task in buffer.draw(3, key)]


def test_ray_buffer_is_one_buffer_for_every_process(local_ray):
    from rewards.tasks import AlignmentTask

    buffer = RayBuffer("test_one_buffer", strategy="uniform")
    tasks = [AlignmentTask(prompt=p, answer="", gold=None, question="final", code="", tests=[]) for p in "abcdef"]
    ray.get(add_elsewhere.remote(buffer, tasks))  # pickled as its name, reached from another process
    drawn = ray.get([draw_elsewhere.remote(buffer, 7) for _ in range(3)])
    assert drawn[0] == drawn[1] == drawn[2] == [t.prompt for t in buffer.draw(3, 7)]
    assert buffer.stats().added == 6 and len(buffer) == 6


@ray.remote
def add_elsewhere(buffer, tasks):
    buffer.add(tasks, {"passed": 2})
