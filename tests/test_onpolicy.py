"""On-policy alignment tasks: the traced first test of a verdict run, extraction from a scored batch
(no sandbox run of its own), the buffer, and the layout of mixed batches."""

import asyncio
import multiprocessing
import pickle
import threading
from collections import Counter

import pytest

import rewards
import sandbox
import tracer
from rewards.buffer import AlignmentBuffer
from rewards.cache import ResultCache
from rewards.integrations import make_item
from rewards.onpolicy import Extractor, Mix, Rollout, extract, rollouts_of
from rewards.onpolicy_trl import AsyncOnPolicyTRLReward, OnPolicyTRLReward
from rewards.score import run_batch
from rewards.tasks import AlignmentTask

SUM = "def f(xs):\n    total = 0\n    for x in xs:\n        total += x\n    return total\n"
LAST = "def f(xs):\n    total = 0\n    for x in xs:\n        total = x\n    return total\n"  # f([1, 2, 3]) == 3
PRODUCT = "def f(xs):\n    total = 1\n    for x in xs:\n        total *= x\n    return total\n"  # 6, but f([]) == 1
CRASH = "def f(xs):\n    return xs[10]\n"
SILENT = "def f(xs):\n    s = 0\n    for x in xs:\n        s += x\n"  # returns None
TESTS = ["assert f([1, 2, 3]) == 6", "assert f([]) == 0"]
PROGRAM = "n = int(input())\ntotal = 0\nfor i in range(n):\n    total += i\nprint(total)\n"  # 4 -> 6


def steps_of(trace):
    return [(s.step.event, s.step.line, s.frame.function, s.frame.depth, s.changed) for s in trace.replay()]


# ---------------------------------------------------------------- the sandbox traces the run that judges


def test_asserts_run_traces_the_first_call_as_call_mode_does(pool):
    plain = pool.run(sandbox.Job(mode="asserts", code=LAST, tests=TESTS))
    traced = pool.run(sandbox.Job(mode="asserts", code=LAST, tests=TESTS, trace=True))
    called = pool.run(sandbox.Job(mode="call", code=LAST, call="f([1, 2, 3])", trace=True))
    assert (traced.status, traced.passed, traced.total, traced.message) == (
        plain.status,
        plain.passed,
        plain.total,
        plain.message,
    )
    assert plain.trace is None and traced.trace is not None
    assert steps_of(traced.trace) == steps_of(called.trace)
    assert traced.trace.call_step == called.trace.call_step
    assert tracer.to_python(traced.trace.returned) == 3
    assert traced.trace.frames[-1].locals == called.trace.frames[-1].locals


def test_asserts_trace_of_a_raising_first_call_and_of_code_that_fails_first(pool):
    code = "def f(xs):\n    y = len(xs)\n    return xs[y]\n"
    r = pool.run(sandbox.Job(mode="asserts", code=code, tests=TESTS, trace=True))
    assert r.status == "failed" and r.total == 2
    assert r.trace.exception.type == "IndexError" and r.trace.returned is None
    assert "IndexError" in r.stderr  # the traced call's traceback, as call mode writes it
    r = pool.run(sandbox.Job(mode="asserts", code="raise KeyError(1)\n" + SUM, tests=TESTS, trace=True))
    assert r.status == "error" and r.trace is None and "KeyError" in r.message


def test_asserts_trace_survives_a_later_test_that_times_out(pool):
    # a sleep, not a busy loop: on a busy machine a busy loop's timeout may be `starved` instead
    code = "import time\ndef f(xs):\n    while not xs:\n        time.sleep(1)\n    return sum(xs)\n"
    limits = sandbox.Limits(wall_time=2.0, cpu_time=2.0)
    r = pool.run(sandbox.Job(mode="asserts", code=code, tests=TESTS, trace=True, limits=limits))
    assert r.status == "timeout"
    assert tracer.to_python(r.trace.returned) == 6 and r.trace.exception is None


def test_code_that_replaces_the_hook_gets_its_verdict_and_no_trace(pool):
    code = SUM + "__execalign_first_call__ = lambda: 42\n"
    r = pool.run(sandbox.Job(mode="asserts", code=code, tests=TESTS, trace=True))
    assert (r.status, r.passed, r.total, r.trace) == ("passed", 2, 2, None)


