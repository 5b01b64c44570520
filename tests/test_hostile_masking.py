"""Failures disguised as infrastructure errors (issue 9, item 8): no job can produce `infra_error`.

A masked sample escapes its negative reward, so each way a job could make the
judge report `infra_error` is tried here and must come back as the job's own
failure. The last tests prove each path that still produces `infra_error` is
ours or the machine's. Safe where the sandbox is broken: the programs end by
themselves, write only in their own directory and to their own descriptors.
"""

import os
import signal
import socket
import threading
import time

import psutil
import pytest

import sandbox
from sandbox import Job, Limits, isolation, wire
from sandbox.driver import Driver
from sandbox.execution import Execution
from tests.sandbox_util import FAST, job_processes, nothing_left_behind, quick, run  # noqa: F401 (a fixture)

pytestmark = pytest.mark.usefixtures("nothing_left_behind")
JOB_FAILURES = ("error", "failed", "timeout", "killed", "memory_exceeded", "output_exceeded")


def _deep_message(levels: int, nonce: str = "b'0' * 16") -> str:
    """Code that writes to the result channel a message nested `levels` deep."""
    return (
        "import os\n"
        f"body = b'\\x83\\xa4type\\xa8returned\\xa5nonce\\xc4\\x10' + {nonce} + b'\\xa5value'"
        f" + b'\\x82\\xa1t\\xa4list\\xa5items\\x91' * {levels} + b'\\x81\\xa1t\\xa4none'\n"
        "os.write(4, len(body).to_bytes(4, 'big') + body)\n"
    )


@pytest.mark.parametrize(
    "code",
    [
        _deep_message(200_000),  # past the decoder's recursion limit
        _deep_message(900),  # decodes, but deeper than the judge could render or compare
        "import os\nbody = b'\\x91' * 1_000_000\nos.write(4, len(body).to_bytes(4, 'big') + body)\n",
        "import os\nos.write(4, (1000).to_bytes(4, 'big') + b'\\xdd\\xff\\xff\\xff\\xff' * 200)\n",
    ],
    ids=["deep", "just decodable", "nested arrays", "huge array header"],
)
def test_a_message_too_deep_or_malformed_is_the_jobs_error(pool, code):
    for mode, extra in (("call", {"call": "1"}), ("asserts", {"tests": ["assert 1 == 1"]})):
        r = run(pool, code, mode=mode, **extra)
        assert r.status == "error" and r.tampered, (mode, r.status, r.message)


def test_a_deep_value_with_the_real_nonce_is_refused(pool):
    from tests.test_hostile_verdicts import FORGE

    code = FORGE + _deep_message(900, nonce="(nonces() or [b'0' * 16])[0]") + "os._exit(0)\n"
    r = run(pool, code, call="1")
    assert r.status == "error" and r.tampered


@pytest.mark.parametrize(
    ("after", "status"),
    [
        ("time.sleep(60)", "timeout"),  # lingers without its pipes: killed at its deadline
        ("end = time.monotonic() + 60\nwhile time.monotonic() < end:\n    pass", ("timeout", "starved")),
        ("os._exit(0)", "error"),  # no result
        ("if os.fork() == 0:\n    time.sleep(60)\n    os._exit(0)\nos._exit(0)", "error"),
    ],
    ids=["sleeps", "spins", "exits", "leaves a child"],
)
def test_closing_its_own_pipes_is_the_jobs_failure(pool, after, status):
    code = "import os, time\nfor fd in range(5):\n    os.close(fd)\n" + after + "\n"
    for mode, extra in (("call", {"call": "1"}), ("asserts", {"tests": ["assert f(1) == 1"]})):
        r = run(pool, code, mode=mode, **extra)
        assert r.status in (status if isinstance(status, tuple) else (status,)), (mode, r.status, r.message)


JUNK = "import os\nfor fd in range(1024):\n    try:\n        os.write(fd, {})\n    except OSError:\n        pass\n"


@pytest.mark.parametrize(
    "code",
    [JUNK.format("os.urandom(4096)"), JUNK.format("b'\\xff' * 65536"), JUNK.format("(2 ** 31).to_bytes(4, 'big')")],
    ids=["random", "0xff", "huge length"],
)
def test_junk_on_every_inherited_descriptor_is_the_jobs_error(pool, code):
    for mode, extra in (("call", {"call": "1"}), ("asserts", {"tests": ["assert 1 == 1"]})):
        r = run(pool, code, mode=mode, limits=Limits(wall_time=30, cpu_time=10), **extra)
        assert r.status == "error" and r.tampered, (mode, r.status, r.message)
        assert r.wall_time < 20  # killed at once, not at the wall time


