"""CodeRL+'s on-policy loop in TRL's GRPOTrainer: two pieces, no trainer subclass.

    buffer = AlignmentBuffer()
    args = GRPOConfig(..., shuffle_dataset=False)          # the dataset below lays out each batch itself
    trainer = GRPOTrainer(
        model,
        reward_funcs=[OnPolicyTRLReward(buffer)],          # scores, and feeds the buffer from the same runs
        train_dataset=OnPolicyDataset(dataset, buffer, args, ratio=0.4).iterable(),
        args=args,
    )

- `OnPolicyTRLReward` is `TRLReward` (both kinds of sample) whose RLVR runs also trace their first
  test (`score.run_batch(trace_tests=True)`: no extra sandbox run); the failed rollouts that
  qualify become alignment tasks (`onpolicy.extract`) filed in the buffer as one extraction. It
  logs, through TRL's `log_metric`, the rewards of the samples drawn from the buffer as their own
  metric (`<name>/onpolicy_reward_mean`), their share of the batch, and the buffer's state: size,
  tasks added and rollouts skipped by reason in this batch (`<name>/buffer_*`).
- `OnPolicyDataset(...).iterable()` is the train dataset (a `datasets.IterableDataset`: TRL 1.16
  takes no other kind): each generation batch of B = generation_batch_size / num_generations
  prompts has int(ratio * B) places drawn from the buffer (`onpolicy.Mix`; TRL repeats each row
  num_generations times, and the buffer gives a batch key's draw to every reader), the rest rows
  of the dataset, reshuffled each pass. Until the buffer has tasks,
  those places take dataset rows. Every row has the same columns: the dataset's, plus those of an
  alignment task (`kind`, `code`, `tests`, `question`, `variables`, `mode`, `probes`, `test_index`) and
  `origin` ("dataset" or "onpolicy") and `onpolicy_step` (the step whose rollouts made the task).

Lag: TRL's loader (accelerate) fetches one batch ahead, so the tasks made from step t's rollouts
are drawn into the batch of step t + 2 (CodeRL+'s verl recipe reads them at t + 1).
TRL reads an IterableDataset in the trainer's process (it sets dataloader_num_workers=0), so an
`AlignmentBuffer` serves one process's run; the processes of a multi-GPU run would share a
`RayBuffer` (the same key gives every rank the same draw; not tested here: no GPUs).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

from .buffer import Buffer
from .integrations import AsyncTRLReward, TRLReward, run_samples
from .onpolicy import ORIGIN, SKIP_REASONS, Extraction, Extractor, Mix, extract, rollouts_of, task_fields
from .score import Score
from .tasks import AlignmentTask

TASK_COLUMNS = (
    "kind",
    "code",
    "tests",
    "question",
    "variables",
    "mode",
    "probes",
    "test_index",
    "origin",
    "onpolicy_step",
)
_log = logging.getLogger(__name__)


def _group(prompt: Any) -> str:
    return prompt if isinstance(prompt, str) else json.dumps(prompt, sort_keys=True, default=str)


class OnPolicyTRLReward(TRLReward):
    """A TRL reward function that also fills the buffer (see the module docstring). Sync; see
    `AsyncOnPolicyTRLReward` for TRL's async path."""

    def __init__(
        self,
        buffer: Buffer,
        extractor: Extractor = Extractor(),
        columns: dict[str, str] | None = None,
        component: str = "reward",
        weights: dict[str, float] | None = None,
        name: str = "execalign",
    ):
        super().__init__(columns, component, weights, name)
        self.buffer, self.extractor = buffer, extractor

    def _score(self, prompts: list[Any], completions: list[Any], kwargs: dict[str, Any]) -> list[Score]:
        """Score the batch, extract its tasks, file them."""
        items = self._items(completions, kwargs)
        scored = run_samples(items, self.weights, trace_tests=True)
        step = getattr(kwargs.get("trainer_state"), "global_step", None)
        groups = [_group(p) for p in prompts] if len(prompts) == len(items) else [str(i) for i in range(len(items))]
        extraction = extract(rollouts_of(items, scored, groups), self.extractor, step)
        self.buffer.add(extraction.tasks, extraction.skipped)
        scores = [s.score for s in scored]
        self._log_onpolicy(scores, extraction, kwargs)
        return scores

    def _log_onpolicy(self, scores: list[Score], extraction: Extraction, kwargs: dict[str, Any]) -> None:
        origins = kwargs.get("origin")
        drawn = [s for s, o in zip(scores, origins or []) if o == ORIGIN]
        stats = self.buffer.stats()
        metrics = {
            "onpolicy_share": len(drawn) / max(len(scores), 1),
            "buffer_size": float(stats.size),
            "buffer_added": float(len(extraction.tasks)),
            **{f"buffer_skipped_{reason}": float(extraction.skipped[reason]) for reason in SKIP_REASONS},
        }
        rewards = [s.reward for s in drawn if s.reward is not None]
        if rewards:
            metrics["onpolicy_reward_mean"] = sum(rewards) / len(rewards)
        log_metric = kwargs.get("log_metric")
        if callable(log_metric):
            for key, value in metrics.items():
                log_metric(f"{self.__name__}/{key}", value)
        _log.info(
            "on-policy: %d tasks added, %d rollouts skipped %s; buffer %d/%d",
            len(extraction.tasks),
            sum(extraction.skipped.values()),
            dict(extraction.skipped),
            stats.size,
            stats.capacity,
        )


