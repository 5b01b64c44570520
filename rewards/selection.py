"""Choosing probes worth asking (`select`), fixed by a seed, the informative ones first.

For state, values that a line changes, in a loop first (long values last); for next, branch and
loop decisions, the rarer outcome first (a loop's exit), then lines under a condition that never
run, then straight-line code; for coverage, lines under a condition, then the rest, those that run
and those that do not alternately, so that answering always True is no strategy. Each line's
first probe comes before any line's second. Lines whose execution count differs between Python
versions (comprehensions, lambdas, statements over several lines) are never picked (`CodeLines`).
"""

from __future__ import annotations

import ast
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from tracer import render

from .probes import NOT_ASKED, PROBED, Execution, Probe, Run

_MAX_SHOWN = 80  # characters of a value past which a state probe is a last resort


@dataclass
class CodeLines:
    """What the source says about its lines: which are stable to ask about, and how control flows."""

    stable: set[int] = field(default_factory=set)  # one-line statements without comprehensions or lambdas
    conditional: set[int] = field(default_factory=set)  # under an if, a loop, a try or a match
    in_function: set[int] = field(default_factory=set)
    branches: set[int] = field(default_factory=set)  # if, elif and loop headers
    loop_bodies: dict[int, set[int]] = field(default_factory=dict)  # loop header -> its body's lines

    @classmethod
    def of(cls, code: str) -> CodeLines:
        lines = cls()
        try:
            tree = ast.parse(code)
        except (SyntaxError, ValueError):
            return lines
        lines._visit(tree.body, conditional=False, in_function=False)
        return lines

    def _visit(self, body: list[ast.stmt], conditional: bool, in_function: bool) -> None:
        for node in body:
            line = node.lineno
            if _stable(node):
                self.stable.add(line)
                if conditional:
                    self.conditional.add(line)
                if in_function:
                    self.in_function.add(line)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self._visit(node.body, False, True)
            elif isinstance(node, ast.ClassDef):
                self._visit(node.body, conditional, in_function)
            elif isinstance(node, (ast.If, ast.For, ast.AsyncFor, ast.While)):
                self.branches.add(line)
                if not isinstance(node, ast.If):
                    self.loop_bodies[line] = {
                        n.lineno for s in node.body for n in ast.walk(s) if isinstance(n, ast.stmt)
                    }
                self._visit(node.body, True, in_function)
                self._visit(node.orelse, True, in_function)
            elif isinstance(node, (ast.With, ast.AsyncWith)):
                self._visit(node.body, conditional, in_function)
            elif isinstance(node, ast.Try):
                self._visit(node.body, True, in_function)
                for handler in node.handlers:
                    self._visit(handler.body, True, in_function)
                self._visit(node.orelse, True, in_function)
                self._visit(node.finalbody, conditional, in_function)
            elif isinstance(node, ast.Match):
                for case in node.cases:
                    self._visit(case.body, True, in_function)


_ASKABLE_STATEMENTS = (
    ast.Assign,
    ast.AugAssign,
    ast.AnnAssign,
    ast.Expr,
    ast.Return,
    ast.If,
    ast.For,
    ast.While,
    ast.Raise,
    ast.Assert,
    ast.Delete,
    ast.Import,
    ast.ImportFrom,
)
_UNSTABLE = (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.Yield, ast.YieldFrom, ast.Await)


def _stable(node: ast.stmt) -> bool:
    """A statement whose line runs the same number of times on every Python version."""
    if not isinstance(node, _ASKABLE_STATEMENTS):
        return False
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
        return False  # a docstring or a bare constant: no code, no line event
    if isinstance(node, ast.AnnAssign) and node.value is None:
        return False
    parts: list[ast.AST]
    if isinstance(node, (ast.If, ast.While)):
        parts = [node.test]
    elif isinstance(node, ast.For):
        parts = [node.target, node.iter]
    else:
        parts = [node]
    for part in parts:
        for inner in ast.walk(part):
            if isinstance(inner, _UNSTABLE):
                return False
            end = getattr(inner, "end_lineno", None)
            if getattr(inner, "lineno", node.lineno) != node.lineno or (end is not None and end != node.lineno):
                return False
    return True


