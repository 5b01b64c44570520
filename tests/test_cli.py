"""`execalign trace`: a person's view of a run, and machine formats."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import msgspec
import pytest

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


# ---------------------------------------------------------------- behaving like python


def execalign_process(*args, stdin=None, timeout=120, **kwargs):
    """`execalign ARGS` in a child process (console script, or the module where it is not installed)."""
    script = pathlib.Path(sys.executable).with_name("execalign")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "rewards.cli"]
    return subprocess.run(
        [*command, *args],
        input=stdin,
        capture_output=True,
        timeout=timeout,
        env={**os.environ, "NO_COLOR": "1"},
        **kwargs,
    )


def test_the_programs_stdin_and_stdout_are_real_streams(tmp_path):
    """The standard library's base64.py reads sys.stdin.buffer and writes sys.stdout.buffer."""
    import base64

    run = execalign_process("trace", base64.__file__, stdin=b"hello\n")
    assert run.returncode == 0, run.stderr
    assert run.stdout == b"aGVsbG8K\n"
    assert b"out> aGVsbG8K" in run.stderr  # the listing shows what the program wrote, where it wrote it
    program = write(
        tmp_path,
        "import os, sys\n"
        "sys.stdout.reconfigure(line_buffering=True)\n"
        "sys.stdout.buffer.write(b'bytes\\n')\n"
        "sys.stdout.flush()\n"
        "os.write(sys.stdout.fileno(), b'fd\\n')\n"
        "print(sys.stdin.buffer.read().upper().decode(), sys.stdout.encoding, end='')\n",
    )
    run = execalign_process("trace", program, "--format", "json", "-o", str(tmp_path / "t.json"), stdin=b"abc")
    assert run.returncode == 0, run.stderr
    assert run.stdout.decode().splitlines() == ["bytes", "fd", "ABC utf-8"]
    t = tracer.Trace.from_json((tmp_path / "t.json").read_bytes())
    assert t.stdout == "bytes\nABC utf-8"  # what went through sys.stdout (the fd write bypassed it, as it would)


def test_captured_streams_behave_as_in_memory_streams():
    t = tracer.trace(
        "import io, sys\n"
        "sys.stdout.buffer.write('é\\n'.encode())\n"
        "data = sys.stdin.buffer.read()\n"
        "try:\n    sys.stdout.fileno()\nexcept io.UnsupportedOperation:\n    print('no fd')\n",
        stdin="in",
    )
    assert t.exception is None and t.stdout == "é\nno fd\n"
    assert tracer.to_python(t.frames[0].locals["data"]) == b"in"


def test_output_cap_counts_bytes_and_never_cuts_a_character(backend):
    t = tracer.trace("print('é' * 10)", backend=backend, max_output=5)  # 2 bytes each
    assert t.stdout == "éé" and t.stdout_more == 16


def test_stdout_at_says_which_step_wrote_what(backend):
    t = tracer.trace("def f():\n    print('in f')\n    return 1\nprint('a')\nf()\nprint('b')", backend=backend)
    assert [(t.steps[i].line, t.stdout[:n]) for i, n in t.stdout_at] == [
        (4, "a\n"),
        (2, "a\nin f\n"),
        (6, "a\nin f\nb\n"),
    ]


def test_output_printed_by_a_call_shows_after_the_call_line(tmp_path, capsys):
    prog = write(tmp_path, "def f(x):\n    print('computing', x)\n    return x * 2\n\nprint('result', f(3))\n")
    assert main(["trace", prog, "--color", "never"]) == 0
    err = capsys.readouterr().err.splitlines()
    call = next(i for i, line in enumerate(err) if ">>> call f(x=3)" in line)
    computing = next(i for i, line in enumerate(err) if "out> computing 3" in line)
    result = next(i for i, line in enumerate(err) if "out> result 6" in line)
    back = next(i for i, line in enumerate(err) if "<<< return 6" in line)
    assert call < computing < back < result


def test_call_runs_after_a_program_that_exits(tmp_path, capsys):
    prog = write(tmp_path, "import sys\ndef f(x):\n    return x + 1\nif __name__ == '__main__':\n    sys.exit(3)\n")
    status = main(["trace", prog, "--call", "f(1)", "--format", "json", "-o", str(tmp_path / "t.json")])
    t = tracer.Trace.from_json((tmp_path / "t.json").read_bytes())
    assert status == 0 and tracer.to_python(t.returned) == 2
    assert "the program exited before --call f(1); the call ran after it" in capsys.readouterr().err
    prog = write(tmp_path, "def f(x):\n    return x\nraise KeyError('k')\n")
    assert main(["trace", prog, "--call", "f(1)"]) == 1
    assert "--call f(1) did not run: the program raised KeyError" in capsys.readouterr().err


