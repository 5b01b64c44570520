"""Hostile answers and requests (issue 9): none raises a reward without doing the task, none turns a
failure into a masked sample, and none costs the judge more than a bounded amount of work.

Costs are checked by counting work (the comparison budget's nodes, tracemalloc's peak) or by how
the CPU time grows between two sizes of the same input, never by a wall-clock limit. Every HTTP
request has a socket timeout, and every loop a fixed number of turns.
"""

import functools
import http.client
import json
import re
import socket
import threading
import time
import tracemalloc

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sandbox
import tracer
from rewards import align, cache, compare, integrations, parse, questions, score
from rewards.compare import exact_key, typed_equal
from rewards.server import RewardServer
from sandbox import Result
from tests.strategies import values
from tests.test_integrations import adapters_on  # each adapter, as its trainer calls it

CODE = "K = 5\n\ndef f(x):\n    y = x * 2\n    return y + 1"
LOOP = "def f(n):\n    t = 0\n    for i in range(n):\n        t += i\n    return t"


@pytest.fixture(autouse=True)
def on_test_pool(pool, monkeypatch):
    monkeypatch.setattr("sandbox.default_pool", lambda: pool)


@functools.lru_cache
def truth_of(code, call, mode="typed"):
    """The Truth of a trusted run, traced in this process (no sandbox needed)."""
    result = Result(status="ok", trace_msgpack=tracer.trace(code, call=call).to_msgpack())  # read back as `trace`
    return questions.Truth(result=result, code=code, mode=mode)


def growth(fn, small, large, repeats=3):
    """How much more CPU time `fn(large)` takes than `fn(small)` (best of interleaved runs)."""
    best = {small: float("inf"), large: float("inf")}
    for _ in range(repeats):
        for size in (small, large):
            start = time.process_time()
            fn(size)
            best[size] = min(best[size], time.process_time() - start)
    return best[large] / max(best[small], 0.005)


# ---------------------------------------------------------------- 5. padding final values

PADDINGS = [
    {"x": 3},  # the argument
    {"K": 5},  # a module constant
    {"f": "<function f>"},  # a function's rendering
    {"x": 3, "K": 5, "f": "<function f>", "__name__": "__main__"},
    {f"v{i}": i for i in range(200)},  # names the run never had
    {1: 2, (3,): 4},  # not names at all
]


@pytest.mark.parametrize("padding", PADDINGS, ids=lambda p: ",".join(map(str, list(p)[:4])))
def test_padding_a_final_answer_never_raises_its_reward(padding):
    for asked in (None, ["y"]):
        for right, value in ((0.0, 5), (1.0, 6)):
            s = score(CODE, ["f(3)"], repr({"y": value, **padding}), question="final", variables=asked)
            assert (s.status, s.reward) == ("ok", right)
            assert [d.item for d in s.details if d.scored] == ["y"]
            (note,) = [d for d in s.details if not d.scored]
            assert note.item == "ignored" and repr(next(iter(padding)))[1:-1] in note.predicted


def test_an_output_the_final_question_does_not_ask_is_ignored():
    wrong_y = '{"final_output": 7, "variables": {"y": 5, "x": 3}}'
    s = score(CODE, ["f(3)"], wrong_y, question="final")
    assert s.reward == 0.0 and "final_output" in s.details[-1].predicted and "x" in s.details[-1].predicted
    # CodeRL+'s question asks the output and the variables: the output counts there, the padding does not
    plain = score(CODE, ["f(3)"], '{"final_output": 7, "variables": {"y": 5}}', mode="coderl_plus")
    padded = score(CODE, ["f(3)"], wrong_y, mode="coderl_plus")
    assert plain.reward == padded.reward == pytest.approx(0.1 + 0.9 * 1 / 2)
    assert [d.item for d in padded.details if d.scored] == ["output", "y"]