class AsyncOnPolicyTRLReward(OnPolicyTRLReward, AsyncTRLReward):
    """The same, with `async def __call__` (the scoring runs in a worker thread)."""


class OnPolicyDataset:
    """The rows of GRPOTrainer's train dataset, pass after pass, with the alignment share of each
    generation batch drawn from the buffer (see the module docstring). `args` is the GRPOConfig.
    `iterable()` is the `datasets.IterableDataset` to give the trainer; iterating the object
    itself gives one pass."""

    def __init__(self, dataset: Any, buffer: Buffer, args: Any, ratio: float = 0.4, seed: int | None = None):
        if getattr(args, "shuffle_dataset", True):
            raise ValueError("OnPolicyDataset lays out each batch itself: set GRPOConfig(shuffle_dataset=False)")
        self.dataset, self.buffer = dataset, buffer
        prompts_per_batch = args.generation_batch_size // args.num_generations
        self.mix = Mix(len(dataset), prompts_per_batch, ratio, args.seed if seed is None else seed)
        first = dict(dataset[0])
        self.columns = list(dict.fromkeys([*first, *TASK_COLUMNS]))
        self.chat = isinstance(first.get("prompt"), list)

    def iterable(self) -> Any:
        from datasets import IterableDataset

        return IterableDataset.from_generator(self.__iter__)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for index in range(len(self.mix)):
            yield self.row(index)

    def row(self, index: int) -> dict[str, Any]:
        """The index-th row of a pass (the batch of B prompts `index // B`)."""
        at, slot = self.mix.place(index)
        if slot is None:
            return self._dataset_row(at)
        tasks = self.buffer.draw(self.mix.per_batch, at)
        if slot < len(tasks):
            return self._task_row(tasks[slot])
        return self._dataset_row(self.mix.fallback(at, slot))

    def _dataset_row(self, index: int) -> dict[str, Any]:
        row: dict[str, Any] = dict.fromkeys(self.columns)
        row.update(self.dataset[index], origin="dataset", onpolicy_step=-1)
        return row

    def _task_row(self, task: AlignmentTask) -> dict[str, Any]:
        row: dict[str, Any] = dict.fromkeys(self.columns)
        prompt: Any = [{"role": "user", "content": task.prompt}] if self.chat else task.prompt
        step = task.metadata.get("step")
        row.update(task_fields(task), prompt=prompt, origin=ORIGIN, onpolicy_step=step if step is not None else -1)
        return row
