"""Adapters called exactly as the trainers call them, and the reward server over real HTTP."""

import asyncio
import concurrent.futures
import json
import threading
import urllib.error
import urllib.request

import pytest

from rewards import integrations
from rewards.server import RewardServer

CODE = "def f(x):\n    y = x * 2\n    return y + 1"
TRACE_ROW = {"kind": "trace", "code": CODE, "tests": json.dumps(["f(3)"]), "question": "final"}
RLVR_ROW = {"kind": "rlvr", "code": None, "tests": json.dumps(["assert f(3) == 7", "assert f(0) == 1"])}
GOOD_CODE = "Here you go:\n```python\ndef f(x):\n    return 2 * x + 1\n```"


@pytest.fixture(autouse=True)
def on_test_pool(pool, monkeypatch):
    monkeypatch.setattr("sandbox.default_pool", lambda: pool)


def columns(rows):
    """The rows as TRL passes a dataset's columns: one list per column the reward reads."""
    return {key: [row.get(key) for row in rows] for key in integrations.TRLReward().columns}


def test_trl_sync_call_shape_mixed_batch_and_logging():
    metrics, extra = {}, {}
    reward = integrations.TRLReward()
    rows = [TRACE_ROW, TRACE_ROW, RLVR_ROW, RLVR_ROW, {"kind": "trace", "code": CODE, "tests": "f(3"}]
    completions = ["...\n{'y': 6}", "{'y': 5}", GOOD_CODE, "```python\ndef f(x):\n    return x\n```", "7"]
    out = reward(
        prompts=["p"] * 5,
        completions=completions,
        completion_ids=[[1]] * 5,
        **columns(rows),
        trainer_state=None,
        log_extra=lambda c, v: extra.setdefault(c, v),
        log_metric=lambda k, v: metrics.setdefault(k, v),
    )
    assert out == [1.0, 0.0, 1.0, 0.0, None]
    assert metrics["execalign/pass_rate"] == 0.5 and metrics["execalign/infra_error_rate"] == 0.2
    assert extra["execalign_status"] == ["ok", "ok", "ok", "ok", "invalid_task"]


def test_trl_async_and_conversational_completions_and_pickling():
    import pickle

    reward = pickle.loads(pickle.dumps(integrations.AsyncTRLReward(columns={"tests": "test_list"})))
    completions = [[{"role": "assistant", "content": "{'y': 6}"}]]
    out = asyncio.run(
        reward(
            prompts=[[{"role": "user", "content": "q"}]],
            completions=completions,
            completion_ids=[[1]],
            kind=["trace"],
            code=[CODE],
            question=["final"],
            test_list=[["f(3)"]],
        )
    )
    assert out == [1.0]


def test_verl_compute_score_as_the_reward_loop_calls_it():
    keys = None
    for solution, truth, expected in [
        ("{'y': 6}", TRACE_ROW, 1.0),
        (GOOD_CODE, RLVR_ROW, 1.0),
        ("{'y': 5}", json.dumps(TRACE_ROW), 0.0),
        ("x", {"kind": "trace"}, 0.0),
    ]:
        result = integrations.compute_score(
            data_source="execalign", solution_str=solution, ground_truth=truth, extra_info={"index": 0}
        )
        keys = keys or set(result)
        assert set(result) == keys == set(integrations.VERL_KEYS)
        assert result["score"] == expected
    assert result["masked"] == 1.0
    loop = asyncio.new_event_loop()
    try:
        assert (
            loop.run_until_complete(
                integrations.compute_score_async(
                    data_source="execalign", solution_str="{'y': 6}", ground_truth=TRACE_ROW, extra_info={}
                )
            )["score"]
            == 1.0
        )
    finally:
        loop.close()


