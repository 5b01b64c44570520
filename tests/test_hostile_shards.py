"""Hostile jobs against a shard (issue 9): jobs of one batch share a driver process and a zygote.

Nothing a job does (floods, junk on every descriptor, closing its pipes and lingering, forking,
memory, a message the decoder cannot take) may make another job of its batch come back masked
or wrong, take the driver or the zygote down, or turn its own failure into a masked status.
Every job here has tight limits and every process it starts ends with it (no signal to -1).
"""

import pytest

import sandbox
from sandbox import Job, Limits
from tests.sandbox_util import FAST

HONEST = Job(mode="call", code="import time\ndef f(x):\n    time.sleep(0.2)\n    return x * 2", call="f(21)")

HOSTILE = {
    "floods stdout and stderr": "import os\nwhile True:\n    os.write(1, b'x' * 65536)\n    os.write(2, b'y' * 65536)",
    "junk on every descriptor": (
        "import os\nfor fd in range(64):\n    try:\n        os.write(fd, b'\\xff' * 100000)\n    except OSError:\n"
        "        pass\nimport time\ntime.sleep(60)"
    ),
    "a header claiming a huge message": "import os\nos.write(4, b'\\x7f\\xff\\xff\\xff')\nimport time\ntime.sleep(60)",
    "a message nested past the decoder": (
        "import os, struct\nbody = b'\\x91' * 200000 + b'\\xc0'\nos.write(4, struct.pack('>I', len(body)) + body)\n"
        "import time\ntime.sleep(60)"
    ),
    "closes its pipes and lingers": "import os, time\nos.closerange(0, 1024)\ntime.sleep(60)",
    "forks and lingers with the pipes": "import os, time\nif os.fork() == 0:\n    time.sleep(60)\nx = 1",
    "a bounded fork bomb": "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass",
    "eats memory": "x = []\nwhile True:\n    x.append(bytearray(16 << 20))",
    "many threads": (
        "import threading, time\nts = [threading.Thread(target=time.sleep, args=(60,)) for _ in range(200)]\n"
        "for t in ts:\n    t.start()"
    ),
}

BUSY = {"a bounded fork bomb"}


@pytest.fixture(scope="module")
def shard_pool():
    with sandbox.Pool(2, shards=1) as pool:  # every job of a batch on one driver and one zygote
        yield pool


@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_job_harms_no_other_job_of_its_shard(shard_pool, name):
    driver, zygote = shard_pool.shards[0].process.pid, shard_pool.shards[0].zygote_pid
    hostile = Job(mode="call", code=HOSTILE[name], call="1", limits=FAST)
    jobs = [HONEST, hostile, HONEST, hostile, HONEST, HONEST]
    results = shard_pool.map(jobs)
    for job, result in zip(jobs, results):
        if job is HONEST:
            assert result.status == "ok" and sandbox.to_python(result.value) == 42, result.message
        elif name in BUSY:  # its group short of CPU on a busy host is the machine's doing (test_hostile_kernel)
            assert result.status in ("timeout", "starved", "error"), result.message
        else:  # its own failure (or success), never one that would be masked
            assert result.status not in sandbox.NOT_VERDICTS, result.message
    assert shard_pool.shards[0].process.pid == driver and shard_pool.shards[0].zygote_pid == zygote


SELF_STARVE = """
import os, signal, time
signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # its children are reaped as they end: their CPU time leaves no trace
end = time.monotonic() + {wall} * 0.85
for _ in range(10):
    if os.fork() == 0:
        while time.monotonic() < end:
            pass
        os._exit(0)
while True:
    pass
"""


def test_a_job_cannot_starve_itself_into_a_masked_timeout(shard_pool):
    if not shard_pool.layers.cpu_cgroup:
        pytest.skip("starved is only told apart with a cpu cgroup per slot")
    wall = 3
    job = Job(mode="call", code=SELF_STARVE.format(wall=wall), call="1", limits=Limits(wall_time=wall, processes=16))
    result = shard_pool.run(job)
    assert result.status == "timeout", result.message
