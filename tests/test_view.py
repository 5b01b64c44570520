"""`execalign view`: the page's data, and the page itself in a real browser (headless Chromium).

The browser tests drive Debian's Chromium (`/usr/bin/chromium`, installed by `.ci/run`) with
playwright's Python package (the `browser` extra; never `playwright install`). Where either is
missing they skip, saying why, except under CI (CI=true), where they fail.
"""

import os
import pathlib
import re
import sys

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tracer
from rewards.cli import main as execalign
from tracer.view import page, page_data, write_html

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",  # root needs it
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

PROGRAM = """\
class Tally:
    def __init__(self):
        self.n = 0

    def bump(self, k):
        self.n += k
        return self.n


def total(xs):
    c = Tally()
    s = 0
    for x in xs:
        s += x
        c.bump(x)
    print("total", s)
    return s


pair = [1, 2]
shared = [pair, pair]
print("start")
result = total([3, 4])
del pair
print("done", result)
"""


def traced(tmp_path, text=PROGRAM, name="prog.py", **options):
    path = tmp_path / name
    path.write_text(text)
    return str(path), tracer.trace_file(str(path), **options)


# ---------------------------------------------------------------- the page's data


def decode_node(data, index):
    """A node of page_data written out (the page's `node()`, in Python)."""
    node = data["values"][index]
    if node[0] != -1:
        return node
    base = decode_node(data, node[1])
    items = base[2][: node[2]] + [0] * max(0, node[2] - len(base[2]))
    for i in range(0, len(node[3]), 2):
        items[node[3][i]] = node[3][i + 1]
    return [base[0], base[1], items, base[3], *base[4:]]


def as_value(data, index):
    """The Value a node stands for (to compare with the trace's own)."""
    node = decode_node(data, index)
    kind = data["kinds"][node[0]]
    if kind == "ref":
        return tracer.Value("ref", node[1])
    if not isinstance(node[2] if len(node) > 2 else None, list):
        return kind, node[1], node[2] if len(node) == 3 else 0  # a value shown as its text
    _, type_name, items, labels, more, ref_id = node
    values = [as_value(data, i) for i in items]
    if kind == "dict":
        return kind, type_name, [as_value(data, k) for k in labels], values, more, ref_id
    return kind, type_name, list(labels or []), values, more, ref_id


CONTAINERS = ("list", "tuple", "set", "frozenset", "dict", "object", "exception")


def expected(value):
    if value.t == "ref":
        return value
    plain = value.keys is None and value.attrs is None if value.t in CONTAINERS[:4] else value.attrs is None
    if value.t not in CONTAINERS or not (plain or value.t in ("object", "exception")):
        return value.t, tracer.render(msgspec.structs.replace(value, id=0)), value.id
    items = [expected(v) for v in value.items or []]
    if value.t == "dict":
        return value.t, value.type, [expected(k) for k in value.keys or []], items, value.more, value.id
    labels = list(value.attrs or {})
    items += [expected(v) for v in (value.attrs or {}).values()]
    return value.t, value.type, labels, items, value.more, value.id


def test_page_data_keeps_every_state_of_replay(tmp_path):
    _, t = traced(tmp_path)
    data = page_data(t)
    states = list(t.replay())
    assert len(data["steps"]["event"]) == len(states)
    for state, changes in zip(states, data["steps"]["changes"]):
        flat = changes or []
        shown = {data["names"][flat[i]]: as_value(data, flat[i + 1]) for i in range(0, len(flat), 2)}
        assert shown == {k: expected(v) for k, v in state.changed.items()}
    deleted = dict(zip(data["steps"]["deleted"][::2], data["steps"]["deleted"][1::2]))
    assert {i: [data["names"][n] for n in names] for i, names in deleted.items()} == {
        s.index: s.step.deleted for s in states if s.step.deleted
    }


