"""Batch scoring spread over a Ray cluster (optional extra `ray`).

    import ray, rewards.ray_backend as rb
    ray.init(address="auto")
    scorer = rb.RayScorer()                          # an actor per node, each using all of its node's cores
    scores = scorer.score_batch(items)               # same items and order as rewards.score_batch

By default there is one actor per live node (`actors=` sets another number;
they are spread over the nodes). An actor owns a sandbox pool with a slot per
core of its node (`workers_per_actor` to set it), scores up to
`chunks_per_actor` chunks at once on it (its threads share the pool, the result
cache and the scoring processes of large chunks), so all of the node's cores
work. Items about the same code and tests go to the same chunk (the actor's
cache runs them once). A chunk whose actor dies (a node lost mid-batch) is re-run on another
actor, `retries` times, and the dead actor is replaced; a chunk that outlives
`timeout` seconds is cancelled. What still fails comes back as infra_error
Scores (reward None: masked), so no sample is ever lost or silently zero.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from typing import Any

import msgspec

from .score import Item, Score

_SCORES = msgspec.msgpack.Decoder(list[Score])


def _actor_class(ray: Any) -> Any:
    @ray.remote(max_restarts=0, max_task_retries=0)
    class ScoringActor:
        """Owns a sandbox pool on its node (a slot per core unless told) and scores chunks of items, several at once."""

        def __init__(self, workers: int | None):
            import sandbox

            self.pool = sandbox.Pool(workers)

        def score(self, items: list[dict[str, Any]], options: dict[str, Any]) -> bytes:
            from rewards import score_batch

            return msgspec.msgpack.encode(score_batch(items, pool=self.pool, **options))

        def node(self) -> str:
            return str(ray.get_runtime_context().get_node_id())

    return ScoringActor


class RayScorer:
    def __init__(
        self,
        actors: int | None = None,
        workers_per_actor: int | None = None,
        num_cpus: float = 1.0,
        timeout: float = 300.0,
        retries: int = 2,
        chunk_size: int = 64,
        chunks_per_actor: int = 16,
    ):
        import ray

        self.ray = ray
        if actors is None:
            actors = max(1, sum(1 for node in ray.nodes() if node.get("Alive")))
        self.actor_class = _actor_class(ray).options(
            num_cpus=num_cpus, scheduling_strategy="SPREAD", max_concurrency=chunks_per_actor
        )
        self.workers = workers_per_actor
        self.timeout = timeout
        self.retries = retries
        self.chunk_size = chunk_size
        self.actors = [self._new_actor() for _ in range(actors)]

    def _new_actor(self) -> Any:
        return self.actor_class.remote(self.workers)

    def nodes(self) -> list[str]:
        nodes: list[str] = self.ray.get([a.node.remote() for a in self.actors])
        return nodes

    def _chunks(self, items: list[dict[str, Any]]) -> list[list[int]]:
        """Indices grouped so that items about the same code and tests share a chunk."""
        groups: dict[bytes, list[int]] = {}
        for i, item in enumerate(items):
            key = hashlib.sha256(msgspec.msgpack.encode([item.get("code"), item.get("tests")])).digest()
            groups.setdefault(key, []).append(i)
        chunks: list[list[int]] = [[]]
        for indices in groups.values():
            if chunks[-1] and len(chunks[-1]) + len(indices) > self.chunk_size:
                chunks.append([])
            chunks[-1].extend(indices)
        return [c for c in chunks if c]

    def score_batch(self, items: Iterable[Any], **options: Any) -> list[Score]:
        ray = self.ray
        plain = [msgspec.to_builtins(i) if isinstance(i, Item) else dict(i) for i in items]
        results: list[Score | None] = [None] * len(plain)
        pending: dict[Any, tuple[list[int], int, int, float]] = {}  # ref -> (indices, actor, attempt, started)

        def submit(indices: list[int], attempt: int, turn: int) -> None:
            actor_index = turn % len(self.actors)
            ref = self.actors[actor_index].score.remote([plain[i] for i in indices], options)
            pending[ref] = (indices, actor_index, attempt, time.monotonic())

        for turn, indices in enumerate(self._chunks(plain)):
            submit(indices, 0, turn)
        turn = len(pending)
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
            for ref in ready:
                indices, actor_index, attempt, _ = pending.pop(ref)
                try:
                    for i, s in zip(indices, _SCORES.decode(ray.get(ref))):
                        results[i] = s
                except (
                    ray.exceptions.RayActorError,
                    ray.exceptions.WorkerCrashedError,
                    ray.exceptions.ObjectLostError,
                    ray.exceptions.NodeDiedError,
                ) as error:
                    self.actors[actor_index] = self._new_actor()  # replace the lost actor
                    if attempt < self.retries:
                        turn += 1
                        submit(indices, attempt + 1, turn)
                    else:
                        self._fail(results, indices, f"lost on the cluster: {type(error).__name__}")
                except ray.exceptions.RayError as error:
                    self._fail(results, indices, f"ray error: {type(error).__name__}: {error}")
            now = time.monotonic()
            for ref, (indices, _, _, started) in list(pending.items()):
                if now - started > self.timeout:
                    ray.cancel(ref, force=True)
                    pending.pop(ref)
                    self._fail(results, indices, f"no answer from the cluster in {self.timeout:g} s")
        return [s for s in results if s is not None]

    @staticmethod
    def _fail(results: list[Score | None], indices: list[int], message: str) -> None:
        for i in indices:
            results[i] = Score(reward=None, status="infra_error", message=message)

    def close(self) -> None:
        for actor in self.actors:
            self.ray.kill(actor)
        self.actors = []