def test_function_that_matches_nothing_warns(tmp_path, capsys):
    main(["trace", write(tmp_path), "--function", "nope", "--", "1"])
    err = capsys.readouterr().err
    assert "execalign trace: no function named nope ran (functions that ran: <listcomp>, total)" in err or (
        "execalign trace: no function named nope ran (functions that ran: total)" in err
    )


def test_data_formats_go_to_stdout_and_the_programs_stdout_to_stderr(tmp_path, capsys):
    prog = write(tmp_path)
    assert main(["trace", prog, "--format", "json", "--", "3"]) == 1
    out, err = capsys.readouterr()
    t = tracer.Trace.from_json(out)
    assert t.stdout == "sum 3\n" and err.startswith("sum 3\n")
    assert main(["trace", prog, "--format", "jsonl", "-o", "-", "--", "3"]) == 1
    out, err = capsys.readouterr()
    assert json.loads(out.splitlines()[-1])["trace"]["stdout"] == "sum 3\n" and "sum 3" in err
    assert main(["trace", prog, "--format", "text", "-o", "-", "--", "3"]) == 1
    out, err = capsys.readouterr()
    assert "<<< return 3" in out and "sum 3" in err and "<<<" not in err
    run = execalign_process("trace", prog, "--format", "msgpack", "--", "4")
    assert tracer.Trace.from_msgpack(run.stdout).stdout == "sum 4\n" and run.stderr.startswith(b"sum 4\n")


LOOP = "import time\nprint('ready', flush=True)\nn = 0\nwhile True:\n    n += 1\n    time.sleep(0.001)\n"


def test_timeout_stops_the_program_and_keeps_the_trace(tmp_path):
    prog = write(tmp_path, LOOP)
    run = execalign_process("trace", prog, "--timeout", "1", "--format", "json", "-o", str(tmp_path / "t.json"))
    assert run.returncode == 124
    assert b"ran past --timeout 1 s and was stopped" in run.stderr
    t = tracer.Trace.from_json((tmp_path / "t.json").read_bytes())
    assert t.exception.type == "ProgramTimeout" and any(s.line == 5 for s in t.steps)