def select(question: str, run: Run, lines: CodeLines, seed: int, count: int, program: bool) -> list[Probe]:
    """Up to `count` probes for a question (state, next, coverage, or bundle: a mix), fixed by `seed`.

    `program`: the run is a whole program (any line may be asked about), not a call (only lines
    inside functions)."""
    rng = random.Random(seed)
    asked = list(PROBED) if question == "bundle" else [question]
    ordered = {q: _spread(_CANDIDATES[q](run, lines, program, rng)) for q in asked}
    rng.shuffle(asked)
    chosen: list[Probe] = []
    while len(chosen) < count and any(ordered.values()):
        for q in asked:
            if ordered[q] and len(chosen) < count:
                chosen.append(ordered[q].pop(0))
    return chosen


def _tiers(tiers: list[list[Probe]], rng: random.Random) -> list[Probe]:
    """The best tier first, each shuffled."""
    out: list[Probe] = []
    for tier in tiers:
        tier = list(dict.fromkeys(tier))
        rng.shuffle(tier)
        out.extend(tier)
    return out


def _spread(probes: list[Probe]) -> list[Probe]:
    """Each line's first probe before any line's second, the order otherwise kept."""
    seen: set[int | None] = set()
    first: list[Probe] = []
    rest: list[Probe] = []
    for probe in probes:
        (rest if probe.line in seen else first).append(probe)
        seen.add(probe.line)
    return first + rest


def _sampled(executions: list[Execution]) -> list[tuple[int, Execution]]:
    """A line's first three executions and its last (numbered from 1)."""
    numbered = list(enumerate(executions, 1))
    return numbered[:3] + (numbered[-1:] if len(numbered) > 3 else [])


def _state_candidates(run: Run, lines: CodeLines, program: bool, rng: random.Random) -> list[Probe]:
    """Values a line changes (in a loop first), then those it leaves as they were or that are long."""
    tiers: list[list[Probe]] = [[], [], []]
    for line, executions in sorted(run.by_line.items()):
        if line not in lines.stable:
            continue
        for k, execution in _sampled(executions):
            for name, value in execution.after.items():
                if name.startswith("__") or value.t in NOT_ASKED:
                    continue
                tier = (0 if len(executions) > 1 else 1) if name in execution.changed else 2
                if len(render(value)) > _MAX_SHOWN:
                    tier = 2
                tiers[tier].append(Probe(question="state", line=line, execution=k, variable=name))
    return _tiers(tiers, rng)


def _next_candidates(run: Run, lines: CodeLines, program: bool, rng: random.Random) -> list[Probe]:
    """Branch and loop decisions (the rarer outcome and loop exits first), lines under a condition
    that never run, then straight-line code."""
    tiers: list[list[Probe]] = [[], [], []]
    for line in sorted(lines.stable):
        executions = run.by_line.get(line, [])
        if not executions:
            if line in lines.conditional and (program or line in lines.in_function):
                tiers[1].append(Probe(question="next", line=line))
            continue
        outcomes = Counter(e.next_line for e in executions)
        decides = line in lines.branches or len(outcomes) > 1
        rarest = min(outcomes.values())
        body = lines.loop_bodies.get(line)
        for k, execution in _sampled(executions):
            if not decides:
                tier = 2
            elif (len(outcomes) > 1 and outcomes[execution.next_line] == rarest) or (
                body is not None and execution.next_line not in body
            ):
                tier = 0
            else:
                tier = 1
            tiers[tier].append(Probe(question="next", line=line, execution=k))
    return _tiers(tiers, rng)


def _coverage_candidates(run: Run, lines: CodeLines, program: bool, rng: random.Random) -> list[Probe]:
    """Lines under a condition, then the rest; in each, lines that run and lines that do not
    alternate, so that answering always True (or False) is no strategy."""
    out: list[Probe] = []
    for conditional in (True, False):
        ran: list[Probe] = []
        not_ran: list[Probe] = []
        for line in sorted(lines.stable):
            if (line in lines.conditional) == conditional and (program or line in lines.in_function):
                (ran if line in run.by_line else not_ran).append(Probe(question="coverage", line=line))
        rng.shuffle(ran)
        rng.shuffle(not_ran)
        pair = [ran, not_ran] if rng.random() < 0.5 else [not_ran, ran]
        for i in range(max(len(ran), len(not_ran))):
            out.extend(side[i] for side in pair if i < len(side))
    return out


_CANDIDATES: dict[str, Callable[[Run, CodeLines, bool, random.Random], list[Probe]]] = {
    "state": _state_candidates,
    "next": _next_candidates,
    "coverage": _coverage_candidates,
}
