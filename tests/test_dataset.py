"""Datasets from the command line: `execalign tasks build` turns CRUXEval into rows for TRL and verl that load
with pyarrow (and `datasets` where installed) and whose gold answers score 1.0; `execalign score --batch`."""

import json

import pytest

from rewards import dataset, integrations, score, score_batch
from rewards.cli import main
from tests.conftest import CRUXEVAL, load_cruxeval

parquet = pytest.importorskip("pyarrow.parquet", reason="pyarrow is in the test extra")

QUESTIONS = "final,output,steps,lines,state,next,coverage,bundle"


@pytest.fixture(autouse=True)
def on_test_pool(pool, monkeypatch):
    monkeypatch.setattr("sandbox.default_pool", lambda: pool)


@pytest.fixture(scope="module")
def built(tmp_path_factory, pool):
    """CRUXEval built through the CLI into Parquet, and its first 100 functions into JSONL."""
    rows = load_cruxeval()  # skips, saying why, without the corpus
    folder = tmp_path_factory.mktemp("datasets")
    (folder / "first.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:100]))
    mp = pytest.MonkeyPatch()
    mp.setattr("sandbox.default_pool", lambda: pool)
    try:
        for source, out in ((CRUXEVAL, "tasks.parquet"), (folder / "first.jsonl", "first_tasks.jsonl")):
            assert main(["tasks", "build", str(source), "-o", str(folder / out), "--question", QUESTIONS]) == 0
    finally:
        mp.undo()
    return folder


def test_cruxeval_builds_loads_and_every_gold_answer_scores_one(built):
    rows = parquet.read_table(built / "tasks.parquet").to_pylist()
    first = dataset.read_rows(built / "first_tasks.jsonl")
    assert first == [r for r in rows if r["extra_info"]["item"] < 100]  # the same rows in either format
    assert {r["question"] for r in rows} == set(QUESTIONS.split(","))
    assert len(rows) > 800 * 6
    scores = score_batch([dict(r["score_args"], predicted_trace=r["answer"]) for r in rows])
    bad = [(r["question"], s) for r, s in zip(rows, scores) if (s.status, s.reward) != ("ok", 1.0)]
    assert bad == []
    first = rows[0]
    assert score(**first["score_args"], predicted_trace=first["answer"]).reward == 1.0


def test_the_columns_trl_and_verl_read(built):
    rows = dataset.read_rows(built / "tasks.parquet")
    row = next(r for r in rows if r["question"] == "bundle")
    assert row["prompt"] == [{"role": "user", "content": row["prompt"][0]["content"]}]
    assert (row["kind"], row["data_source"], row["ability"]) == ("trace", "execalign", "code_execution")
    assert row["reward_model"]["style"] == "rule" and len(row["probes"]) == 3
    assert set(row["extra_info"]) == {"index", "item", "id", "seed", "template"} and row["extra_info"]["id"].startswith(
        "sample_"
    )
    verl = integrations.compute_score(
        row["data_source"], row["answer"], row["reward_model"]["ground_truth"], row["extra_info"]
    )
    assert verl["score"] == 1.0 and verl["masked"] == 0.0
    sample = [r for r in rows if r["question"] in ("state", "next", "final")][:6]
    columns = {key: [r[key] for r in sample] for key in sample[0] if key != "prompt"}
    trl = integrations.TRLReward()(
        prompts=[r["prompt"] for r in sample], completions=[r["answer"] for r in sample], **columns
    )
    assert trl == [1.0] * len(sample)


def test_the_datasets_library_loads_it(built):
    datasets = pytest.importorskip("datasets", reason="the datasets library is not installed here")
    for name, kind in (("tasks.parquet", "parquet"), ("first_tasks.jsonl", "json")):
        loaded = datasets.load_dataset(kind, data_files=str(built / name), split="train")
        row = loaded[len(loaded) // 2]
        assert score(**row["score_args"], predicted_trace=row["answer"]).reward == 1.0


def test_score_batch_from_the_command_line(built, tmp_path, capsys):
    capsys.readouterr()
    out = tmp_path / "scores.jsonl"
    assert (
        main(["score", "--batch", str(built / "first_tasks.jsonl"), "--prediction-field", "answer", "-o", str(out)])
        == 0
    )
    err = capsys.readouterr().err
    scores = [json.loads(line) for line in out.read_text().splitlines()]
    assert scores and all(s["reward"] == 1.0 for s in scores) and scores[3]["row"] == 3
    assert "sandbox:" in err
    table = err[err.index("question") :].splitlines()
    assert table[-1].split()[:4] == ["all", str(len(scores)), "1.000", str(len(scores))]


def test_skipped_rows_are_counted_by_reason_and_bad_input_is_one_line(tmp_path, capsys):
    rows = [
        {"code": "def f(x):\n    y = x + 1\n    return y", "input": "1", "id": "ok"},
        {"code": "def f(x):\n    return 1 / x", "call": "f(0)"},
        {"code": "def f(x):\n    return x", "call": ["f(1)", "f(2)"]},
        {"code": "print(int(input()) * 2)", "stdin": "21"},
        {"id": "no code"},
        {"code": "def f(x):\n    return x"},
    ]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out.jsonl"
    assert main(["tasks", "build", str(source), "-o", str(out), "--kind", "final,next", "--per-item", "2"]) == 0
    err = capsys.readouterr().err
    built = dataset.read_rows(out)
    assert {r["extra_info"]["item"] for r in built} == {0, 2, 3}
    assert "sandbox:" in err and f"wrote {len(built)} tasks from 6 items" in err
    for reason in ("the code did not run cleanly", "no code", "no input", "no variable worth asking about"):
        assert reason in err, err
    assert main(["tasks", "build", str(source), "-o", str(tmp_path / "o.parquet"), "--question", "output"]) == 2
    assert "separate files" in capsys.readouterr().err  # call and stdin tasks: two `tests` types
    assert main(["tasks", "build", str(source), "-o", str(out), "--question", "nonsense"]) == 2
    assert "unknown question" in capsys.readouterr().err
    (tmp_path / "bad.jsonl").write_text('{"code": 1}\nnot json\n')
    assert main(["tasks", "build", str(tmp_path / "bad.jsonl"), "-o", str(out)]) == 2
    assert "bad.jsonl:2: not JSON" in capsys.readouterr().err
    assert main(["score", "--batch", str(tmp_path / "missing.jsonl")]) == 2


def test_score_batch_takes_plain_items_and_says_when_rows_are_masked(tmp_path, capsys):
    source = tmp_path / "items.jsonl"
    items = [
        {"code": "def f(x):\n    y = x * 2\n    return y", "tests": ["f(3)"], "prediction": "{'y': 6}"},
        {"code": "def f(x):\n    return x", "tests": ["f(3"], "prediction": "3"},
        {
            "code": "def f(x):\n    return x",
            "tests": ["f(3)"],
            "completion": [{"role": "assistant", "content": "3"}],
            "question": "output",
        },
    ]
    source.write_text("".join(json.dumps(i) + "\n" for i in items))
    assert main(["score", "--batch", str(source)]) == 1  # the second row's tests are malformed
    out, err = capsys.readouterr()
    scores = [json.loads(line) for line in out.splitlines()]
    assert [(s["status"], s["reward"]) for s in scores] == [("ok", 1.0), ("invalid_task", None), ("ok", 1.0)]
    assert "invalid_task 1" in err


def test_a_task_row_without_an_answer_says_so_and_rows_keep_every_field_of_score(built, tmp_path):
    rows = dataset.read_rows(built / "first_tasks.jsonl")[:2]
    missing = dataset.score_rows(rows)  # `answer` is the gold answer, never taken as the prediction
    assert [(s.status, s.reward) for s in missing] == [("invalid_task", None)] * 2
    assert "no prediction" in missing[0].message and "predicted_trace" in missing[0].message
    assert "no 'response'" in dataset.score_rows(rows, "response")[0].message
    assert [s.reward for s in dataset.score_rows([dict(r, completion=r["answer"]) for r in rows])] == [1.0, 1.0]
    code = "def g(x):\n    return x + 1"
    plain = [{"code": code, "tests": ["assert g(1) == 2"], "entry_points": names} for names in (["g"], ["h"])]
    assert [s.reward for s in dataset.score_rows(plain)] == [1.0, 0.0]  # h is not in the solution
