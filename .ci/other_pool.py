"""Another execalign pool on this host while the test suite runs (CI): the suite must not depend on being alone.

    python .ci/other_pool.py STOP_FILE [MAX_SECONDS]

Runs batches of small jobs on a pool of its own until STOP_FILE exists (or
MAX_SECONDS pass, or the process that started it is gone, so it never outlives
a CI run), then exits 0 if every job came back as expected, else 1 with what it saw.
"""

import os
import sys
import time

import sandbox
from sandbox import Job, Limits

JOBS = [
    Job(mode="call", code="import os\nx = os.getuid()", call="x", limits=Limits(wall_time=60)),
    Job(mode="asserts", code="def f(x):\n    return x + 1", tests=["assert f(1) == 2"], limits=Limits(wall_time=60)),
]


def main(stop: str, max_seconds: float = 3600) -> int:
    deadline = time.monotonic() + max_seconds
    bad: list[str] = []
    batches = starved = 0
    parent = os.getppid()
    with sandbox.Pool(2) as pool:
        while not os.path.exists(stop) and time.monotonic() < deadline and os.getppid() == parent:
            first, second = pool.map(JOBS * 4)[:2]
            batches += 1
            time.sleep(1.0)  # a light neighbour: CI's 2 cores are the suite's
            if first.status == "starved" or second.status == "starved":
                starved += 1  # the machine was too busy (CI's own suite): not a verdict, not a failure
                continue
            if first.status != "ok" or (pool.uids and sandbox.to_python(first.value) not in pool.uids):
                bad.append(f"call: {first.status} {first.message}")
            if second.status != "passed":
                bad.append(f"asserts: {second.status} {second.message}")
    print(
        f"other pool: {batches} batches ({starved} starved), {len(bad)} unexpected results",
        *bad[:10],
        sep="\n  ",
        file=sys.stderr,
    )
    return 1 if bad or not batches else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 3600))