def test_openrlhf_reward_func_from_a_file_in_threads(tmp_path):
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).resolve().parents[1] / "examples" / "openrlhf_reward_func.py"
    spec = importlib.util.spec_from_file_location("reward_func", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    async def like_openrlhf():  # SingleTurnAgentExecutor._fetch_rewards_via_func: one sample per thread
        prompt = "Predict:"
        return await asyncio.gather(
            *(
                asyncio.to_thread(module.reward_func, [prompt + c], [prompt], [json.dumps(label)])
                for c, label in [("{'y': 6}", TRACE_ROW), (GOOD_CODE, RLVR_ROW)]
            )
        )

    results = asyncio.run(like_openrlhf())
    assert [r["rewards"] for r in results] == [[1.0], [1.0]]
    assert results[0]["extra_logs"]["masked"] == [0.0]


def test_verifiers_reward_function():
    assert asyncio.run(integrations.verifiers_reward(completion="{'y': 6}", answer=json.dumps(TRACE_ROW))) == 1.0


def test_a_samples_task_field_is_read_as_its_question():
    reward = integrations.TRLReward()
    rows = [{**TRACE_ROW, "question": None, "task": "output"}, {**TRACE_ROW, "question": "final", "task": "output"}]
    extra = {}
    out = reward(completions=["{'y': 6}", "{'y': 6}"], **columns(rows), log_extra=lambda c, v: extra.setdefault(c, v))
    assert out == [0.0, 1.0]  # read as an output prediction (7), then as final values (question wins)
    assert extra["execalign_status"] == ["ok", "ok"]
    verl = integrations.compute_score("execalign", "7", {**TRACE_ROW, "question": None, "task": "output"})
    assert verl["score"] == 1.0


BAD_KIND = {"kind": "rvlr", "code": CODE, "tests": json.dumps(["f(3)"])}
NAMED = "invalid_task: unknown kind 'rvlr': choose rlvr or trace"


def adapters_on(row, completion):
    """Each adapter called as its trainer calls it, with one sample: its reward and masked flag."""
    trl = integrations.TRLReward()(completions=[completion], **columns([row]))[0]
    trl_async = asyncio.run(integrations.AsyncTRLReward()(completions=[completion], **columns([row])))[0]
    verl = integrations.compute_score(data_source="x", solution_str=completion, ground_truth=row, extra_info={})
    verl_async = asyncio.run(integrations.compute_score_async("x", completion, json.dumps(row), {}))
    openrlhf = integrations.openrlhf_reward(["P:" + completion], ["P:"], [json.dumps(row)])
    verifiers = asyncio.run(integrations.verifiers_reward(completion=completion, info=row))
    return {
        "trl": (trl, trl is None),
        "trl_async": (trl_async, trl_async is None),
        "verl": (verl["score"], verl["masked"] == 1.0),
        "verl_async": (verl_async["score"], verl_async["masked"] == 1.0),
        "openrlhf": (openrlhf["rewards"][0], openrlhf["extra_logs"]["masked"] == [1.0]),
        "verifiers": (verifiers, None),
    }


def test_an_unknown_kind_is_an_invalid_task_that_names_it_in_every_adapter(caplog):
    with caplog.at_level("WARNING", logger="rewards.integrations"):
        results = adapters_on(BAD_KIND, "{'y': 6}")
    assert results == {
        "trl": (None, True),
        "trl_async": (None, True),
        "verl": (0.0, True),
        "verl_async": (0.0, True),
        "openrlhf": (0.0, True),
        "verifiers": (0.0, None),
    }
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == len(results) and all("1 of 1 samples masked" in w and NAMED in w for w in warnings)
    assert "non-empty" not in " ".join(warnings)
    good = adapters_on(TRACE_ROW, "{'y': 6}")
    assert all(reward == 1.0 and not masked for reward, masked in good.values())


# ---------------------------------------------------------------- the server


@pytest.fixture
def server():
    srv = RewardServer(("127.0.0.1", 0), max_pending=4, max_request_bytes=1 << 16)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def post(url, body, timeout=60):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def test_server_openrlhf_json_batch_and_health(server):
    status, body = post(
        server.url + "/",
        {
            "query": ["P:{'y': 6}", "P:" + GOOD_CODE],
            "prompts": ["P:", "P:"],
            "labels": [json.dumps(TRACE_ROW), json.dumps(RLVR_ROW)],
        },
    )
    assert status == 200 and body["rewards"] == [1.0, 1.0] and body["extra_logs"]["masked"] == [0.0, 0.0]
    status, body = post(
        server.url + "/batch",
        {"items": [{"code": CODE, "tests": ["f(3)"], "predicted_trace": "7", "question": "output"}]},
    )
    assert status == 200 and body["scores"][0]["reward"] == 1.0 and body["scores"][0]["question"] == "output"
    with urllib.request.urlopen(server.url + "/health", timeout=30) as response:
        assert json.loads(response.read())["status"] == "ok"


def test_server_names_an_unknown_kind(server, caplog):
    with caplog.at_level("WARNING", logger="rewards.integrations"):
        status, body = post(server.url + "/", {"query": ["P:7"], "prompts": ["P:"], "labels": [json.dumps(BAD_KIND)]})
    assert status == 200 and body["rewards"] == [0.0] and body["extra_logs"]["masked"] == [1.0]
    assert any(NAMED in r.getMessage() for r in caplog.records)
    item = {"code": CODE, "tests": ["f(3)"], "predicted_trace": "7", "task": "output"}  # "task": the old name
    status, body = post(server.url + "/batch", {"items": [item]})
    assert body["scores"][0]["question"] == "output" and body["scores"][0]["reward"] == 1.0


def test_server_rejects_bad_requests(server):
    assert post(server.url + "/", b"{not json")[0] == 400
    assert post(server.url + "/", {"nothing": 1})[0] == 400
    assert post(server.url + "/", b"x" * (1 << 17))[0] == 413
    assert post(server.url + "/nope", {})[0] == 404


def test_server_backpressure_and_no_accepted_request_lost(server):
    slow = {
        "items": [
            {
                "code": "import time\ntime.sleep(1.5)\ndef f():\n    return 1",
                "tests": ["f()"],
                "predicted_trace": "1",
                "question": "output",
            }
        ]
    }
    with concurrent.futures.ThreadPoolExecutor(10) as executor:
        futures = [executor.submit(post, server.url + "/batch", slow) for _ in range(10)]
        codes = [f.result()[0] for f in futures]
    assert codes.count(200) >= 4 and set(codes) <= {200, 503} and 503 in codes
    accepted = [f.result()[1] for f in futures if f.result()[0] == 200]
    assert all(body["scores"][0]["reward"] == 1.0 for body in accepted)


def test_server_graceful_shutdown_finishes_accepted_requests():
    srv = RewardServer(("127.0.0.1", 0), max_pending=8)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    slow = {
        "items": [
            {
                "code": "import time\ntime.sleep(1)\ndef f():\n    return 2",
                "tests": ["f()"],
                "predicted_trace": "2",
                "question": "output",
            }
        ]
    }
    with concurrent.futures.ThreadPoolExecutor(3) as executor:
        futures = [executor.submit(post, srv.url + "/batch", slow) for _ in range(3)]
        import time

        time.sleep(0.5)
        srv.shutdown()
        srv.server_close()
        results = [f.result() for f in futures]
    assert [code for code, _ in results] == [200, 200, 200]


def test_execalign_serve_command_stops_gracefully_on_sigterm(tmp_path):
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    script = os.path.join(os.path.dirname(sys.executable), "execalign")
    command = [script] if os.path.exists(script) else [sys.executable, "-m", "rewards.cli"]
    process = subprocess.Popen(
        [*command, "serve", "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        assert "listening" in process.stdout.readline()
        url = f"http://127.0.0.1:{port}"
        slow = {
            "items": [
                {
                    "code": "import time\ntime.sleep(1)\ndef f():\n    return 3",
                    "tests": ["f()"],
                    "predicted_trace": "3",
                    "question": "output",
                }
            ]
        }
        with concurrent.futures.ThreadPoolExecutor(2) as executor:
            futures = [executor.submit(post, url + "/batch", slow) for _ in range(2)]
            time.sleep(0.5)
            process.send_signal(signal.SIGTERM)
            assert [f.result()[0] for f in futures] == [200, 200]
        assert process.wait(timeout=60) == 0
        assert "stopped" in process.stdout.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