def test_check_block_and_stdio_runs_trace_too(pool):
    check = "def check(candidate):\n    assert candidate([1, 2]) == 3\n    assert candidate([]) == 0\n"
    r = pool.run(sandbox.Job(mode="asserts", code=SUM, tests=check, entry_point="f", trace=True))
    assert r.status == "passed" and tracer.to_python(r.trace.returned) == 3
    r = pool.run(sandbox.Job(mode="stdio", code=PROGRAM, stdin="4\n", expected_stdout="10\n", trace=True))
    assert r.status == "failed" and r.stdout == "6\n"
    assert tracer.to_python(r.trace.frames[0].locals["total"]) == 6


# ---------------------------------------------------------------- extraction costs no sandbox run


class CountingPool:
    """The session's pool, counting the jobs it is given."""

    def __init__(self, pool):
        self.pool, self.jobs = pool, []

    def submit(self, job):
        self.jobs.append(job)
        return self.pool.submit(job)


BATCH = [SUM, LAST, LAST, PRODUCT, CRASH, SILENT]


def scored_batch(pool, trace_tests, codes=BATCH, tests=TESTS):
    counting = CountingPool(pool)
    items = [{"code": code, "tests": tests} for code in codes]
    scored = run_batch(items, trace_tests=trace_tests, pool=counting, cache=ResultCache())
    return items, scored, counting


def rollouts(items, scored, groups=None):
    return [
        Rollout(groups[i] if groups else str(i), item["code"], item["tests"], s)
        for i, (item, s) in enumerate(zip(items, scored))
    ]


@pytest.mark.parametrize(
    "codes, tests",
    [
        (BATCH, TESTS),  # (bare call expressions give no pass rate: an invalid task, issue 9)
        ([PROGRAM, PROGRAM.replace("range(n)", "range(n + 1)")], [{"stdin": "4\n", "stdout": "10\n"}]),
    ],
    ids=["asserts", "stdio"],
)
def test_a_batch_extraction_costs_no_sandbox_run(pool, codes, tests, monkeypatch):
    _, plain, untraced = scored_batch(pool, False, codes, tests)
    items, scored, traced = scored_batch(pool, True, codes, tests)
    assert len(traced.jobs) == len(untraced.jobs)  # the trace rides on the runs that judge
    assert [s.score.reward for s in scored] == [s.score.reward for s in plain]

    def no_run(*args, **kwargs):
        raise AssertionError("extraction ran the sandbox")

    monkeypatch.setattr(sandbox.Pool, "submit", no_run)
    monkeypatch.setattr(sandbox.Pool, "run", no_run)
    extraction = extract(rollouts(items, scored), Extractor(select="all", require_output=False))
    assert extraction.tasks


def test_default_extraction_is_coderl_plus(pool):
    items, scored, _ = scored_batch(pool, True)
    extraction = extract(rollouts(items, scored), Extractor(), step=7)
    # SUM passed; the second LAST repeats the first's input and output; CRASH raised; SILENT gave None
    assert extraction.skipped == Counter(passed=1, duplicate=1, not_clean=1, no_output=1)
    assert [t.code for t in extraction.tasks] == [LAST, PRODUCT]
    for task in extraction.tasks:
        assert task.mode == "coderl_plus" and task.tests == ["f([1, 2, 3])"]
        assert task.metadata["origin"] == "onpolicy" and task.metadata["step"] == 7
        assert rewards.score(task.code, task.tests, task.answer, question=task.question,
                             variables=task.variables, mode=task.mode).reward == 1.0  # fmt: skip
    assert '"final_output":3' in extraction.tasks[0].answer