def test_code_may_name_its_own_variables_final_output_and_variables():
    code = "def f(x):\n    final_output = [x]\n    variables = {'a': x}\n    return 0"
    assert score(code, ["f(3)"], "{'final_output': [3], 'variables': {'a': 3}}", question="final").reward == 1.0
    assert score(code, ["f(3)"], "{'final_output': [3], 'variables': {'a': 4}}", question="final").reward == 0.5
    one = "def f(x):\n    final_output = [x]\n    return 0"
    assert score(one, ["f(3)"], "{'final_output': [3]}", question="final").reward == 1.0


def test_a_huge_padding_is_listed_in_a_short_note():
    answer = {"y": 6, **{f"name{i}": i for i in range(50_000)}}
    s = score(CODE, ["f(3)"], answer, question="final")
    assert s.reward == 1.0 and "(and 49980 more)" in s.details[-1].predicted
    assert len(msgspec.json.encode(s.details)) < 2000


@given(
    st.dictionaries(
        st.text(min_size=1, max_size=8).filter(lambda n: n not in ("y", "variables", "final_output")),
        values,
        max_size=8,
    ),
    st.sampled_from([0, 6, 12]),
)
@settings(max_examples=60, deadline=None)
def test_no_extra_name_changes_a_final_score(extras, y):
    truth = truth_of(CODE, "f(3)")
    alone = questions.score_final({"y": y}, truth)
    padded = questions.score_final({**extras, "y": y}, truth)
    assert padded.score == alone.score == float(y == 6)


def test_a_final_question_about_nothing_is_an_invalid_task():
    for variables, why in (([], "no variable"), (["nope"], "never defines: nope")):
        s = score(CODE, ["f(3)"], "{'zz': 1}", question="final", variables=variables)
        assert (s.status, s.reward) == ("invalid_task", None) and why in s.message
    nothing = score("def f(x):\n    return x", ["f(3)"], "{'zz': 1}", question="final")
    assert nothing.status == "invalid_task" and "no variable" in nothing.message


# ---------------------------------------------------------------- 6. the row chooses the question

LOOP_ROW = {"kind": "trace", "code": LOOP, "tests": json.dumps(["f(3)"])}
LINES = "{'lines': [2, 3, 4, 3, 4, 3, 4, 3, 5]}"  # right, and an easier question than the one asked