FILES = (
    "import os\nfor i in range(20000):\n    open(f'f{i}', 'w').close()\n"
    "os.mkdir('d')\nfor i in range(2000):\n    open(f'd/g{i}', 'w').close()\n"
)
CHAIN = (  # 5000 directories deep, a file at each level: built at the top (a deep path costs each access)
    "import os\nos.mkdir('d')\nfor i in range(5000):\n    os.mkdir('t')\n"
    "    os.close(os.open('t/x', os.O_WRONLY | os.O_CREAT))\n    os.rename('d', 't/d')\n    os.rename('t', 'd')\n"
)


@pytest.mark.parametrize("code", [FILES, CHAIN, CHAIN + "os.chmod('d', 0)\nos.chmod('.', 0o500)\n"])
def test_what_a_job_leaves_on_disk_is_removed_without_stalling_anyone(pool, code):
    jobs = [Job(mode="call", code=code, call="1", limits=Limits(wall_time=60, cpu_time=30))] * 2
    quick_jobs = [Job(mode="call", code="", call="1")] * 5
    results = pool.map([jobs[0], *quick_jobs, jobs[1], *quick_jobs])
    assert [r.status for r in results] == ["ok"] * len(results)  # the zygote survives and serves everyone
    deadline = time.monotonic() + 120
    for base in (shard.base for shard in pool.shards if os.path.isdir(shard.base)):
        trash = os.path.join(base, "trash")  # the janitor empties the trash, beside each zygote
        while os.listdir(trash) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert os.listdir(trash) == []
        for slot in (n for n in os.listdir(base) if n.startswith("slot")):
            assert os.listdir(os.path.join(base, slot, "work")) == []


# ---------------------------------------------------------------- what still is infra_error, and why it is ours


def test_a_setup_the_machine_refuses_is_infra_error(pool):
    # the caller's limits ask for more open files than the kernel allows: our configuration, not the code
    r = pool.run(Job(mode="call", code="", call="1", limits=Limits(open_files=1 << 40)))
    assert r.status == "infra_error" and "could not set up its isolation" in r.message


def test_a_zygote_that_dies_under_a_job_is_infra_error():
    with sandbox.Pool(1) as own:
        running = own.submit(
            Job(mode="call", code="import time\ntime.sleep(20)", call="1", limits=Limits(wall_time=30))
        )
        deadline = time.monotonic() + 10
        while not own.shards[0].in_flight and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.3)
        os.kill(own.shards[0].zygote_pid, signal.SIGKILL)  # the zygote's own process (with namespaces, all its jobs)
        r = running.result()
        assert r.status == "infra_error" and "zygote" in r.message
        assert [quick(own).status for _ in range(3)][-1] == "ok"  # restarted


def test_a_bug_of_the_judge_is_infra_error(pool, monkeypatch):
    def broken(self, answer, tests_run):
        raise TypeError("a bug of ours")

    monkeypatch.setattr(Execution, "_finish", broken)  # the judge is a shard's driver: run one in this process
    for job in (Job(mode="call", code="", call="1"), Job(mode="asserts", code="x = 1", tests=["assert x == 1"])):
        r = _run_on_a_driver_here(job)
        assert (r.status, r.message) == ("infra_error", "judge error: TypeError: a bug of ours")


def _run_on_a_driver_here(job: Job) -> sandbox.Result:
    """`job`'s Result from a shard's driver running in this process (with a zygote of its own)."""
    first_uid, uid_lock = isolation.claim_uid_block() if os.geteuid() == 0 else (-1, -1)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    driver = Driver(theirs, [0], first_uid, uid_lock, [])
    serving = threading.Thread(target=driver.serve, daemon=True)
    serving.start()
    try:
        ours.sendall(wire.pack(wire.Jobs([1], [job])))
        ours.settimeout(60)
        decoder = wire.Decoder(wire.FromDriver, wire.SHARD_LIMIT)
        while True:
            for message in decoder.feed(ours.recv(1 << 16)):
                if isinstance(message, wire.Results):
                    return message.results[0]
    finally:
        ours.close()  # the driver's loop ends
        serving.join(timeout=30)
        driver.close()
        if uid_lock >= 0:
            os.close(uid_lock)


def test_a_stopped_slot_process_is_infra_error():
    """The process that reports the job's end stops (the machine froze it): the end is never reported."""
    with sandbox.Pool(1) as own:
        job = Job(mode="call", code="import time\ntime.sleep(1)", call="1", limits=Limits(wall_time=2))
        running = own.submit(job)
        deadline = time.monotonic() + 10
        while not job_processes(own) and time.monotonic() < deadline:
            time.sleep(0.01)
        if not job_processes(own):
            pytest.skip("the job's process is not visible as a uid of this pool (no root)")
        slot = psutil.Process(job_processes(own)[0]["pid"]).parent()
        slot.suspend()
        try:
            r = running.result(timeout=60)
        finally:
            slot.resume()
        assert r.status == "infra_error" and "did not report" in r.message
        assert [quick(own).status for _ in range(3)][-1] == "ok"
