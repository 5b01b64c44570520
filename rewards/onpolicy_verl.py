"""CodeRL+'s on-policy loop in verl (0.9): a dataset class and a reward function, each loaded by path.

    data.shuffle=False data.dataloader_num_workers=0 \\
    data.custom_cls.path=pkg://rewards.onpolicy_verl data.custom_cls.name=OnPolicyRLHFDataset \\
    +data.onpolicy.ratio=0.4 \\
    reward.custom_reward_function.path=pkg://rewards.onpolicy_verl \\
    reward.custom_reward_function.name=compute_score

- `OnPolicyRLHFDataset` is verl's `RLHFDataset` whose batches of `data.train_batch_size` (or
  `gen_batch_size`) prompts have int(ratio * B) places drawn from the buffer (`onpolicy.Mix`; until
  the buffer has tasks, dataset rows take them). verl's sequential sampler (`data.shuffle=False`;
  the dataset reshuffles its rows each pass) reads them in order; verl repeats each prompt
  `rollout.n` times after the fetch. An alignment row has verl's columns: data_source
  "execalign_onpolicy", the prompt as one user message, `reward_model.ground_truth` with the fields
  that score it (kind "trace", code, tests, question, variables, mode), `extra_info.origin`
  "onpolicy". Dataset rows get `extra_info.onpolicy_batch`, the batch they were drawn in.
  Options under `data.onpolicy`: ratio (0.4), seed, and the buffer's: buffer (its name), capacity,
  strategy, replace, min_size. The validation set (`data.val_files`) is left as it is.
- `compute_score` is `integrations.compute_score` (the same VERL_KEYS, plus `onpolicy`: 1.0 for a
  sample drawn from the buffer) whose RLVR runs trace their first test; the qualifying rollouts
  become tasks in the buffer. Options through `reward.custom_reward_function.reward_kwargs`:
  buffer (its name), the `onpolicy.Extractor` fields, and `tokenizer` (a path) for
  `max_prompt_tokens`. verl calls it once per sample, in its reward workers: dedup and
  max_per_prompt apply among the samples of one batch that one worker process scores.
- The buffer is a `RayBuffer` (verl runs on Ray): one named actor that the dataset (in the
  trainer's process) and every reward worker reach.

Lag: with `dataloader_num_workers=0` verl fetches batch t + 1 after the rewards of step t, so the
tasks of step t's rollouts are asked at step t + 1, as in CodeRL+'s recipe. verl 0.9 logs a
reward function's extra keys in validation metrics and rollout dumps (`trainer.rollout_data_dir`),
not in training metrics: split the alignment samples by `onpolicy` or by data_source there.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from functools import cache
from typing import Any

import torch
from verl.utils.dataset.rl_dataset import RLHFDataset

from .buffer import RayBuffer
from .integrations import _verl_result, make_item, run_samples, verl_fields
from .onpolicy import ORIGIN, Extractor, Mix, Rollout, Seen, extract, task_fields
from .tasks import AlignmentTask

DATA_SOURCE = "execalign_onpolicy"
BUFFER = "execalign_alignment_buffer"
_BUFFER_OPTIONS = ("capacity", "strategy", "replace", "min_size")
_log = logging.getLogger(__name__)


def _files(files: Any) -> list[str]:
    return [files] if isinstance(files, str) else [str(f) for f in files or []]


class OnPolicyRLHFDataset(RLHFDataset):  # type: ignore[misc]  # verl's class (untyped)
    """verl's RLHFDataset with the alignment share of each batch drawn from the buffer (see the
    module docstring)."""

    def __init__(self, data_files: Any, tokenizer: Any, config: Any, processor: Any = None, max_samples: int = -1):
        super().__init__(data_files, tokenizer, config, processor, max_samples)
        self.mix: Mix | None = None
        if _files(data_files) == _files(config.get("val_files")):
            return  # the validation set
        if config.get("shuffle", True):
            raise ValueError("OnPolicyRLHFDataset lays out each batch itself: set data.shuffle=False")
        options = dict(config.get("onpolicy") or {})
        batch = config.get("gen_batch_size") or config.get("train_batch_size")
        self.mix = Mix(len(self.dataframe), int(batch), float(options.get("ratio", 0.4)), int(options.get("seed", 0)))
        buffer_options = {k: options[k] for k in _BUFFER_OPTIONS if k in options}
        self.buffer = RayBuffer(str(options.get("buffer", BUFFER)), **buffer_options)
        self._template = list(super().__getitem__(0))
        self._drawn_batch = -1

    def __len__(self) -> int:
        return len(self.mix) if self.mix is not None else len(self.dataframe)

    def __getitem__(self, item: int) -> dict[str, Any]:
        if self.mix is None:
            row: dict[str, Any] = super().__getitem__(item)
            return row
        at, slot = self.mix.place(item)
        batch = self.mix.passes * self.mix.batches + item // self.mix.batch_prompts
        if slot is None:
            return self._dataset_row(at, batch)
        tasks = self.buffer.draw(self.mix.per_batch, at)
        if batch != self._drawn_batch:
            self._drawn_batch = batch
            _log.info("on-policy batch %d: %d alignment tasks; buffer %s", batch, len(tasks), self.buffer.stats())
        if slot < len(tasks):
            return self._task_row(tasks[slot])
        return self._dataset_row(self.mix.fallback(at, slot), batch)

    def _dataset_row(self, index: int, batch: int) -> dict[str, Any]:
        row: dict[str, Any] = super().__getitem__(index)
        row["extra_info"] = {**(row.get("extra_info") or {}), "onpolicy_batch": batch, "origin": "dataset"}
        return row

    def _task_row(self, task: AlignmentTask) -> dict[str, Any]:
        messages = [{"role": "user", "content": task.prompt}]
        extra_info = {"index": -1, "origin": ORIGIN, "onpolicy_step": task.metadata.get("step")}
        row: dict[str, Any] = dict.fromkeys(self._template)
        row.update(
            {
                "data_source": DATA_SOURCE,
                self.prompt_key: messages,
                "raw_prompt": messages,
                "ability": "code_execution",
                "reward_model": {"style": "rule", "ground_truth": json.dumps(task_fields(task))},
                "extra_info": extra_info,
                "dummy_tensor": torch.tensor([0], dtype=torch.uint8),
                "index": -1,
                "tools_kwargs": {},
                "interaction_kwargs": {},
            }
        )
        return row


_SEEN: OrderedDict[tuple[str, Any], Seen] = OrderedDict()  # this process's share of the last batches
_LOCK = threading.Lock()


@cache
def _buffer(name: str) -> RayBuffer:
    return RayBuffer(name)


@cache
def _tokenizer(path: str) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: Any,
    extra_info: dict[str, Any] | None = None,
    buffer: str = BUFFER,
    tokenizer: str | None = None,
    **options: Any,
) -> dict[str, float]:
    """verl's reward function (see the module docstring): `integrations.compute_score`, and the
    RLVR rollouts that qualify filed in the buffer as alignment tasks."""
    fields = verl_fields(ground_truth, extra_info)
    item = make_item(solution_str, fields)
    scored = run_samples([item], trace_tests=True)[0]
    if isinstance(item, dict) and "predicted_trace" not in item:
        chosen = {k: v for k, v in options.items() if k in Extractor.__dataclass_fields__}
        if tokenizer is not None:
            chosen["prompt_length"] = _tokenizer(tokenizer)
        info = extra_info if isinstance(extra_info, dict) else {}
        step = info.get("onpolicy_batch")
        group = str(info.get("index", "")) or json.dumps(ground_truth, default=str)
        rollout = Rollout(group, item["code"], item["tests"], scored)
        with _LOCK:  # verl calls this from its executor's threads
            seen = _SEEN.setdefault((buffer, step), Seen())
            while len(_SEEN) > 8:
                _SEEN.popitem(last=False)
            extraction = extract([rollout], Extractor(**chosen), step, seen)
        _buffer(buffer).add(extraction.tasks, extraction.skipped)
    result = _verl_result(scored.score)
    result["onpolicy"] = float(data_source == DATA_SOURCE)
    return result