@pytest.mark.parametrize("named", [{}, {"question": "auto"}, {"task": "auto"}, {"question": ""}])
def test_a_row_that_names_no_question_is_masked_in_adapters_on(named, caplog):
    with caplog.at_level("WARNING", logger="rewards.integrations"):
        for completion in (LINES, "3", "{'t': 3}"):
            results = adapters_on({**LOOP_ROW, **named}, completion)  # (verifiers: a plain 0.0, no flag)
            assert all(masked is not False and not reward for reward, masked in results.values())
    assert all("must name its question" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("field", ["question", "task"])
def test_the_rows_question_is_scored_whatever_the_answers_shape(field):
    row = {**LOOP_ROW, field: "final", "variables": json.dumps(["t"])}
    for completion, reward in ((LINES, 0.0), ("3", 0.0), ("{'output': 3}", 0.0), ("{'t': 3}", 1.0)):
        results = adapters_on(row, completion)
        assert {r for r, _ in results.values()} == {reward}, (completion, results)
        assert not any(masked for _, masked in results.values())


def test_the_servers_batch_needs_a_named_question_too():
    srv, _ = start_server()
    try:
        item = {"code": LOOP, "tests": ["f(3)"], "predicted_trace": LINES}
        status, body = request(srv, "POST", "/batch", {"items": [item, {**item, "question": "lines"}]})
        first, second = body["scores"]
        assert status == 200 and first["status"] == "invalid_task" and "must name its question" in first["message"]
        assert second["reward"] == 1.0 and second["question"] == "lines"
    finally:
        stop_server(srv)


def test_a_direct_call_with_auto_still_reads_the_answers_shape():
    assert score(LOOP, ["f(3)"], LINES).question == "lines"  # for a person reading Score.question


def test_fields_in_the_answer_change_nothing():
    row = {**LOOP_ROW, "question": "final", "variables": json.dumps(["t"])}
    sneaky = "{'t': 0, 'question': 'lines', 'variables': ['i'], 'test_index': 5, 'mode': 'coderl_plus', 'i': 2}"
    assert {r for r, _ in adapters_on(row, sneaky).values()} == {0.0}


@pytest.mark.parametrize(
    "fields",
    [
        {"test_index": "0"},
        {"test_index": 7},
        {"test_index": -1},
        {"test_index": True},
        {"variables": "t"},
        {"variables": json.dumps([1])},
        {"mode": "lenient"},
        {"question": "nonsense"},
        {"question": 3},
        {"code": ""},
        {"code": None, "kind": "trace"},
    ],
)
def test_malformed_row_fields_are_invalid_tasks_never_infra_errors(fields):
    row = {**LOOP_ROW, "question": "final", **fields}
    for completion in ("{'t': 3}", "x" * 1000):
        results = adapters_on(row, completion)
        assert all(masked is not False and not reward for reward, masked in results.values()), (fields, results)
    s = integrations.score_samples([integrations.make_item("{'t': 3}", row)])[0]
    assert s.status == "invalid_task" and s.message


# ---------------------------------------------------------------- 9. the judge's cost is bounded

PATHOLOGICAL = {
    "unclosed answer tags": lambda n: "<answer>" * n + "1",
    "unclosed closing tags": lambda n: "</answer>" * n + "<answer>1",
    "unclosed brackets": lambda n: "[" * 200 + "x" * n,
    "unclosed quotes in brackets": lambda n: "{'" * 200 + "x" * n,
    "quotes after brackets": lambda n: "[" * 200 + '"' * n,
    "unclosed fences": lambda n: "```python\n" + "``x\n" * n,
    "unclosed boxes": lambda n: "\\boxed{" * n,
    "long lines": lambda n: ("{" * 50 + "\n") * n,
}


@pytest.mark.parametrize("name", PATHOLOGICAL)
def test_pathological_answers_parse_in_linear_time(name):
    make = PATHOLOGICAL[name]

    def parse_it(n):
        try:
            parse.parse_answer(make(n))
        except parse.ParseError as error:
            assert len(str(error)) < 1000  # reasons are cut
        try:
            parse.parse_arguments(make(n), "f")
        except parse.ParseError:
            pass

    assert growth(parse_it, 6000, 24000) < 10  # 4x the input: ~4x the time (a quadratic scan was 16x)


def test_the_bracket_scan_stops_at_its_budget_and_says_so():
    with pytest.raises(parse.ParseError, match="gave up after"):
        parse.parse_answer("[" * 200 + '"' * (parse.SCAN_BUDGET // 100))
    assert parse.parse_answer("so {'a': [1, {'b': \"it's\"}]} it is").value == {"a": [1, {"b": "it's"}]}
    assert parse.parse_answer("<answer>1</answer> then <ANSWER>2</answer> </answer>").value == 2


def compared_pairs(graded):
    """How many pairs of steps the steps scorer compared (its "window" note says, when it narrowed)."""
    (note,) = [d for d in graded.details if d.item == "window"]
    return int(re.search(r"\((\d+) pairs compared\)", note.predicted).group(1))


def peak_memory(fn):
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_thousands_of_steps_on_one_hot_line_cost_bounded_work_and_memory():
    truth = truth_of(LOOP, "f(5000)")  # line 4 runs 5000 times
    hot = {n: [{"line": 4, "changes": {"t": 1}} for _ in range(n)] for n in (1250, 5000)}
    work = {}
    for n, answer in hot.items():
        graded = questions.score_steps(answer, truth)
        work[n] = compared_pairs(graded)
        assert 0 < graded.score < 0.01
    assert work[5000] < 200_000 and work[5000] < 5 * work[1250]  # was 25 million comparisons at 5000
    assert peak_memory(lambda: questions.score_steps(hot[5000], truth)) < 48 << 20  # a 5000 x 5000 matrix: 200 MB
    honest = [
        step
        for i in range(1000)
        for step in ({"line": 3, "changes": {"i": i}}, {"line": 4, "changes": {"t": i * (i + 1) // 2}})
    ]
    graded = questions.score_steps(honest, truth)
    real = len(questions.line_steps(truth.trace))  # 10003, the first 5000 compared
    assert graded.score == pytest.approx(1999 / real) and compared_pairs(graded) < 200_000  # (`t += 0` changes nothing)
    assert any(d.item == "cut" and not d.scored for d in graded.details)


def test_a_run_with_wide_frames_costs_no_copy_of_its_variables_per_step():
    """A steps score holds each real step's changes, never each step's whole frame (300 names x 10k steps)."""
    names = "=".join(f"a{i}" for i in range(300))
    code = f"def f():\n    {names} = 0\n    for k in range(10000):\n        a0 = k\n    return 0\n"
    truth = truth_of(code, "f()")
    answer = [{"line": 4, "changes": {"a0": 1}}]
    assert questions.score_steps(answer, truth).score == pytest.approx(1 / 20003)
    assert peak_memory(lambda: questions.score_steps(answer, truth)) < 24 << 20  # holding every step's frame: 130 MB


def test_the_viewer_aligns_exactly_what_the_reward_scored():
    """`align_steps` (rewards.diff's rows) holds the windowed comparison `score_steps` streams."""
    truth = truth_of(LOOP, "f(300)")  # line 4 runs 300 times
    answer = [{"line": 4, "changes": {"t": 150 * 151 // 2}}] * 3000  # right for one real step only
    graded = questions.score_steps(answer, truth)
    aligned = questions.align_steps(answer, truth)
    assert compared_pairs(graded) < 300 * 3000  # the window left pairs out
    assert 0 < np.count_nonzero(aligned.similarity) < 3000  # compared with everything: 3000 ones
    assert aligned.score == pytest.approx(graded.score) == pytest.approx(1 / 3000)
    best = aligned.similarity.max(axis=1)
    assert [d.score for d in graded.details if d.scored] == pytest.approx(list(best))


def step_reference(answer, truth):
    """The steps score without windows: every predicted step against every real step of its line."""
    predicted = [(s["line"], s["changes"]) for s in answer]
    actual = questions.line_changes(truth.trace)  # (line, whole new values), as Trace.replay gives them
    sim = np.zeros((len(predicted), len(actual)))
    for i, (line, changes) in enumerate(predicted):
        for j, (real_line, changed) in enumerate(actual):
            if real_line != line:
                continue
            names = set(changed) | {k for k in changes if isinstance(k, str)}
            right = sum(1 for n in changed if n in changes and compare.matches(changes[n], changed[n]))
            sim[i, j] = right / len(names) if names else 1.0
    return align.alignment_score(sim, len(predicted), len(actual))


step_values = st.one_of(st.integers(-2, 12), st.sampled_from([1.0, True, "3", None, (1,), [0, 1]]))


@given(
    st.lists(
        st.tuples(
            st.sampled_from([2, 3, 4, 5, 9]), st.dictionaries(st.sampled_from(["t", "i", "n", "z"]), step_values)
        ),
        max_size=20,
    )
)
@settings(max_examples=150, deadline=None)
def test_the_fast_steps_score_equals_the_full_comparison(steps):
    truth = truth_of(LOOP, "f(4)")
    answer = [{"line": line, "changes": changes} for line, changes in steps]
    assert questions.score_steps(answer, truth).score == pytest.approx(step_reference(answer, truth))


@given(values, values)
@settings(max_examples=150)
def test_an_exact_key_is_typed_equality(a, b):
    ka, kb = exact_key(a), exact_key(b)
    if ka is not None and kb is not None:
        assert (ka == kb) == typed_equal(a, b)
    if typed_equal(a, b):
        assert (ka is None) == (kb is None)


def test_many_lines_on_one_hot_line_and_huge_line_numbers():
    truth = truth_of(LOOP, "f(2000)")  # 4003 lines, 2000 of them line 4
    assert questions.score_lines([4] * 5000, truth).score == pytest.approx(2000 / 5000)
    assert peak_memory(lambda: questions.score_lines([4] * 5000, truth)) < 16 << 20
    assert questions.score_lines([10**30, -(10**30), 2], truth).score == pytest.approx(1 / 4003)


def test_comparing_with_a_shared_real_value_costs_what_the_answer_costs():
    def shared(levels):  # 30 ** levels leaves, each level one list 30 times
        return f"def f():\n    v = [1]\n    for _ in range({levels}):\n        v = [v] * 30\n    return v"

    for mode in ("typed", "coderl_plus"):
        for answer in ([[1]] * 30, "[[[[1]]]]", [[[[[[1]] * 30] * 30] * 30] * 30]):

            def compare_with(levels, answer=answer, mode=mode):
                assert questions.score_output(answer, truth_of(shared(levels), "f()", mode)).score == 0.0

            assert growth(compare_with, 2, 5) < 10  # 27,000 times the leaves: about the same time
        right = [[[[1]] * 30] * 30] * 30
        assert questions.score_output(right, truth_of(shared(3), "f()", mode)).score == 1.0


@pytest.mark.parametrize(
    "question,answer",
    [
        ("output", "[" * 3000 + "]" * 3000),  # JSON can nest deeper than Python literals
        ("final", '{"y": ' + "[" * 3000 + "]" * 3000 + "}"),
        ("steps", '[{"line": 4, "changes": {"y": ' + "[" * 3000 + "]" * 3000 + "}}]"),
        ("output", "[" + "1, " * 60_000 + "1]"),
        ("final", "{'y': '" + "x" * 190_000 + "'}"),
        ("lines", "{'lines': [" + "4, " * 60_000 + "4]}"),
        ("input", "f(" + "-" * 1000 + "1)"),
        ("input", "-" * 1000 + "1"),
        ("input", "f(" + "1+" * 20_000 + "1)"),
        ("output", "1j"),
        ("final", "{'y': {(1, 2): 1j}}"),
        ("output", "bytearray(1000000000)"),  # literals that would build gigabytes
        ("final", "{'y': bytes(10**9)}"),
        ("output", "'x' * 10**10"),
        ("output", "10**10**10"),
        ("steps", "[{'line': 4, 'changes': {'y': [0] * 10**9}}]"),
    ],
)
def test_no_answer_masks_itself_or_escapes_as_an_exception(question, answer):
    tests = ["assert f(??) == 7"] if question == "input" else ["f(3)"]
    s = score(CODE, tests, answer, question=question)
    assert s.status in ("ok", "parse_error") and s.reward is not None and s.reward < 1.0, s
    assert len(s.message) < 1000 and all(len(d.predicted) < 1000 for d in s.details)


@given(
    st.one_of(
        st.text(alphabet="{}[]()'\",:0123456789-.eEjxy \n\\<>/abnrsw", max_size=300),
        values.map(lambda v: tracer.render(tracer.encode(v))),
        st.builds(lambda v: f"{{'y': {tracer.render(tracer.encode(v))}}}", values),
        st.builds(lambda v: f"[{{'line': 4, 'changes': {{'y': {tracer.render(tracer.encode(v))}}}}}]", values),
    ),
    st.sampled_from(["output", "final", "steps", "lines", "input"]),
    st.sampled_from(["typed", "coderl_plus"]),
)
@settings(max_examples=200, deadline=None)
def test_no_answer_is_ever_masked(answer, question, mode):
    tests = ["assert f(??) == 7"] if question == "input" else ["f(3)"]
    s = score(CODE, tests, answer, question=question, mode=mode)
    assert not s.masked, s


def test_a_cache_entry_is_small_whatever_the_run_printed_or_raised():
    huge = "x" * 3_000_000
    result = Result(
        status="failed",
        message=huge,
        tests=[sandbox.TestOutcome(test="assert f() == 1", passed=False, message=huge)] * 3,
        stdout=huge,
        stderr=huge,
        exception=tracer.ExceptionInfo("ValueError", huge),
        tampered=[huge] * 100,
    )
    for program in (False, True):
        size = len(msgspec.msgpack.encode(cache.kept(result, program)))
        assert size < (cache.KEPT_OUTPUT + 64_000 if program else 64_000)
    kept = cache.kept(result)
    assert kept.message.endswith("more characters]") and kept.tampered[-1] == "... and 80 more"
    assert cache.kept(Result(status="ok", message="short")) == Result(status="ok", message="short")


def test_the_cache_holds_bounded_bytes_for_real_runs(pool):
    store = cache.ResultCache(max_bytes=4 << 20)
    flood = "import sys\nsys.stderr.write('e' * 400_000)\nprint('o' * 900_000)\nraise ValueError('v' * 400_000)"
    asserts = "def f():\n    return 'z' * 900_000"
    from sandbox import Job

    jobs = [
        Job(mode="script", code=flood),
        Job(mode="call", code=flood + "\ndef f():\n    pass", call="f()"),
        Job(mode="asserts", code=asserts, tests=["assert f() == 1", "assert f() == 2"]),
    ]
    results = store.run(jobs, pool)
    assert [r.status for r in results] == ["error", "error", "failed"]
    sizes = [store.entries[store.key(job)][1] for job in jobs]
    assert store.bytes == sum(sizes) and max(sizes[1:]) < 64_000 and sizes[0] < 500_000
    assert all(len(r.message) < 3000 and len(r.stderr) < 3000 for r in results)
    assert all(len(t.message) < 3000 for t in results[2].tests)
    small = cache.ResultCache(max_bytes=200_000)  # an entry over an eighth of the cache is used, not kept
    assert small.run(jobs[:1], pool)[0].status == "error" and not small.entries


# ---------------------------------------------------------------- 15. the reward server


def start_server(**kw):
    srv = RewardServer(("127.0.0.1", 0), max_pending=4, max_request_bytes=1 << 16, **kw)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    return srv, thread


def stop_server(srv):
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def server():
    srv, _ = start_server(read_timeout=2.0)
    yield srv
    stop_server(srv)


def request(srv, method, path, body=None, headers=None, timeout=60):
    """(status, decoded JSON body or None for HEAD) of one request; always JSON, or this fails."""
    host, port = srv.server_address[:2]
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        connection.request(method, path, body=data, headers=headers or {})
        response = connection.getresponse()
        raw = response.read()
        assert response.getheader("Content-Type") == "application/json", (method, path, raw[:200])
        return response.status, (json.loads(raw) if method != "HEAD" else None)
    finally:
        connection.close()


def raw_exchange(srv, data, timeout=20):
    """Send raw bytes, then read until the server closes the connection (or `timeout`)."""
    with socket.create_connection(srv.server_address[:2], timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:  # the server hung up on bytes it did not read
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


def json_reply(raw):
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert b"Content-Type: application/json" in head, raw[:300]
    return status, json.loads(body)


TRACE_LABEL = {
    "kind": "trace",
    "code": "def f(x):\n    y = x * 2\n    return y + 1",
    "tests": ["f(3)"],
    "question": "final",
}


@pytest.mark.parametrize(
    "body",
    [
        {"query": ["P:{'y': 6}", "P:{'y': 6}"], "prompts": ["P:"], "labels": [json.dumps(TRACE_LABEL)] * 2},
        {"query": ["P:{'y': 6}"], "prompts": ["P:", "P:"], "labels": [json.dumps(TRACE_LABEL)]},
        {"query": ["P:{'y': 6}"], "prompts": ["P:"], "labels": [json.dumps(TRACE_LABEL)] * 3},
    ],
)
def test_lists_of_different_lengths_are_refused(server, body):
    status, reply = request(server, "POST", "/", body)
    assert status == 400 and "one entry per sample" in reply["error"]


def test_labels_that_say_nothing_usable_are_masked_and_say_why(server):
    labels = [
        "not json at all",
        json.dumps({"kind": "trace", "tests": ["f(3)"], "question": "final"}),  # no code
        json.dumps({**TRACE_LABEL, "question": "auto"}),
        json.dumps({**TRACE_LABEL, "kind": "rvlr"}),
        json.dumps(TRACE_LABEL),
    ]
    status, reply = request(server, "POST", "/", {"query": ["P:{'y': 6}"] * 5, "prompts": ["P:"] * 5, "labels": labels})
    assert status == 200
    assert reply["rewards"] == [0.0, 0.0, 0.0, 0.0, 1.0] and reply["extra_logs"]["masked"] == [1.0, 1.0, 1.0, 1.0, 0.0]
    messages = [integrations.openrlhf_reward(["P:x"], ["P:"], [label]) for label in labels[:4]]
    assert all(m["extra_logs"]["masked"] == [1.0] for m in messages)
    items = [integrations.make_item("x", json.loads(label)) for label in labels[1:4]]
    assert [i.status for i in items] == ["invalid_task"] * 3
    assert "needs its code" in items[0].message and "name its question" in items[1].message
    assert "unknown kind 'rvlr'" in items[2].message and "tests" not in items[2].message


@pytest.mark.parametrize("length", ["-5", "-1", "abc", "1e3", "+12", "0x10", " 12 x"])
def test_a_bad_content_length_is_a_json_400(server, length):
    raw = raw_exchange(server, f"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n".encode())
    status, reply = json_reply(raw)
    assert status == 400 and "Content-Length" in reply["error"]


def test_missing_chunked_and_oversized_bodies(server):
    assert json_reply(raw_exchange(server, b"POST / HTTP/1.1\r\nHost: x\r\n\r\n"))[0] == 411
    chunked = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    assert json_reply(raw_exchange(server, chunked))[0] == 411
    big = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n"
    assert json_reply(raw_exchange(server, big))[0] == 413


def test_a_body_shorter_than_its_length_frees_its_thread(server):
    started = time.monotonic()
    replies = []
    for _ in range(3):  # more than one stalled client at once holds nothing for long
        raw = raw_exchange(server, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{", timeout=30)
        replies.append(json_reply(raw))
    assert [status for status, _ in replies] == [408] * 3
    assert "did not arrive" in replies[0][1]["error"] and time.monotonic() - started < 30
    assert server.pending == 0 and request(server, "GET", "/health")[0] == 200
    slow = socket.create_connection(server.server_address[:2], timeout=30)  # headers that never end
    try:
        slow.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n")
        assert slow.recv(100) == b""  # the server hangs up after its read timeout
    finally:
        slow.close()


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "TRACE", "FROB"])
@pytest.mark.parametrize("path", ["/", "/batch", "/health", "/nope", "/health/../x?y=1"])
def test_every_method_on_every_path_answers_json(server, method, path):
    body = b"{}" if method in ("POST", "PUT", "PATCH") else None
    status, reply = request(server, method, path, body)
    expected = {
        "/health": 200 if method in ("GET", "HEAD") else 405,
        "/": 400 if method == "POST" else 405,
        "/batch": 400 if method == "POST" else 405,
    }.get(path, 404)
    if method == "FROB":
        expected = 501
    assert status == expected, (method, path, reply)
    if method != "HEAD":
        assert ("error" in reply) == (status != 200)


@pytest.mark.parametrize(
    "raw",
    [
        b"garbage\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
        b"GET /" + b"x" * 70_000 + b" HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 200 + b"\r\n",
    ],
)
def test_malformed_requests_get_json_errors(server, raw):
    status, reply = json_reply(raw_exchange(server, raw))
    assert 400 <= status < 600 and reply["error"]


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000,
        b"{" * 60_000,
        json.dumps({"query": [1, 2]}).encode(),
        json.dumps({"query": ["a"], "prompts": "P:"}).encode(),
        json.dumps({"query": ["a"], "labels": {"a": 1}}).encode(),
        json.dumps([1, 2]).encode(),
    ],
)
def test_malformed_bodies_are_400(server, body):
    srv = server
    srv.max_request_bytes = 1 << 20
    status, reply = request(srv, "POST", "/", body)
    assert status == 400 and reply["error"]


def test_scores_that_json_cannot_hold_are_still_json(server):
    items = [
        {"code": CODE, "tests": ["f(3)"], "predicted_trace": answer, "question": "output"}
        for answer in ("1j", "{(1, 2): 3}", "{'a': {1j}}", "range(3)")
    ]
    status, reply = request(server, "POST", "/batch", {"items": items})
    assert status == 200 and [s["status"] for s in reply["scores"]] == ["ok"] * 4
    assert reply["scores"][0]["prediction"] == "1j"