edits = st.lists(st.tuples(st.integers(0, 45), st.integers(-5, 5)), max_size=6)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-5, 5), min_size=1, max_size=40), st.lists(edits, min_size=1, max_size=8))
def test_values_are_stored_once_and_edits_decode_to_the_full_value(start, changes):
    """Each version of a list mutated in place decodes to itself, however it was stored (whole or
    as an edit of the version before)."""
    lines = [f"    v = {start!r}"]
    for group in changes:
        lines += [f"    v[{i} % len(v)] = {x}" if i < 40 else f"    v.append({x})" for i, x in group]
        lines.append("    v = v[:-1] if len(v) > 30 else v")
    t = tracer.trace("def f():\n" + "\n".join(lines) + "\n    return v\n", "f()")
    assert t.exception is None
    data = page_data(t)
    seen = [as_value(data, c[1]) for c in data["steps"]["changes"] if c and data["names"][c[0]] == "v"]
    assert seen == [expected(s.changed["v"]) for s in t.replay() if "v" in s.changed]
    assert len(data["values"]) == len({msgspec.json.encode(n) for n in data["values"]})  # no node twice


def test_large_traces_are_compact(tmp_path):
    """A list mutated in place costs about its change per step, not its length."""
    program = "a = list(range(150))\nfor i in range(2000):\n    a[i % 150] = i\n"
    _, t = traced(tmp_path, program)
    text = page(t)
    assert len(t.steps) > 4000
    assert len(text) < 120 * len(t.steps)
    data = len(text) - len(page(tracer.trace("pass")))  # the page less its code
    assert data < len(t.to_json())  # smaller than the trace's own JSON, which stores each step's edit


def test_the_page_embeds_no_closing_tag_and_no_remote_resource(tmp_path):
    _, t = traced(tmp_path, "s = '</script><script>alert(1)</script>'\n")
    text = page(t, title="<b>x</b>")
    assert text.count("</script>") == 2  # the data's and the viewer's own script elements
    assert "<b>x</b>" not in text
    assert "http://" not in text and "https://" not in text and "src=" not in text


