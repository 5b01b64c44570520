"""The buffer of on-policy alignment tasks, between the reward call that extracts them and the batches
that ask them (`rewards.onpolicy`).

`AlignmentBuffer(capacity, strategy, replace)` keeps the newest `capacity` tasks (oldest evicted).
`add(tasks, skipped)` files one extraction; `draw(n, key)` gives the n tasks of batch `key`:
- strategy "recent" (CodeRL+): from the latest extraction, i.e. the tasks added since the draw of
  the previous batch (while none were, the ones before); "uniform": from the whole buffer;
- `replace=True` (CodeRL+) draws with replacement; `replace=False` gives n distinct tasks where
  there are that many ("recent" tops up with the newest older tasks, as CodeRL+'s code does);
- the same key always gives the same tasks (the draws of the last `remembered` keys are kept), so
  the G copies of a GRPO prompt, and every process that reads batch `key`, agree. Keys increase
  batch after batch; a draw with a new key closes the current extraction.
Nothing is drawn while the buffer holds fewer than `min_size` tasks: the trainer glue fills those
places from the dataset. `stats()` (size, added, evicted, drawn, skipped by reason) is what the glue
logs.

Where it can be used: one `AlignmentBuffer` serves the threads of one process (a lock guards every
method, and none blocks for long, so an asyncio loop may call it too); it pickles as a reference
that only its own process resolves (to itself: `datasets` hashes what it is given), since a copy in
another process would silently diverge. Across processes (Ray actors, verl's reward
workers, the ranks of a multi-GPU run) use `RayBuffer`: a named Ray actor holds the one buffer,
every process that names it reaches the same one, and it pickles as its name.
"""

from __future__ import annotations

import os
import random
import threading
import weakref
from collections import Counter, OrderedDict, deque
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import msgspec

from .tasks import AlignmentTask

Strategy = Literal["recent", "uniform"]
STRATEGIES = ("recent", "uniform")


class BufferStats(msgspec.Struct, kw_only=True):
    """The buffer's state for the logs."""

    size: int
    capacity: int
    added: int  # tasks added, ever
    evicted: int  # tasks dropped for room
    drawn: int  # tasks handed to batches (each copy counted)
    batches: int  # batch keys drawn for
    recent: int  # tasks of the latest extraction still held
    skipped: dict[str, int] = {}  # rollouts not taken, by reason (`onpolicy.SKIP_REASONS`), ever