@pytest.mark.parametrize(
    ("signum", "status", "what"), [(signal.SIGTERM, 143, "SystemExit"), (signal.SIGINT, 130, "KeyboardInterrupt")]
)
def test_sigterm_and_ctrl_c_still_write_the_trace(tmp_path, signum, status, what):
    prog = write(tmp_path, LOOP)
    script = pathlib.Path(sys.executable).with_name("execalign")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "rewards.cli"]
    out = tmp_path / "t.json"
    with subprocess.Popen(
        [*command, "trace", prog, "--format", "json", "-o", str(out), "--timeout", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as child:
        try:
            assert child.stdout.readline() == b"ready\n"
            time.sleep(0.3)
            child.send_signal(signum)
            _, err = child.communicate(timeout=60)
        finally:
            child.kill()
    assert child.returncode == status, err
    t = tracer.Trace.from_json(out.read_bytes())
    assert any(s.event == "exception" and s.exception.type == what for s in t.steps)
    assert tracer.to_python(t.frames[0].locals["n"]) > 0


def test_max_steps_stops_recording_not_the_program(tmp_path, capsys):
    prog = write(tmp_path, "for i in range(1000):\n    pass\nprint('finished', i)\n")
    assert main(["trace", prog, "--max-steps", "10"]) == 0
    out, err = capsys.readouterr()
    assert out == "finished 999\n"
    assert "recording stopped after 10 steps (--max-steps); the program ran on untraced" in err
    assert "out> finished 999" in err  # written after recording stopped: shown after the last step
    help_text = capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["trace", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "stop recording after N steps; the program itself runs on to its end (default: 100000)" in help_text


def test_module_and_package_run_as_python_m(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "modules", dict(sys.modules))  # the package imported here is forgotten after
    package = tmp_path / "execalign_demo_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "helper.py").write_text("def twice(x):\n    return 2 * x\n")
    (package / "__main__.py").write_text(
        "import sys\nfrom .helper import twice\nprint(twice(int(sys.argv[1])), __name__, __package__)\n"
    )
    (package / "tool.py").write_text("import sys\nprint('tool', sys.argv[1:])\n")
    assert main(["trace", "-m", "execalign_demo_pkg", "--", "21"]) == 0
    out, err = capsys.readouterr()
    assert out == "42 __main__ execalign_demo_pkg\n" and "print(twice(" in err
    assert main(["trace", "-m", "execalign_demo_pkg.tool", "--", "a", "b"]) == 0
    assert capsys.readouterr().out == "tool ['a', 'b']\n"
    assert main(["trace", "-m", "no_such_module_here"]) == 1
    assert "No module named no_such_module_here" in capsys.readouterr().err
    run = execalign_process(
        "trace", "-m", "json.tool", "--format", "json", "-o", str(tmp_path / "t.json"), stdin=b'{"a": [1]}'
    )
    assert run.returncode == 0 and json.loads(run.stdout) == {"a": [1]}


def test_a_directory_with_main_runs_it(tmp_path, capsys):
    app = tmp_path / "app"
    app.mkdir()
    (app / "__main__.py").write_text("import sys\nfrom util import name\nprint(name, sys.argv[1:])\n")
    (app / "util.py").write_text("name = 'app'\n")
    assert main(["trace", str(app), "--", "x"]) == 0
    assert capsys.readouterr().out == "app ['x']\n"
    (tmp_path / "empty").mkdir()
    assert main(["trace", str(tmp_path / "empty")]) == 2
    assert "can't find '__main__' module" in capsys.readouterr().err


@pytest.mark.parametrize(
    "content", [b"\x7fELF\x02\x01\x01\x00\x00\x00\xff\xfe", b"x = '\xe9t\xe9'\n", b"# -*- coding: klingon -*-\nx = 1\n"]
)
def test_a_binary_or_undecodable_file_is_one_line(tmp_path, capsys, content):
    path = tmp_path / "data.py"
    path.write_bytes(content)
    assert main(["trace", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not Python source text" in err and "Traceback" not in err


def test_program_arguments_without_dashes_get_a_hint(tmp_path, capsys):
    prog = write(tmp_path)
    with pytest.raises(SystemExit) as stop:
        main(["trace", prog, "1", "2"])
    assert stop.value.code == 2
    assert f"arguments for the program go after --: execalign trace {prog} -- 1 2" in capsys.readouterr().err


def test_listing_shows_changed_attributes_and_a_normal_exit_is_not_an_error(tmp_path, capsys):
    prog = write(
        tmp_path,
        "import sys\n"
        "class Reader:\n"
        "    def __init__(self, text):\n"
        "        self.text = text\n"
        "        self.pos = 0\n"
        "        self.seen = {}\n"
        "    def advance(self):\n"
        "        self.pos += 3\n"
        "        self.seen['a'] = self.pos\n"
        "r = Reader('x' * 500)\n"
        "r.advance()\n"
        "sys.exit(0)\n",
    )
    assert main(["trace", prog, "--color", "never"]) == 0
    err = capsys.readouterr().err
    assert "self.pos = 3" in err and "self.seen['a'] = 3" in err
    assert "r.pos = 3" in err and "r = Reader(" in err.split("r.pos = 3")[0]
    assert "--- sys.exit(0)" in err and "<<< exit" in err
    assert "!!!" not in err and "uncaught" not in err and "raise SystemExit" not in err


def test_every_option_has_help_with_its_default_and_version(capsys):
    import argparse

    from rewards.cli import subcommands, version

    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers()
    for add in subcommands():
        add(commands)
    assert set(commands.choices) == {"trace", "view", "score", "serve", "tasks"}
    parsers = dict(commands.choices)
    for name, sub in list(parsers.items()):  # and the actions of a command's own subcommands (tasks build)
        for action in sub._actions:
            if isinstance(action, argparse._SubParsersAction):
                parsers.update({f"{name} {n}": p for n, p in action.choices.items()})
    assert "tasks build" in parsers
    for name, sub in parsers.items():
        text = " ".join(sub.format_help().split())
        for action in sub._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            assert action.help, f"{name} {action.option_strings or action.dest} has no help"
            if action.option_strings and action.default not in (None, False, []):
                assert f"default: {action.default}" in text, f"{name} {action.option_strings}: default not said"
            elif action.option_strings and not isinstance(action, argparse._StoreTrueAction):
                assert "default" in action.help, f"{name} {action.option_strings}: default not said"
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out == f"execalign {version()}\n" and version()[0].isdigit()


README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_readme_trace_format_example_is_a_real_trace():
    text = README.read_text()
    section = text[text.index("#### The trace format") :]
    example = section[section.index("```json") + len("```json") : section.index("```\n", section.index("```json") + 7)]
    documented = tracer.Trace.from_json(example)
    real = tracer.trace("def f(x):\n    y = x * 2\n    print(y)\n    return y + 1", "f(3)", filename="ex.py")
    assert msgspec.structs.replace(real, backend=documented.backend, python=documented.python) == documented
    for field in msgspec.structs.fields(tracer.Trace):
        assert f"`{field.name}`" in section.split("What is traced")[0], f"Trace.{field.name} is not described"


def test_readme_says_what_each_score_field_means():
    from rewards import Score

    text = README.read_text()
    table = text[text.index("What a `Score` says") :].split("\n\n")[1]
    for field in msgspec.structs.fields(Score):
        assert f"| `{field.name}` |" in table, f"Score.{field.name} is not in the README's table"