def test_extraction_options(pool):
    items, scored, _ = scored_batch(pool, True)
    every = extract(rollouts(items, scored), Extractor(select="all", require_output=False, dedup=False))
    assert [t.code for t in every.tasks] == [SUM, LAST, LAST, PRODUCT, SILENT]
    assert every.skipped == Counter(not_clean=1)
    capped = extract(
        rollouts(items, scored, ["a", "a", "a", "a", "b", "b"]),
        Extractor(select="all", require_output=False, dedup=False, max_per_prompt=1),
    )
    assert [t.code for t in capped.tasks] == [SUM, SILENT]
    assert capped.skipped == Counter(per_prompt=3, not_clean=1)
    lengths = [len(t.prompt) for t in every.tasks]
    limit = sorted(lengths)[2]
    short = extract(
        rollouts(items, scored),
        Extractor(select="all", require_output=False, dedup=False, max_prompt_tokens=limit, prompt_length=len),
    )
    assert len(short.tasks) == sum(n <= limit for n in lengths) and short.skipped["too_long"] > 0
    with pytest.raises(ValueError, match="prompt_length"):
        extract(rollouts(items, scored), Extractor(max_prompt_tokens=10))
    execalign = extract(rollouts(items, scored), Extractor(template="execalign", question="output"))
    assert [t.answer for t in execalign.tasks] == ["3", "6"]


def test_only_a_plain_first_call_is_asked_about(pool):
    tests = ["assert f(g([1, 2])) == 3", "assert f([]) == 0"]
    code = LAST + "def g(xs):\n    return xs + [9]\n"
    items, scored, _ = scored_batch(pool, True, [code], tests)
    assert extract(rollouts(items, scored), Extractor(select="all")).skipped == Counter(untraceable=1)


def test_extracted_gold_answers_score_one_on_cruxeval(pool, cruxeval):
    rows = cruxeval[::8]
    items = [{"code": r["code"], "tests": [f"assert f({r['input']}) == {r['output']}"]} for r in rows]
    scored = run_batch(items, trace_tests=True, pool=pool)
    for question, share in (("steps", 0.9), ("final", 0.6)):
        extractor = Extractor(select="all", dedup=False, template="execalign", question=question)
        extraction = extract(rollouts(items, scored), extractor)
        assert len(extraction.tasks) > share * len(rows), extraction.skipped
        assert set(extraction.skipped) <= {"untraceable", "nothing_to_ask"}  # f(*non-literals), one-liners
        for task in extraction.tasks:  # the asserts run's trace and a fresh call-mode run agree
            score = rewards.score(task.code, task.tests, task.answer, question=question, variables=task.variables)
            assert score.reward == 1.0, (task.code, task.answer, score)


# ---------------------------------------------------------------- the buffer


def tasks_named(*names, step=0):
    return [
        AlignmentTask(prompt=n, answer="", gold=None, question="final", code="", tests=[], metadata={"step": step})
        for n in names
    ]


def prompts(tasks):
    return [t.prompt for t in tasks]


def test_recent_draws_the_previous_extraction_with_replacement():
    buffer = AlignmentBuffer(capacity=10)
    assert buffer.draw(4, key=0) == []
    buffer.add(tasks_named("a", "b"), {"passed": 3})
    first = buffer.draw(4, key=1)
    assert len(first) == 4 and set(prompts(first)) <= {"a", "b"}
    assert prompts(buffer.draw(4, key=1)) == prompts(first)  # same key, same tasks
    buffer.add(tasks_named("c"))
    assert prompts(buffer.draw(3, key=2)) == ["c", "c", "c"]
    assert prompts(buffer.draw(3, key=3)) == ["c", "c", "c"]  # nothing new: the latest extraction again
    stats = buffer.stats()
    assert (stats.size, stats.added, stats.recent, stats.skipped) == (3, 3, 1, {"passed": 3})
    assert stats.drawn == 10 and stats.batches == 4


def test_without_replacement_and_uniform():
    buffer = AlignmentBuffer(capacity=10, replace=False)
    buffer.add(tasks_named("a", "b", "c"))
    buffer.draw(1, key=0)
    buffer.add(tasks_named("d", "e"))
    drawn = prompts(buffer.draw(4, key=1))
    assert sorted(drawn[:2]) == ["d", "e"] and drawn[2:] == ["c", "b"]  # topped up with the newest older ones
    uniform = AlignmentBuffer(capacity=10, strategy="uniform", replace=False, seed=1)
    uniform.add(tasks_named(*"abcde"))
    assert sorted(prompts(uniform.draw(5, key=0))) == list("abcde")
    assert len(prompts(uniform.draw(9, key=1))) == 5


