"""`execalign trace`: a person's view of a run, and machine formats."""

import json
import os
import pathlib
import subprocess
import sys

import msgspec

import tracer
from rewards.cli import main  # the `execalign` command

PROGRAM = """
import sys

def total(xs):
    s = 0
    for x in xs:
        s += x
    return s

print("sum", total([int(a) for a in sys.argv[1:]]))
sys.exit(len(sys.argv) - 1)
"""


def write(tmp_path, text=PROGRAM, name="prog.py"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_listing_shows_lines_values_and_keeps_output_and_status(tmp_path, capsys):
    status = main(["trace", write(tmp_path), "--color", "never", "--", "2", "5"])
    out, err = capsys.readouterr()
    assert status == 2
    assert out == "sum 7\n"
    assert ">>> call total(xs=[2, 5])" in err
    assert "        7 |         s += x" in err  # depth 1: indented one level
    assert "s = 7" in err
    assert "<<< return 7" in err
    assert "\x1b[" not in err


def test_color_always(tmp_path, capsys):
    main(["trace", write(tmp_path), "--color", "always"])
    assert "\x1b[32m" in capsys.readouterr().err


def test_function_filter_rebases_depth(tmp_path, capsys):
    main(["trace", write(tmp_path), "--function", "total", "--", "1"])
    err = capsys.readouterr().err
    assert err.startswith(">>> call total(xs=[1])")
    assert "<module>" not in err.split("\n")[0] and "print(" not in err


def test_json_jsonl_msgpack_outputs(tmp_path, capsys):
    prog = write(tmp_path)
    main(["trace", prog, "--format", "json", "-o", str(tmp_path / "t.json"), "--", "3"])
    t = tracer.Trace.from_json((tmp_path / "t.json").read_bytes())
    assert t.exit_code == 1 and t.stdout == "sum 3\n"
    main(["trace", prog, "--format", "msgpack", "-o", str(tmp_path / "t.mp"), "--", "3"])
    assert tracer.Trace.from_msgpack((tmp_path / "t.mp").read_bytes()) == t
    main(["trace", prog, "--format", "jsonl", "-o", str(tmp_path / "t.jsonl"), "--", "3"])
    lines = (tmp_path / "t.jsonl").read_text().splitlines()
    steps = [msgspec.json.decode(line, type=tracer.Step) for line in lines[:-1]]
    assert steps == t.steps
    assert json.loads(lines[-1])["trace"]["exit_code"] == 1


def test_max_steps_and_call(tmp_path, capsys):
    prog = write(tmp_path, "def f(n):\n    return n * 2\n")
    main(["trace", prog, "--call", "f(21)", "--format", "json", "-o", str(tmp_path / "t.json")])
    t = tracer.Trace.from_json((tmp_path / "t.json").read_bytes())
    assert tracer.to_python(t.returned) == 42
    main(["trace", write(tmp_path), "--max-steps", "3", "--format", "json", "-o", str(tmp_path / "t.json")])
    assert len(tracer.Trace.from_json((tmp_path / "t.json").read_bytes()).steps) == 3


def test_errors_are_one_line_without_traceback(tmp_path, capsys):
    assert main(["trace", str(tmp_path / "missing.py")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such file" in err
    assert main(["trace", write(tmp_path, "def f(:\n    pass\n")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "SyntaxError" in err and "Traceback" not in err


def test_uncaught_exception_prints_the_programs_traceback(tmp_path, capsys):
    assert main(["trace", write(tmp_path, "def f():\n    raise KeyError('k')\nf()\n")]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "KeyError: 'k'" in err


def test_listing_says_when_events_were_dropped_at_the_recursion_limit(tmp_path, capsys):
    program = "def down(n):\n    return down(n + 1)\ntry:\n    down(0)\nexcept RecursionError:\n    pass\n"
    main(["trace", write(tmp_path, program)])
    assert "events not recorded (the code was at the recursion limit)" in capsys.readouterr().err
    main(["trace", write(tmp_path)])
    assert "not recorded" not in capsys.readouterr().err


def test_console_script_is_installed(tmp_path):
    script = pathlib.Path(sys.executable).with_name("execalign")
    if not script.exists():
        import pytest

        pytest.skip("execalign console script not installed in this interpreter (pip install -e .)")
    run = subprocess.run(
        [str(script), "trace", write(tmp_path), "--", "4"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert run.returncode == 1 and run.stdout == "sum 4\n" and "s = 4" in run.stderr


def test_score_prints_the_score_as_json_with_its_question(tmp_path, capsys, pool, monkeypatch):
    from rewards.cli import main as execalign

    monkeypatch.setattr("sandbox.default_pool", lambda: pool)
    code = write(tmp_path, "def f(x):\n    y = x * 2\n    return y + 1\n")
    assert execalign(["score", code, "--test", "f(3)", "--prediction", "7", "--question", "output"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert (printed["reward"], printed["status"], printed["question"]) == (1.0, "ok", "output")
    assert execalign(["score", code, "--test", "f(3)", "--prediction", "{'y': 5}", "--task", "final"]) == 0
    assert json.loads(capsys.readouterr().out)["components"] == {"prediction": 0.0}
    assert execalign(["score", code, "--test", "f(3", "--prediction", "7"]) == 1
    assert json.loads(capsys.readouterr().out)["status"] == "invalid_task"
