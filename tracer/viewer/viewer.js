// execalign's step-through viewer. The data format is described in tracer/view.py.
"use strict";
(function () {
  const D = JSON.parse(document.getElementById("trace-data").textContent);
  const S = D.steps;
  const N = S.event.length;
  const V = D.values;
  const K = {};
  D.kinds.forEach((k, i) => { K[k] = i; });
  const CHECKPOINT = 64; // a frame's variables are kept every this many of its steps
  const PREVIEW = 120; // characters of a one-line value preview
  const $ = (id) => document.getElementById(id);

  function pairs(flat) {
    const m = new Map();
    for (let i = 0; i < flat.length; i += 2) m.set(flat[i], flat[i + 1]);
    return m;
  }
  const deleted = pairs(S.deleted);
  const returned = pairs(S.returned);
  const raised = pairs(S.raised);

  // ------------------------------------------------------------ frames and their variables
  const F = D.frames.map((f) => ({ fn: f[0], file: f[1], line: f[2], depth: f[3], parent: f[4], steps: [], cp: null }));
  const own = new Int32Array(N); // the position of each step among its frame's steps
  for (let i = 0; i < N; i++) {
    const fr = F[S.frame[i]];
    own[i] = fr.steps.length;
    fr.steps.push(i);
  }
  const depth = (i) => F[S.frame[i]].depth;

  function apply(vars, i) {
    const ch = S.changes[i];
    if (ch) for (let t = 0; t < ch.length; t += 2) vars.set(ch[t], ch[t + 1]);
    const gone = deleted.get(i);
    if (gone) for (const n of gone) vars.delete(n);
  }

  // The variables (name id -> value id) of frame f after its j-th own step (j = -1: none yet).
  function variables(f, j) {
    const fr = F[f];
    if (!fr.cp) fr.cp = [new Map()]; // cp[c]: after the frame's first c * CHECKPOINT steps
    const c = Math.floor((j + 1) / CHECKPOINT);
    while (fr.cp.length <= c) {
      const k = fr.cp.length;
      const m = new Map(fr.cp[k - 1]);
      for (let t = (k - 1) * CHECKPOINT; t < k * CHECKPOINT; t++) apply(m, fr.steps[t]);
      fr.cp.push(m);
    }
    const m = new Map(fr.cp[c]);
    for (let t = c * CHECKPOINT; t <= j; t++) apply(m, fr.steps[t]);
    return m;
  }

  // The last step of frame f at or before step i (-1 if none): its position among the frame's steps.
  function lastOwn(f, i) {
    const steps = F[f].steps;
    let lo = 0, hi = steps.length - 1, found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (steps[mid] <= i) { found = mid; lo = mid + 1; } else hi = mid - 1;
    }
    return found;
  }

  // ------------------------------------------------------------ values as text and as trees
  const BRACKETS = { list: ["[", "]"], tuple: ["(", ")"], set: ["{", "}"], frozenset: ["frozenset({", "})"], dict: ["{", "}"] };

  function kindOf(n) { return D.kinds[n[0]]; }

  // A value node written out: an edit [-1, base, length, [index, item, ...]] is applied to its base once.
  function node(id) {
    if (V[id][0] !== -1) return V[id];
    const chain = [];
    for (let b = id; V[b][0] === -1; b = V[b][1]) chain.push(b);
    for (let k = chain.length - 1; k >= 0; k--) {
      const edit = V[chain[k]];
      const base = V[edit[1]];
      const items = base[2].slice(0, edit[2]);
      while (items.length < edit[2]) items.push(0);
      for (let t = 0; t < edit[3].length; t += 2) items[edit[3][t]] = edit[3][t + 1];
      V[chain[k]] = [base[0], base[1], items, base[3], base[4], base[5]];
    }
    return V[id];
  }

  // Nodes are [kind, text] or [kind, text, id] (a value shown as its text), [ref, id], or containers
  // [kind, type, [items], labels, more, id]. `id` marks a value that a ref elsewhere in the same variable
  // points to; such values are labelled as render() labels them: #1= where written first, #1 after.
  const isContainer = (n) => Array.isArray(n[2]);
  const idOf = (n) => (isContainer(n) ? n[5] : n[0] === K.ref ? 0 : n[2] || 0);

  // The parts of a container in the order render() writes them (dict: key, value, ...; an exception: its args).
  function written(n) {
    const [k, , items, labels] = n;
    const kind = D.kinds[k];
    if (kind === "dict") return items.flatMap((item, i) => [labels[i], item]);
    if (kind === "exception") return items.slice(0, items.length - (labels ? labels.length : 0));
    return items;
  }

  // id -> label of the shared values inside a variable's value, numbered as render() numbers them.
  function labelsOf(root) {
    const labels = new Map();
    let targets = null;
    const stack = [root];
    while (stack.length) {
      let n = node(stack.pop());
      if (n[0] === K.ref) {
        if (labels.has(n[1])) continue;
        if (!targets) targets = targetsOf(root);
        if (!targets.has(n[1])) continue;
        n = node(targets.get(n[1]));
      }
      const id = idOf(n);
      if (id) {
        if (labels.has(id)) continue;
        labels.set(id, labels.size + 1);
      }
      if (isContainer(n)) { const parts = written(n); for (let i = parts.length - 1; i >= 0; i--) stack.push(parts[i]); }
    }
    return labels;
  }

  function targetsOf(root) {
    const targets = new Map();
    const stack = [root];
    while (stack.length) {
      const here = stack.pop();
      const n = node(here);
      const id = idOf(n);
      if (id && !targets.has(id)) targets.set(id, here);
      if (isContainer(n)) for (const part of n[2].concat(D.kinds[n[0]] === "dict" ? n[3] : [])) stack.push(part);
    }
    return targets;
  }

  // One line of text of a value, as render() writes it, cut at `limit` characters.
  function preview(id, labels, limit) {
    const out = { s: "", left: limit || PREVIEW, labels: labels || labelsOf(id) };
    write(id, out);
    return out.s;
  }

  function put(out, text) {
    if (!text.length) return;
    if (out.left <= 0) { if (!out.cut) { out.s += "\u2026"; out.cut = true; } return; }
    if (text.length > out.left) { out.s += text.slice(0, out.left) + "\u2026"; out.left = 0; out.cut = true; return; }
    out.s += text;
    out.left -= text.length;
  }

  function write(id, out) {
    if (out.left <= 0) { put(out, "\u2026"); return; }
    const n = node(id);
    if (n[0] === K.ref) { put(out, "#" + (out.labels.get(n[1]) || "?")); return; }
    const label = out.labels.get(idOf(n));
    if (label) put(out, "#" + label + "=");
    if (!isContainer(n)) { put(out, n[1]); return; }
    const kind = kindOf(n);
    const [, type, items, labels, more] = n;
    if (kind === "object" || kind === "exception") {
      const named = kind === "object" && labels ? labels.length : 0;
      const shown = kind === "object" ? items : written(n);
      put(out, (type || kind) + "(");
      shown.forEach((item, i) => {
        if (i) put(out, ", ");
        if (i >= shown.length - named) put(out, labels[i - (shown.length - named)] + "=");
        write(item, out);
      });
      if (more) put(out, (shown.length ? ", " : "") + "...<+" + more + ">");
      put(out, ")");
      return;
    }
    if (type) put(out, type + "(");
    if ((kind === "set" || kind === "frozenset") && !items.length && !more) put(out, kind + "()");
    else {
      const [open, close] = BRACKETS[kind];
      put(out, open);
      items.forEach((item, i) => {
        if (i) put(out, ", ");
        if (kind === "dict") { write(labels[i], out); put(out, ": "); }
        write(item, out);
      });
      if (more) put(out, (items.length ? ", " : "") + "...<+" + more + ">");
      else if (kind === "tuple" && items.length === 1) put(out, ",");
      put(out, close);
    }
    if (type) put(out, ")");
  }

  function children(id, shared) {
    // [label, value id] of a container's parts, in order
    const [k, , items, labels] = node(id);
    const kind = D.kinds[k];
    if (kind === "dict") return items.map((item, i) => [preview(labels[i], shared, 40), item]);
    if (kind === "object" || kind === "exception") {
      const named = labels ? labels.length : 0;
      return items.map((item, i) => [i >= items.length - named ? "." + labels[i - (items.length - named)] : "[" + i + "]", item]);
    }
    if (kind === "set" || kind === "frozenset") return items.map((item) => ["\u00b7", item]);
    return items.map((item, i) => ["[" + i + "]", item]);
  }

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  const openPaths = new Set(); // expanded containers, by path, kept while stepping

  // One value as a row: a leaf, or an expandable container whose parts are built when opened.
  // `shared`: the labels of the variable's shared values (labelsOf its whole value).
  function valueTree(label, id, path, ancestors, shared, labelClass) {
    const n = node(id);
    const head = document.createDocumentFragment();
    head.append(el("span", labelClass || "name", label), document.createTextNode(" = "));
    const row = () => { const r = el("div", "row"); r.append(head); return r; };
    if (n[0] === K.ref) {
      const mark = "#" + (shared.get(n[1]) || "?");
      const cycle = ancestors.has(n[1]);
      const ref = el("span", "ref", "\u2192 " + mark + (cycle ? " (a cycle: the container itself)" : " (shared)"));
      ref.title = "The same object as the one marked " + mark + "= in this value";
      ref.dataset.ref = n[1];
      head.append(ref);
      return row();
    }
    const id0 = idOf(n);
    let text = preview(id, shared);
    if (id0 && shared.has(id0)) {
      const mark = "#" + shared.get(id0) + "=";
      const anchor = el("span", "anchor", mark);
      anchor.dataset.anchor = id0;
      head.append(anchor);
      text = text.slice(mark.length);
    }
    head.append(el("span", "preview", text));
    if (!isContainer(n) || !(n[2].length || n[4])) return row();
    const details = el("details");
    const summary = el("summary");
    summary.append(head);
    details.append(summary);
    const inner = new Set(ancestors);
    if (id0) inner.add(id0);
    const fill = () => {
      if (details.dataset.filled) return;
      details.dataset.filled = "1";
      const tree = el("div", "tree");
      for (const [childLabel, child] of children(id, shared)) {
        tree.append(valueTree(childLabel, child, path + "/" + childLabel, inner, shared, "key"));
      }
      if (n[4]) tree.append(el("div", "row cut", "...<+" + n[4] + "> not recorded (a TraceLimits cap)"));
      details.append(tree);
    };
    details.addEventListener("toggle", () => {
      if (details.open) { openPaths.add(path); fill(); } else openPaths.delete(path);
    });
    if (openPaths.has(path)) { details.open = true; fill(); }
    return details;
  }

  // ------------------------------------------------------------ source
  const ran = new Map(); // file id -> Set of lines that ran
  for (let i = 0; i < N; i++) {
    const file = F[S.frame[i]].file;
    if (!ran.has(file)) ran.set(file, new Set());
    ran.get(file).add(S.line[i]);
  }
  const sourceViews = new Map();
  let shownFile = -1;

  function sourceView(file) {
    if (sourceViews.has(file)) return sourceViews.get(file);
    const [path, text] = D.files[file] || ["?", null];
    const box = el("div");
    const lines = [];
    if (text === null) {
      box.append(el("div", "missing-source", "The source of " + path + " is not available: lines are shown by number only."));
    } else {
      const executed = ran.get(file) || new Set();
      text.replace(/\n$/, "").split("\n").forEach((code, i) => {
        const row = el("div", "src" + (executed.has(i + 1) ? " ran" : ""));
        row.dataset.line = i + 1;
        const no = el("span", "no", String(i + 1));
        no.title = "Run to line " + (i + 1) + " (Shift+click: back to it)";
        row.append(no, el("span", "code", code || " "));
        box.append(row);
        lines.push(row);
      });
    }
    box.addEventListener("click", (e) => {
      const no = e.target.closest(".no");
      if (no) runToLine(file, Number(no.parentElement.dataset.line), e.shiftKey ? -1 : 1);
    });
    const view = { path, box, lines };
    sourceViews.set(file, view);
    return view;
  }

  // ------------------------------------------------------------ moving
  let cur = 0;
  let selected = -1; // the frame whose variables are shown (-1: the current step's)
  let flash = "";

  function go(i) {
    if (!N) return;
    cur = Math.max(0, Math.min(N - 1, i));
    selected = -1;
    render();
  }
  function scan(from, dir, test) {
    for (let j = from + dir; j >= 0 && j < N; j += dir) if (test(j)) return j;
    return -1;
  }
  const moves = {
    first: () => go(0),
    last: () => go(N - 1),
    forward: () => go(cur + 1),
    back: () => go(cur - 1),
    over: () => { const d = depth(cur); const j = scan(cur, 1, (k) => depth(k) <= d); go(j < 0 ? N - 1 : j); },
    backOver: () => { const d = depth(cur); const j = scan(cur, -1, (k) => depth(k) <= d); go(j < 0 ? 0 : j); },
    out: () => { const d = depth(cur); const j = scan(cur, 1, (k) => depth(k) < d); go(j < 0 ? N - 1 : j); },
  };
  function runToLine(file, line, dir) {
    const j = scan(cur, dir, (k) => S.line[k] === line && F[S.frame[k]].file === file);
    if (j < 0) { flash = "line " + line + (dir > 0 ? " does not run after this step" : " did not run before this step"); render(); }
    else go(j);
  }

  // ------------------------------------------------------------ drawing
  function describe(i) {
    const fr = F[S.frame[i]];
    const ev = S.event[i];
    const parts = [];
    const kind = (text, cls) => { const s = el("span", cls || "kind", text); parts.push(s); };
    if (ev === 1) {
      const ch = S.changes[i] || [];
      const args = [];
      for (let t = 0; t < ch.length; t += 2) args.push(D.names[ch[t]] + "=" + preview(ch[t + 1], null, 40));
      kind("call ");
      parts.push(fr.fn + "(" + args.join(", ") + ")");
    } else if (ev === 0) {
      kind("line " + S.line[i]);
      parts.push(" in " + fr.fn);
      const ch = S.changes[i];
      if (ch) parts.push("   changed: " + ch.filter((_, t) => t % 2 === 0).map((n) => D.names[n]).join(", "));
    } else if (ev === 2) {
      const exc = raised.get(i);
      if (exc && exc[0] === "SystemExit") { kind("exit "); parts.push(fr.fn + ": sys.exit(" + exc[1] + ")"); }
      else if (exc) { kind("return "); parts.push(fr.fn + " "); kind("raising " + exc[0] + ": " + exc[1], "exc"); }
      else { kind("return "); parts.push(fr.fn + (returned.has(i) ? " \u2192 " + preview(returned.get(i)) : "")); }
    } else {
      const exc = raised.get(i) || ["?", ""];
      kind("exception ", exc[0] === "SystemExit" ? "kind" : "kind exc");
      parts.push(el("span", exc[0] === "SystemExit" ? "" : "exc", exc[0] + (exc[1] ? ": " + exc[1] : "")));
      parts.push(" in " + fr.fn + ", line " + S.line[i]);
    }
    return parts;
  }

  function drawSource() {
    const f = S.frame[cur];
    const file = F[f].file;
    const view = sourceView(file);
    if (shownFile !== file) {
      const box = $("source");
      box.replaceChildren(view.box);
      $("source-path").textContent = view.path;
      shownFile = file;
    }
    for (const row of view.box.querySelectorAll(".current, .previous")) row.classList.remove("current", "previous");
    const p = own[cur] > 0 ? F[f].steps[own[cur] - 1] : -1;
    if (p >= 0 && view.lines[S.line[p] - 1] && S.line[p] !== S.line[cur]) view.lines[S.line[p] - 1].classList.add("previous");
    const row = view.lines[S.line[cur] - 1];
    if (row) {
      row.classList.add("current");
      const box = $("source-panel").getBoundingClientRect();
      const r = row.getBoundingClientRect();
      if (r.top < box.top + 30 || r.bottom > box.bottom) row.scrollIntoView({ block: "center" });
    }
  }

  function drawVariables() {
    const f = selected >= 0 ? selected : S.frame[cur];
    const box = $("vars");
    box.replaceChildren();
    let vars, before, changed;
    if (f === S.frame[cur]) {
      vars = variables(f, own[cur]);
      before = variables(f, own[cur] - 1);
      changed = new Set();
      const ch = S.changes[cur];
      if (ch) for (let t = 0; t < ch.length; t += 2) changed.add(ch[t]);
      $("vars-where").textContent = F[f].fn + " \u00b7 after this step";
    } else {
      const j = lastOwn(f, cur);
      vars = variables(f, j - 1);
      before = vars;
      changed = new Set();
      $("vars-where").textContent = F[f].fn + " \u00b7 waiting at line " + S.line[F[f].steps[j]];
    }
    if (f === S.frame[cur] && returned.has(cur)) {
      const value = returned.get(cur);
      box.append(valueTree("\u21a9 " + (S.event[cur] === 2 ? "returned" : "value"), value, "@r", new Set(), labelsOf(value), "key"));
    }
    if (!vars.size) box.append(el("div", "var cut", "(no variables yet)"));
    for (const [name, id] of vars) {
      const row = el("div", "var" + (changed.has(name) ? " changed" : ""));
      row.dataset.name = D.names[name];
      if (changed.has(name)) row.title = before.has(name) ? "was: " + preview(before.get(name), null, 300) : "new";
      const tree = valueTree(D.names[name], id, f + ":" + D.names[name], new Set(), labelsOf(id));
      if (changed.has(name)) (tree.tagName === "DETAILS" ? tree.firstChild : tree).append(el("span", "badge", before.has(name) ? "changed" : "new"));
      row.append(tree);
      box.append(row);
    }
    const gone = f === S.frame[cur] ? deleted.get(cur) : null;
    if (gone) for (const n of gone) box.append(el("div", "var changed", "del " + D.names[n]));
  }

  function drawStack() {
    const list = $("stack");
    list.replaceChildren();
    const shown = selected >= 0 ? selected : S.frame[cur];
    for (let f = S.frame[cur], guard = 0; f >= 0 && guard < 10000; f = F[f].parent, guard++) {
      const j = lastOwn(f, cur);
      const li = el("li", f === shown ? "selected" : "");
      li.append(el("span", "fn", F[f].fn), el("span", "where", "  line " + (j >= 0 ? S.line[F[f].steps[j]] : F[f].line)));
      li.dataset.frame = f;
      li.addEventListener("click", () => { selected = f; render(); });
      list.append(li);
    }
  }

  const marks = D.stdout_at;
  function drawOutput() {
    const box = $("stdout");
    box.replaceChildren();
    if (!marks.length) {
      if (D.stdout) {
        box.append(el("span", "note", "(the whole run's output: this trace does not say which step wrote what)\n"), D.stdout);
      }
      return;
    }
    let lo = 0, hi = marks.length - 1, k = -1;
    while (lo <= hi) { const mid = (lo + hi) >> 1; if (marks[mid][0] <= cur) { k = mid; lo = mid + 1; } else hi = mid - 1; }
    const end = k >= 0 ? marks[k][1] : 0;
    const start = k >= 0 && marks[k][0] === cur ? (k > 0 ? marks[k - 1][1] : 0) : end;
    box.append(D.stdout.slice(0, start));
    if (end > start) box.append(el("span", "new", D.stdout.slice(start, end)));
    if (cur === N - 1 && k < marks.length - 1) {
      box.append(el("span", "note", "\n(written after recording stopped:)\n"), D.stdout.slice(end));
    }
    if (cur === N - 1 && D.outcome.stdout_more) box.append(el("span", "note", "\n...<+" + D.outcome.stdout_more + " bytes not kept>"));
    box.scrollTop = box.scrollHeight;
  }

  function render() {
    if (!N) return;
    $("slider").value = cur;
    $("position").textContent = "step " + (cur + 1) + " / " + N;
    const ev = $("event");
    ev.replaceChildren(...describe(cur));
    if (flash) { ev.append(el("span", "flash", flash)); flash = ""; }
    drawSource();
    drawVariables();
    drawStack();
    drawOutput();
    drawDiffPosition();
    $("back").disabled = $("first").disabled = $("back-over").disabled = cur === 0;
    $("forward").disabled = $("last").disabled = $("over").disabled = $("out").disabled = cur === N - 1;
    try { history.replaceState(null, "", "#step=" + (cur + 1)); } catch (e) { /* some file:// pages refuse it */ }
  }

  // ------------------------------------------------------------ the prediction
  const C = D.comparison;
  const rowOfStep = new Map();
  const diffRows = [];
  let pinned = null; // the row last chosen, while its step is shown
  function drawDiff() {
    if (!C) return;
    $("main").classList.add("with-diff");
    $("diff-panel").hidden = false;
    const summary = $("diff-summary");
    const reward = C.reward === null || C.reward === undefined ? "masked" : Number(C.reward).toFixed(3);
    const head = el("div");
    head.append(el("span", "reward", "reward " + reward), el("span", "", C.question + " \u00b7 status " + C.status));
    summary.append(head);
    const comps = Object.entries(C.components || {}).map(([k, v]) => k + " " + Number(v).toFixed(3)).join(" \u00b7 ");
    if (comps) summary.append(el("div", "components", "components: " + comps));
    if (C.message) summary.append(el("div", "components", C.message));
    const rows = C.rows || [];
    if (rows.length) {
      const count = (s) => rows.filter((r) => r.status === s).length;
      const legend = el("div", "legend");
      for (const s of ["match", "wrong", "missing", "extra"]) legend.append(el("span", s, count(s) + " " + s));
      summary.append(legend);
      if (C.first_divergence >= 0) {
        const r = rows[C.first_divergence];
        const b = el("button", "", "First divergence: row " + (C.first_divergence + 1) + " (" + r.status + ", line " + (r.line ?? r.predicted_line) + ")  [d]");
        b.id = "first-divergence";
        b.addEventListener("click", goDivergence);
        summary.append(b);
      } else summary.append(el("div", "components", "no divergence: every step matches"));
      drawRows(rows);
    } else if ((C.details || []).length) drawDetails(C.details);
  }

  function changeList(values, side) {
    const td = el("td");
    values.forEach((v, i) => {
      const text = side === "predicted" ? v.predicted : v.actual;
      if (side === "predicted" && text === "" && !v.ok) return;
      if (i) td.append(", ");
      const span = el("span", v.ok ? "good" : side === "predicted" ? "bad" : "", v.name + "=" + (text === "" ? "\u2014" : text));
      td.append(span);
    });
    return td;
  }

  function drawRows(rows) {
    const table = el("table", "diff");
    const head = el("tr");
    for (const h of ["#", "step", "real", "predicted", ""]) head.append(el("th", "", h));
    table.append(head);
    rows.forEach((r, i) => {
      const tr = el("tr", r.status + (i === C.first_divergence ? " divergence" : ""));
      tr.dataset.row = i;
      tr.append(el("td", "", String(i + 1)));
      tr.append(el("td", "", r.step >= 0 ? String(r.step + 1) : ""));
      if (r.step >= 0) {
        const td = changeList(r.values, "actual");
        td.prepend("L" + r.line + " ");
        tr.append(td);
      } else tr.append(el("td", "none", "\u2014 not in the run \u2014"));
      if (r.predicted >= 0) {
        const td = changeList(r.values, "predicted");
        td.prepend("L" + (r.predicted_line ?? "?") + " ");
        tr.append(td);
      } else tr.append(el("td", "none", "\u2014 missing \u2014"));
      tr.append(el("td", "status", r.status));
      tr.addEventListener("click", () => goRow(i));
      if (r.step >= 0) rowOfStep.set(r.step, tr);
      table.append(tr);
      diffRows.push(tr);
    });
    $("diff").append(table);
  }

  function drawDetails(details) {
    const table = el("table", "diff");
    const head = el("tr");
    for (const h of ["item", "predicted", "actual", "score"]) head.append(el("th", "", h));
    table.append(head);
    for (const d of details) {
      const tr = el("tr", d.score >= 1 ? "match" : "wrong");
      tr.append(el("td", "", d.item), el("td", d.score >= 1 ? "good" : "bad", d.predicted), el("td", "", d.actual),
        el("td", "status", Number(d.score).toFixed(2)));
      table.append(tr);
    }
    $("diff").append(table);
  }

  // A row's real step (an extra predicted step: the real step before it); the row stays marked there.
  function goRow(i) {
    const rows = C.rows;
    let k = i;
    while (k >= 0 && rows[k].step < 0) k--;
    if (k < 0) for (k = i; k < rows.length && rows[k].step < 0; k++);
    if (k >= rows.length) return;
    go(rows[k].step);
    pinned = { row: i, step: rows[k].step };
    drawDiffPosition();
  }
  function goDivergence() { if (C && C.first_divergence >= 0) goRow(C.first_divergence); }

  function drawDiffPosition() {
    for (const tr of $("diff").querySelectorAll("tr.here")) tr.classList.remove("here");
    if (pinned && pinned.step !== cur) pinned = null;
    const tr = pinned ? diffRows[pinned.row] : rowOfStep.get(cur);
    if (tr) {
      tr.classList.add("here");
      const box = $("diff-panel").getBoundingClientRect();
      const r = tr.getBoundingClientRect();
      if (r.top < box.top + 60 || r.bottom > box.bottom) tr.scrollIntoView({ block: "center" });
    }
  }

  // ------------------------------------------------------------ outcome, controls, keys
  function drawOutcome() {
    const o = D.outcome;
    const parts = [N + " steps", D.frames.length + " frames", "exit status " + o.exit_code];
    const foot = $("outcome");
    foot.textContent = parts.join(" \u00b7 ");
    if (o.returned >= 0) foot.append(" \u00b7 returned " + preview(o.returned));
    if (o.exception) foot.append(" \u00b7 ", el("span", "exc", "uncaught " + o.exception[0] + ": " + o.exception[1]));
    if (o.stopped) foot.append(" \u00b7 ", el("span", "exc", "recording stopped (" + o.stopped.reason + ") after " + o.stopped.steps + " steps; the program ran on"));
    if (o.dropped) foot.append(" \u00b7 " + o.dropped + " events not recorded at the recursion limit");
    foot.append(" \u00b7 " + o.backend + " on Python " + o.python);
  }

  function start() {
    const title = D.title || (D.files[0] ? D.files[0][0] : "trace");
    $("title").textContent = title;
    document.title = title + " \u00b7 execalign";
    drawOutcome();
    drawDiff();
    if (!N) { $("event").textContent = "This trace has no steps."; return; }
    const slider = $("slider");
    slider.max = N - 1;
    slider.addEventListener("input", () => go(Number(slider.value)));
    for (const [id, move] of [["first", "first"], ["back", "back"], ["forward", "forward"], ["over", "over"],
      ["back-over", "backOver"], ["out", "out"], ["last", "last"]]) $(id).addEventListener("click", moves[move]);
    $("help-button").addEventListener("click", () => { $("help").hidden = !$("help").hidden; });
    $("vars").addEventListener("mouseover", (e) => {
      const ref = e.target.closest(".ref");
      for (const a of document.querySelectorAll(".hl")) a.classList.remove("hl");
      if (!ref) return;
      const root = ref.closest(".var");
      if (root) for (const a of root.querySelectorAll('[data-anchor="' + ref.dataset.ref + '"]')) a.classList.add("hl");
    });
    document.addEventListener("keydown", (e) => {
      if (e.ctrlKey || e.metaKey || e.altKey) return;
      const onSlider = e.target === slider;
      const keys = {
        ArrowRight: moves.forward, l: moves.forward, ArrowLeft: moves.back, h: moves.back, n: moves.over,
        N: moves.backOver, o: moves.out, Home: moves.first, End: moves.last, d: goDivergence,
        "?": () => { $("help").hidden = !$("help").hidden; },
      };
      const action = keys[e.key];
      if (!action || (onSlider && e.key.length > 1)) return; // the slider moves itself on arrows, Home, End
      e.preventDefault();
      action();
    });
    const m = /step=(\d+)/.exec(location.hash);
    go(m ? Number(m[1]) - 1 : D.start);
  }
  start();
})();
