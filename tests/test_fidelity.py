"""Fidelity: the traced return value of every CRUXEval call equals the recorded output."""

import ast

import tracer
from tests.strategies import same


def test_every_cruxeval_return_value_matches_the_recorded_output(cruxeval, backend):
    wrong = []
    for row in cruxeval:
        t = tracer.trace(row["code"], f"f({row['input']})", backend=backend)
        expected = ast.literal_eval(row["output"])
        if t.returned is None or not same(tracer.to_python(t.returned), expected):
            wrong.append((row["id"], row["output"], t.returned and tracer.render(t.returned), t.exception))
    print(f"\n{backend}: {len(cruxeval) - len(wrong)}/{len(cruxeval)} CRUXEval return values match")
    assert wrong == []


def test_rendered_return_value_parses_back_to_the_output(cruxeval):
    for row in cruxeval:
        t = tracer.trace(row["code"], f"f({row['input']})")
        assert same(tracer.from_literal(tracer.render(t.returned)), ast.literal_eval(row["output"])), row["id"]