def test_capacity_evicts_the_oldest_and_min_size_waits():
    buffer = AlignmentBuffer(capacity=3, strategy="uniform", min_size=3)
    buffer.add(tasks_named("a", "b"))
    assert buffer.draw(2, key=0) == []
    buffer.add(tasks_named("c", "d", "e"))
    assert len(buffer) == 3 and buffer.stats().evicted == 2
    assert set(prompts(buffer.draw(20, key=1))) == {"c", "d", "e"}
    with pytest.raises(ValueError, match="strategy"):
        AlignmentBuffer(strategy="newest")
    assert pickle.loads(pickle.dumps(buffer)) is buffer  # in its own process: itself
    with pytest.raises(TypeError, match="RayBuffer"), multiprocessing.get_context("spawn").Pool(1) as other:
        other.apply(pickle.loads, (pickle.dumps(buffer),))  # in another: refused


def test_buffer_under_threads():
    buffer = AlignmentBuffer(capacity=100_000, strategy="uniform")
    barrier = threading.Barrier(8)
    seen = []

    def work(i):
        barrier.wait()
        for j in range(200):
            buffer.add(tasks_named(f"{i}-{j}"), {"passed": 1})
            seen.append(tuple(prompts(buffer.draw(2, key=i * 1000 + j))))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stats = buffer.stats()
    assert (stats.size, stats.added, stats.skipped) == (1600, 1600, {"passed": 1600})
    assert all(len(s) == 2 for s in seen)


# ---------------------------------------------------------------- batches


def test_mix_gives_every_batch_its_share_and_every_row_once_per_pass():
    mix = Mix(rows=10, batch_prompts=5, ratio=0.4, seed=3)
    assert (mix.per_batch, mix.batches, len(mix)) == (2, 4, 20)
    passes = []
    for _ in range(2):
        places = [mix.place(i) for i in range(len(mix))]
        batches = [places[b * 5 : b * 5 + 5] for b in range(4)]
        assert all(sum(slot is not None for _, slot in batch) == 2 for batch in batches)
        rows = [at for at, slot in places if slot is None]
        assert sorted(rows[:10]) == list(range(10))
        keys = [at for at, slot in places if slot is not None]
        passes.append((rows, keys))
    assert passes[0][0] != passes[1][0]  # reshuffled
    assert passes[1][1][0] > passes[0][1][-1]  # keys keep increasing
    with pytest.raises(ValueError, match="no place"):
        Mix(rows=10, batch_prompts=2, ratio=0.4)


# ---------------------------------------------------------------- the reward function, sync and in asyncio


def trl_call(reward, pool_completions, step):
    metrics = Counter()
    prompts_ = [f"write f #{i // 2}" for i in range(len(pool_completions))]
    kwargs = {
        "tests": [TESTS] * len(pool_completions),
        "kind": ["rlvr"] * len(pool_completions),
        "origin": ["dataset"] * len(pool_completions),
        "trainer_state": type("State", (), {"global_step": step})(),
        "log_metric": lambda k, v: metrics.__setitem__(k, v),
    }
    return reward, prompts_, kwargs, metrics


def test_trl_reward_fills_the_buffer_sync_and_async(pool, monkeypatch):
    monkeypatch.setattr("sandbox.default_pool", lambda: pool)
    completions = [f"```python\n{code}```" for code in BATCH]
    buffer = AlignmentBuffer()
    reward, prompts_, kwargs, metrics = trl_call(OnPolicyTRLReward(buffer), completions, 3)
    values = reward(prompts=prompts_, completions=completions, **kwargs)
    assert values == [1.0, 0.5, 0.5, 0.5, 0.0, 0.0]
    assert [t.code for t in buffer.draw(2, key=0)] in ([LAST, LAST], [LAST, PRODUCT], [PRODUCT, LAST], [PRODUCT] * 2)
    assert metrics["execalign/buffer_added"] == 2 and metrics["execalign/buffer_skipped_passed"] == 1
    assert metrics["execalign/buffer_size"] == 2
    reward, prompts_, kwargs, metrics = trl_call(AsyncOnPolicyTRLReward(buffer), completions, 4)
    values = asyncio.run(reward(prompts=prompts_, completions=completions, **kwargs))
    assert values == [1.0, 0.5, 0.5, 0.5, 0.0, 0.0] and buffer.stats().added == 4
    items = [make_item(c, {"tests": TESTS}) for c in completions]
    assert len(rollouts_of(items, run_batch(items, trace_tests=True, pool=pool), ["p"] * 6)) == 6