def test_view_command_writes_the_page_and_prints_its_path(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path, _ = traced(tmp_path)
    assert execalign(["view", path, "--", "x"]) == 0
    out, err = capsys.readouterr()
    assert out == f"{tmp_path / 'prog.html'}\n"  # stdout has only the page's path
    assert "start" in err  # the program's own stdout went to stderr
    assert (tmp_path / "prog.html").read_text().startswith("<!DOCTYPE html>")
    saved = tmp_path / "t.json"
    assert execalign(["trace", path, "--format", "json", "-o", str(saved)]) == 0
    assert capsys.readouterr().out == "start\ntotal 7\ndone 7\n"  # with -o, the program's stdout is its own
    assert execalign(["view", str(saved), "-o", str(tmp_path / "again.html")]) == 0
    assert capsys.readouterr().out == f"{tmp_path / 'again.html'}\n"
    (tmp_path / "bad.json").write_text("{}")
    assert execalign(["view", str(tmp_path / "bad.json")]) == 2
    assert "is not a saved trace" in capsys.readouterr().err


def test_view_open_says_so_where_there_is_no_browser(tmp_path, capsys, monkeypatch):
    import webbrowser

    def no_browser(*args):
        raise webbrowser.Error("none")

    monkeypatch.setattr(webbrowser, "get", no_browser)
    path, _ = traced(tmp_path, "x = 1\n")
    assert execalign(["view", path, "-o", str(tmp_path / "x.html"), "--open"]) == 0
    assert "no web browser found here; open" in capsys.readouterr().err


# ---------------------------------------------------------------- in the browser


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install -e '.[browser]'; never `playwright install`)")
    if not os.path.exists(CHROMIUM):
        _unavailable(f"Chromium is not installed at {CHROMIUM} (apt-get install -y chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def _unavailable(why):
    if os.environ.get("CI") == "true":
        pytest.fail(f"the browser tests must run in CI: {why}")
    pytest.skip(why)


def open_page(browser, path, width=1400, height=850):
    page_ = browser.new_page(viewport={"width": width, "height": height})
    errors = []
    page_.on("pageerror", lambda e: errors.append(str(e)))
    page_.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page_.goto(pathlib.Path(path).as_uri())
    page_.wait_for_selector("#position")
    page_.errors = errors
    return page_


SHOWN = """() => ({
  position: document.getElementById('position').textContent,
  line: Number((document.querySelector('.src.current') || {dataset: {line: -1}}).dataset.line),
  vars: Object.fromEntries([...document.querySelectorAll('#vars > .var[data-name]')].map(
    v => [v.dataset.name, v.querySelector('.preview').textContent])),
  changed: [...document.querySelectorAll('#vars > .var.changed[data-name]')].map(v => v.dataset.name),
  stack: [...document.querySelectorAll('#stack li .fn')].map(x => x.textContent),
  stdout: document.getElementById('stdout').textContent,
})"""


def stack_of(t, step):
    names, frame = [], t.frames[step.frame]
    while True:
        names.append(frame.function)
        if frame.parent < 0:
            return names
        frame = t.frames[frame.parent]


def stdout_at(t, index):
    end = 0
    for step, n in t.stdout_at:
        if step <= index:
            end = n
    return t.stdout[:end]


def test_stepping_forward_shows_each_steps_line_variables_stack_and_output(browser, tmp_path):
    _, t = traced(tmp_path)
    shown_page = open_page(browser, write_html(str(tmp_path / "p.html"), t))
    for state in t.replay():
        if state.index:
            shown_page.keyboard.press("ArrowRight")
        shown = shown_page.evaluate(SHOWN)
        step = state.step
        assert shown["position"] == f"step {state.index + 1} / {len(t.steps)}"
        assert shown["line"] == step.line
        assert shown["vars"] == {k: tracer.render(v) for k, v in state.after.items()}
        assert shown["changed"] == [k for k in state.changed]
        assert shown["stack"] == stack_of(t, step)
        assert shown["stdout"] == stdout_at(t, state.index)
    assert shown_page.errors == []


def test_controls_over_out_back_run_to_line_slider_and_keys(browser, tmp_path):
    _, t = traced(tmp_path)
    p = open_page(browser, write_html(str(tmp_path / "p.html"), t))
    lines = PROGRAM.splitlines()
    call_line = lines.index("result = total([3, 4])") + 1
    p.click(f".src[data-line='{call_line}'] .no")  # run to the line that calls total
    assert p.evaluate(SHOWN)["line"] == call_line
    p.click("#over")  # over the whole call: the next line at module level
    shown = p.evaluate(SHOWN)
    assert shown["line"] == call_line + 1 and shown["stack"] == ["<module>"]
    assert shown["stdout"] == "start\ntotal 7\n"
    p.keyboard.press("Shift+N")  # back over it
    assert p.evaluate(SHOWN)["line"] == call_line
    bump_line = lines.index("        self.n += k") + 1
    p.click(f".src[data-line='{bump_line}'] .no")
    shown = p.evaluate(SHOWN)
    assert shown["stack"] == ["Tally.bump", "total", "<module>"] and shown["line"] == bump_line
    assert shown["vars"]["self"] == "Tally(n=3)" and shown["changed"] == ["self"]  # first bump: n 0 -> 3
    p.keyboard.press("o")  # out of bump: back in total, after the call
    shown = p.evaluate(SHOWN)
    assert shown["stack"] == ["total", "<module>"] and shown["line"] == lines.index("    for x in xs:") + 1
    p.click(f".src[data-line='{bump_line}'] .no", modifiers=["Shift"])  # back to it
    assert p.evaluate(SHOWN)["stack"][0] == "Tally.bump"
    p.click("#stack li:nth-child(2)")  # the caller's variables, as they were when it called
    assert p.evaluate(SHOWN)["vars"] == {"xs": "[3, 4]", "c": "Tally(n=0)", "s": "3", "x": "3"}
    p.keyboard.press("End")
    assert p.evaluate(SHOWN)["position"] == f"step {len(t.steps)} / {len(t.steps)}"
    p.keyboard.press("Home")
    assert p.evaluate(SHOWN)["position"] == f"step 1 / {len(t.steps)}"
    p.evaluate(
        "() => { const s = document.getElementById('slider'); s.value = 5; s.dispatchEvent(new Event('input')); }"
    )
    assert p.evaluate(SHOWN)["position"] == f"step 6 / {len(t.steps)}"
    assert p.evaluate("location.hash") == "#step=6"
    p.click(".src[data-line='1'] .no")  # line 1 (the class statement) does not run again
    assert "does not run after this step" in p.inner_text("#event")
    assert p.errors == []


def test_containers_expand_and_shared_references_show_as_such(browser, tmp_path):
    _, t = traced(tmp_path)
    p = open_page(browser, write_html(str(tmp_path / "p.html"), t))
    lines = PROGRAM.splitlines()
    start_line = lines.index('print("start")') + 1
    p.click(f".src[data-line='{start_line}'] .no")
    shared = p.query_selector("#vars > .var[data-name='shared']")
    assert shared.query_selector(".preview").inner_text() == "[#1=[1, 2], #1]"  # as render() writes it
    shared.query_selector("summary").click()
    rows = shared.query_selector_all(".tree > *")
    assert [r.query_selector(".key").inner_text() for r in rows] == ["[0]", "[1]"]
    assert rows[0].query_selector(".anchor").inner_text() == "#1="
    assert rows[1].query_selector(".ref").inner_text() == "\u2192 #1 (shared)"
    p.keyboard.press("ArrowRight")  # the expanded container stays open while stepping
    assert p.query_selector("#vars > .var[data-name='shared'] details").get_attribute("open") is not None
    assert p.errors == []
    _, t = traced(tmp_path, "a = [1]\na.append(a)\nx = 0\n", name="cycle.py")
    p = open_page(browser, write_html(str(tmp_path / "cycle.html"), t))
    p.keyboard.press("End")
    cycle = p.query_selector("#vars > .var[data-name='a']")
    assert cycle.query_selector(".anchor").inner_text() + cycle.query_selector(".preview").inner_text() == "#1=[1, #1]"
    cycle.query_selector("summary").click()
    assert cycle.query_selector(".tree .ref").inner_text() == "\u2192 #1 (a cycle: the container itself)"
    assert p.errors == []


VALUES = """\
import collections, decimal, enum, fractions

class Color(enum.Enum):
    RED = 1

class Node:
    def __init__(self, value):
        self.value = value
        self.next = self

Point = collections.namedtuple("Point", "x y")
inner = [1, 2]
values = {
    "atoms": [0, -1, 2**70, 1.5, -0.0, float("nan"), 1e16, 2j, True, None, "it's", b"\\x00b", range(1, 9, 2)],
    "containers": [(1,), (), set(), {3, 1}, frozenset({2}), {(1, 2): "t"}, bytearray(b"x")],
    "library": [collections.Counter("aab"), collections.deque([1], maxlen=3), Point(1, 2),
                collections.defaultdict(list), collections.OrderedDict(a=1), decimal.Decimal("1.5"),
                fractions.Fraction(1, 3), Color.RED],
    "shared": [inner, inner, [inner]],
    "objects": [Node(1), ValueError("bad", 2), KeyError("k")],
}
node = Node(2)
node.next = Node(3)
done = True
"""


def test_every_kind_of_value_shows_as_render_writes_it(browser, tmp_path):
    _, t = traced(tmp_path, VALUES, name="values.py")
    assert t.exception is None
    p = open_page(browser, write_html(str(tmp_path / "values.html"), t))
    p.keyboard.press("End")
    last = list(t.replay())[-1].after
    for name in ("values", "node", "inner"):
        full = p.evaluate(
            "name => { const v = document.querySelector(`#vars > .var[data-name=${name}]`);"
            " return (v.querySelector(':scope > * > .anchor, :scope > details > summary > .anchor') || {}).textContent"
            " + '|' + v.querySelector('.preview').textContent; }",
            name,
        )
        anchor, text = full.split("|", 1)
        want = tracer.render(last[name])
        shown = (anchor if anchor != "undefined" else "") + text
        assert shown == (want if len(want) <= 120 else want[:120] + "\u2026"), name
    entries = p.query_selector("#vars > .var[data-name='values']")
    entries.query_selector("summary").click()
    parts = {tracer.render(k): v for k, v in zip(last["values"].keys, last["values"].items)}
    rows = entries.query_selector_all(":scope > details > .tree > *")
    assert [r.query_selector(".key").inner_text() for r in rows] == list(parts)
    for row in rows:
        anchor = row.query_selector(".anchor")
        got = (anchor.inner_text() if anchor else "") + row.query_selector(".preview").inner_text()
        want = tracer.render(parts[row.query_selector(".key").inner_text()])
        want = want if len(want) <= 120 else want[:120] + "\u2026"
        # a part keeps the labels of the whole variable (#2 here may be #1 in the part alone)
        assert re.sub(r"#\d+", "#n", got) == re.sub(r"#\d+", "#n", want)
    assert p.errors == []


def test_a_large_trace_opens_and_moves(browser, tmp_path):
    program = "a = [0] * 20\nfor i in range(50_000):\n    a[i % 20] = i\n"
    _, t = traced(tmp_path, program)
    assert len(t.steps) == 100_000
    p = open_page(browser, write_html(str(tmp_path / "big.html"), t))
    p.keyboard.press("End")
    shown = p.evaluate(SHOWN)
    last = list(t.replay())[-1]
    assert shown["position"] == "step 100000 / 100000"
    want = tracer.render(last.after["a"])
    assert shown["vars"]["a"] == (want if len(want) <= 120 else want[:120] + "\u2026")
    p.evaluate(
        "() => { const s = document.getElementById('slider'); s.value = 54321; s.dispatchEvent(new Event('input')); }"
    )
    middle = list(t.replay())[54321]
    assert p.evaluate(SHOWN)["vars"]["i"] == tracer.render(middle.after["i"])
    assert p.errors == []


def test_prediction_diff_shows_the_rewards_alignment(browser, tmp_path, pool, monkeypatch, capsys):
    monkeypatch.setattr("sandbox.default_pool", lambda: pool)
    code = tmp_path / "f.py"
    code.write_text(
        "def f(xs):\n    total = 0\n    for x in xs:\n        total += x\n        if x > 3:\n"
        "            total -= 1\n    return total\n"
    )
    steps = [
        {"line": 2, "changes": {"total": 0}},
        {"line": 3, "changes": {"x": 3}},
        {"line": 4, "changes": {"total": 3}},
        {"line": 5, "changes": {}},
        {"line": 3, "changes": {"x": 5}},
        {"line": 4, "changes": {"total": 9}},  # wrong: 8
        {"line": 5, "changes": {}},
        {"line": 7, "changes": {}},  # the run does `total -= 1` first: missing
        {"line": 9, "changes": {}},  # extra: no such step
    ]
    out = tmp_path / "diff.html"
    status = execalign(
        ["view", str(code), "--call", "f([3, 5])", "--prediction", repr({"steps": steps}), "-o", str(out)]
    )
    assert status == 0
    assert "reward 0.7" in capsys.readouterr().err  # 7 of 10 steps right
    p = open_page(browser, str(out), width=1500, height=900)
    statuses = p.eval_on_selector_all("table.diff tr[data-row] td.status", "tds => tds.map(t => t.textContent)")
    assert statuses == ["match"] * 5 + ["wrong", "match", "missing", "missing", "match", "extra"]
    assert p.inner_text("#diff-summary .reward") == "reward 0.700"
    assert "prediction 0.700" in p.inner_text("#diff-summary")
    assert p.inner_text("tr.divergence .bad") == "total=9"
    p.keyboard.press("d")  # to the first divergence
    shown = p.evaluate(SHOWN)
    assert shown["line"] == 4 and shown["vars"]["total"] == "8" and shown["changed"] == ["total"]
    assert p.query_selector("tr.here.divergence") is not None
    p.click("table.diff tr[data-row='7']")  # a missing step: the run's `total -= 1`
    assert p.evaluate(SHOWN)["line"] == 6
    shot = pathlib.Path(os.environ.get("EXECALIGN_SCREENSHOT", tmp_path / "viewer.png"))
    p.keyboard.press("d")
    p.screenshot(path=str(shot))
    assert shot.stat().st_size > 20_000  # a picture of the page, to look at
    assert p.errors == []


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
