"""The step-through viewer: a Trace as one self-contained HTML page (`page`, `write_html`).

The page needs no server and no network (it works from file://): its data,
script and style are inside it (the script and style are `tracer/viewer/`).
It shows the source with the current line, the current frame's variables
(changed ones marked, containers expandable, shared references as such), the
call stack, stdout so far, and steps forward, back, over, out, to a line, by a
slider or by keyboard. Given a `comparison` (plain data: see below), it also
shows a predicted trajectory beside the real one.

The data is compact, so that a trace of 100,000 steps is a page of a few MB
that opens in about a second:
- `values`: every distinct value node once (hash-consed: a list that changed
  in one item shares all its other items with the previous version). An atom
  is `[kind, text]` (`[kind, text, id]` when a reference points to it; library
  values such as a deque or an array are shown as their text too), a container
  `[kind, type, [item ids], [key ids | attribute names], more, id]` (attribute
  names label the last items), a reference to a shared or cyclic value `[kind,
  id]`, and a container that differs from the variable's previous value in a few
  items `[-1, base node, length, [index, item id, ...]]`; kinds index `kinds`
  (`tracer.schema.KINDS`). The page labels shared values as `render` does.
- `names`: the variable names, once each.
- `steps`: columns `event`, `line`, `frame` (one number per step), `changes`
  (per step 0 or a flat [name, value, ...] of the new values, from
  `Trace.replay`), and sparse `deleted`, `returned`, `raised` ([step, ...] pairs).
- `frames`: `[function, file, first line, depth, parent, thread]`.
- `stdout` and `stdout_at` (`Trace.stdout_at`), the run's outcome, the sources.
The page rebuilds a frame's variables at a step from checkpoints every 64 of
the frame's steps, only for the frames it shows. Limits: the page holds the
whole trace in memory (the tracer's default cap is 100,000 steps; a million
steps still open, in some seconds); values are as recorded (cut at
`TraceLimits`); shared references are shown within one variable's value (the
trace encodes each variable on its own, so two names bound to one list are not
marked as such).

`comparison` (made by `rewards.diff`; the viewer only displays it): a mapping
with `reward` (float or None), `status`, `question`, `message`, `components`
({name: float}), `details` ([{item, score, predicted, actual}]), `rows`
([{status: match|wrong|missing|extra, step: index into Trace.steps or -1,
line, predicted: index into the prediction or -1, predicted_line, similarity,
values: [{name, predicted, actual, ok}]}], real and predicted steps in
alignment order) and `first_divergence` (index into rows, -1 if none).
"""

from __future__ import annotations

import html
import os
from collections import OrderedDict
from collections.abc import Mapping
from importlib import resources
from typing import Any

import msgspec

from .render import render
from .schema import KINDS, Trace, Value

_EVENTS = ("line", "call", "return", "exception")
_CONTAINERS = frozenset({"list", "tuple", "set", "frozenset", "dict", "object", "exception"})
_KIND = {kind: i for i, kind in enumerate(KINDS)}
_RECENT = 1024  # containers kept written out, as bases of the next versions


def page(
    trace: Trace,
    *,
    sources: Mapping[str, str] | None = None,
    comparison: Mapping[str, Any] | None = None,
    title: str = "",
    start: int = 0,
) -> str:
    """The HTML page of `trace`. `sources` maps a traced file to its text (default: read
    from disk where it exists); the page opens at step `start`."""
    data = page_data(trace, sources=sources, comparison=comparison, title=title, start=start)
    embedded = msgspec.json.encode(data).replace(b"<", b"\\u003c").decode()  # never `</script>` inside
    template = _asset("page.html")
    parts = {
        "TITLE": html.escape(title or "execalign trace"),
        "STYLE": _asset("viewer.css"),
        "SCRIPT": _asset("viewer.js"),
        "DATA": embedded,
    }
    for key, text in parts.items():
        template = template.replace("{{" + key + "}}", text)
    return template


def write_html(path: str, trace: Trace, **options: Any) -> str:
    """Write the page of `trace` (`page`'s options) to `path`; its absolute path."""
    text = page(trace, **options)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return os.path.abspath(path)