class AlignmentBuffer:
    """A bounded, thread-safe buffer of alignment tasks (see the module docstring)."""

    def __init__(
        self,
        capacity: int = 4096,
        strategy: Strategy = "recent",
        replace: bool = True,
        min_size: int = 1,
        seed: int = 0,
        remembered: int = 256,
    ):
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {strategy!r}: choose {' or '.join(STRATEGIES)}")
        if capacity < 1:
            raise ValueError("the buffer needs room for at least one task")
        self.capacity, self.strategy, self.replace = capacity, strategy, replace
        self.min_size, self.seed, self.remembered = min_size, seed, remembered
        self._lock = threading.Lock()
        self._tasks: deque[tuple[int, AlignmentTask]] = deque()  # (extraction number, task), oldest first
        self._open = 0  # the extraction that add() files into
        self._open_added = 0  # tasks added to it
        self._recent = -1  # the latest closed extraction that has tasks
        self._draws: OrderedDict[int, list[AlignmentTask]] = OrderedDict()
        self._top_key = -1
        self._added = self._evicted = self._drawn = 0
        self._skipped: Counter[str] = Counter()
        self._token = f"{os.getpid()}:{id(self)}:{random.random()}"

    def __reduce__(self) -> Any:
        """Pickles as a reference that only this process can resolve (to this very buffer)."""
        _LOCAL[self._token] = self
        return (_local_buffer, (self._token,))

    def __len__(self) -> int:
        with self._lock:
            return len(self._tasks)

    def size(self) -> int:
        return len(self)

    def add(self, tasks: Sequence[AlignmentTask], skipped: Mapping[str, int] | None = None) -> None:
        """File tasks extracted from a batch (and count the rollouts skipped, by reason)."""
        with self._lock:
            for task in tasks:
                self._tasks.append((self._open, task))
                if len(self._tasks) > self.capacity:
                    self._tasks.popleft()
                    self._evicted += 1
            self._added += len(tasks)
            self._open_added += len(tasks)
            self._skipped.update(skipped or {})

    def draw(self, n: int, key: int) -> list[AlignmentTask]:
        """The tasks of batch `key` (at most n; none while the buffer is under `min_size`)."""
        with self._lock:
            if key in self._draws:
                return list(self._draws[key][:n])
            if key > self._top_key:
                self._top_key = key
                if self._open_added:
                    self._recent, self._open, self._open_added = self._open, self._open + 1, 0
            drawn = self._pick(n, random.Random(f"{self.seed}:{key}")) if len(self._tasks) >= self.min_size else []
            self._draws[key] = drawn
            while len(self._draws) > self.remembered:
                self._draws.popitem(last=False)
            self._drawn += len(drawn)
            return list(drawn)

    def _pick(self, n: int, rng: random.Random) -> list[AlignmentTask]:
        everything = [task for _, task in self._tasks]
        if self.strategy == "uniform":
            pool = everything
        else:
            pool = [task for number, task in self._tasks if number == self._recent] or [
                task for number, task in self._tasks if number < self._open
            ]
        if not pool:
            return []
        if self.replace:
            return rng.choices(pool, k=n)
        picked = rng.sample(pool, min(n, len(pool)))
        if len(picked) < n and self.strategy == "recent":  # top up with the newest older tasks
            chosen = {id(task) for task in picked}
            picked += [task for task in reversed(everything) if id(task) not in chosen][: n - len(picked)]
        return picked

    def stats(self) -> BufferStats:
        with self._lock:
            return BufferStats(
                size=len(self._tasks),
                capacity=self.capacity,
                added=self._added,
                evicted=self._evicted,
                drawn=self._drawn,
                batches=len(self._draws),
                recent=sum(number == self._recent for number, _ in self._tasks),
                skipped=dict(self._skipped),
            )


_LOCAL: weakref.WeakValueDictionary[str, AlignmentBuffer] = weakref.WeakValueDictionary()


def _local_buffer(token: str) -> AlignmentBuffer:
    buffer = _LOCAL.get(token)
    if buffer is None:
        raise TypeError("an AlignmentBuffer serves one process; share one between processes with RayBuffer")
    return buffer


class RayBuffer:
    """The same buffer for many processes: a named Ray actor holds one `AlignmentBuffer`, created by
    the first process that names it (with `options`) and reached by every other one. It pickles as
    its name, so reward functions that hold it can go to Ray workers. Needs `ray` and `ray.init()`."""

    def __init__(self, name: str = "execalign_alignment_buffer", namespace: str | None = None, **options: Any):
        import ray

        self.name, self.namespace, self.options = name, namespace, options
        actor = ray.remote(AlignmentBuffer).options(name=name, namespace=namespace, get_if_exists=True)
        self._actor = actor.remote(**options)

    def __reduce__(self) -> Any:
        return (RayBuffer, (self.name, self.namespace), None, None, None)

    def __setstate__(self, state: Any) -> None:  # pragma: no cover - __reduce__ passes no state
        pass

    def __len__(self) -> int:
        return self.size()

    def _call(self, method: str, *args: Any) -> Any:
        import ray

        return ray.get(getattr(self._actor, method).remote(*args))

    def size(self) -> int:
        return int(self._call("size"))

    def add(self, tasks: Sequence[AlignmentTask], skipped: Mapping[str, int] | None = None) -> None:
        self._call("add", list(tasks), dict(skipped or {}))

    def draw(self, n: int, key: int) -> list[AlignmentTask]:
        return list(self._call("draw", n, key))

    def stats(self) -> BufferStats:
        stats: BufferStats = self._call("stats")
        return stats


Buffer = AlignmentBuffer | RayBuffer