def page_data(
    trace: Trace,
    *,
    sources: Mapping[str, str] | None = None,
    comparison: Mapping[str, Any] | None = None,
    title: str = "",
    start: int = 0,
) -> dict[str, Any]:
    """The data the page embeds (see the module docstring)."""
    values = _Values()
    names: dict[str, int] = {}
    files: dict[str, int] = {}

    def name_id(name: str) -> int:
        return names.setdefault(name, len(names))

    def file_id(path: str) -> int:
        return files.setdefault(path, len(files))

    event, line, frame, changes = [], [], [], []
    deleted: list[Any] = []
    returned: list[int] = []
    raised: list[Any] = []
    last: dict[tuple[int, str], int] = {}  # (frame, name) -> the node of its value

    def value_id(frame: int, name: str, value: Value) -> int:
        index = last[frame, name] = values.add(value, last.get((frame, name), -1))
        return index

    for state in trace.replay():
        step, i = state.step, state.index
        event.append(_EVENTS.index(step.event))
        line.append(step.line)
        frame.append(step.frame)
        flat = [x for k, v in state.changed.items() for x in (name_id(k), value_id(step.frame, k, v))]
        changes.append(flat or 0)
        if step.deleted:
            deleted += [i, [name_id(n) for n in step.deleted]]
        if step.value is not None:
            returned += [i, values.add(step.value)]
        if step.exception is not None:
            raised += [i, [step.exception.type, step.exception.message]]
    frames = [[f.function, file_id(f.file), f.line, f.depth, f.parent, f.thread] for f in trace.frames]
    texts: dict[str, str | None] = dict(sources or {})
    for path in files:
        if path not in texts:
            texts[path] = _read(path)
    outcome = {
        "exit_code": trace.exit_code,
        "exception": [trace.exception.type, trace.exception.message] if trace.exception else None,
        "returned": values.add(trace.returned) if trace.returned is not None else -1,
        "call_step": trace.call_step,
        "stopped": msgspec.to_builtins(trace.stopped) if trace.stopped else None,
        "dropped": trace.dropped,
        "backend": trace.backend,
        "python": trace.python,
        "stdout_more": trace.stdout_more,
    }
    return {
        "title": title,
        "start": max(0, min(start, len(trace.steps) - 1)),
        "kinds": list(KINDS),
        "values": values.nodes,
        "names": list(names),
        "files": [[path, texts.get(path)] for path in files],
        "steps": {
            "event": event,
            "line": line,
            "frame": frame,
            "changes": changes,
            "deleted": deleted,
            "returned": returned,
            "raised": raised,
        },
        "frames": frames,
        "stdout": trace.stdout,
        "stdout_at": trace.stdout_at,
        "outcome": outcome,
        "comparison": dict(comparison) if comparison is not None else None,
    }


class _Values:
    """Value nodes, each distinct one once (ids index `nodes`)."""

    def __init__(self) -> None:
        self.nodes: list[list[Any]] = []
        self.ids: dict[tuple[Any, ...], int] = {}
        self.seen: dict[int, tuple[Value, int]] = {}  # id(Value) -> (the Value, kept alive; its node)
        self.recent: OrderedDict[int, list[Any]] = OrderedDict()  # the last containers made, written out

    def add(self, value: Value, base: int = -1) -> int:
        """The node id of `value`; a new container may be stored as an edit of the node `base`."""
        t = value.t
        if value.items is None and value.attrs is None and t not in _CONTAINERS:  # the common case, kept lean
            key: tuple[Any, ...] = (t, value.v, value.type, value.more, value.id)
            index = self.ids.get(key)
            if index is None:
                index = self._new(key, [_KIND[t], value.v] if t == "ref" else _shown(value))
            return index
        known = self.seen.get(id(value))
        if known is not None and known[0] is value:
            return known[1]
        if not _expandable(value):
            node = _shown(value)
            key = (t, *node[1:])
            index = self.ids.get(key)
            if index is None:
                index = self._new(key, node)
            self.seen[id(value)] = (value, index)
            return index
        add = self.add
        items = [add(v) for v in value.items or ()]
        labels: list[Any] | None = None
        if t == "dict":
            labels = [add(k) for k in value.keys or ()]
        elif value.attrs:
            labels = list(value.attrs)
            items += [add(v) for v in value.attrs.values()]
        key = (t, value.type, tuple(items), tuple(labels or ()), value.more, value.id)
        index = self.ids.get(key)
        if index is None:
            node = [_KIND[t], value.type, items, labels, value.more, value.id]
            index = self._new(key, self._edit(node, base))
            self.recent[index] = node
            if len(self.recent) > _RECENT:
                self.recent.popitem(last=False)
        self.seen[id(value)] = (value, index)
        return index

    def _new(self, key: tuple[Any, ...], node: list[Any]) -> int:
        index = self.ids[key] = len(self.nodes)
        self.nodes.append(node)
        return index

    def _edit(self, node: list[Any], base: int) -> list[Any]:
        """`node`, or, when much shorter, `[-1, base, length, [index, item, ...]]`: the container
        `base` (same kind, type, labels, more and id) with those items set and cut to `length`."""
        old = self.recent.get(base)
        if old is None or len(node[2]) < 16:
            return node
        if old[0] != node[0] or old[1] != node[1] or old[3] != node[3] or old[4:] != node[4:]:
            return node
        items, before = node[2], old[2]
        changed = [x for i, item in enumerate(items) if i >= len(before) or before[i] != item for x in (i, item)]
        if len(changed) > len(items) // 2:
            return node
        return [-1, base, len(items), changed]


def _expandable(value: Value) -> bool:
    """A container the page shows part by part: the builtin shapes (objects and exceptions with
    their attributes). Others (a deque, a namedtuple, an array ...) show as their text."""
    if value.t in ("list", "tuple", "set", "frozenset"):
        return value.keys is None and value.attrs is None
    return value.t in _CONTAINERS and (value.t != "dict" or value.attrs is None)


def _shown(value: Value) -> list[Any]:
    """A value shown as its text: [kind, text], or [kind, text, id] when refs point to it
    (its label is the page's to write, as render() writes them)."""
    if not value.id:
        return [_KIND[value.t], render(value)]
    return [_KIND[value.t], render(msgspec.structs.replace(value, id=0)), value.id]


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None


def _asset(name: str) -> str:
    return (resources.files("tracer") / "viewer" / name).read_text(encoding="utf-8")
