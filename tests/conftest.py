"""Shared fixtures: the tracer backends of this interpreter and the CRUXEval corpus."""

import json
import pathlib

import pytest

from tracer import env

BACKENDS = ["settrace", "monitoring"] if env.HAS_MONITORING else ["settrace"]
CRUXEVAL = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cruxeval.jsonl"


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


def load_cruxeval():
    if not CRUXEVAL.exists():
        pytest.skip(f"CRUXEval corpus not found at {CRUXEVAL} (expected ../shared/data/cruxeval.jsonl)")
    return [json.loads(line) for line in CRUXEVAL.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="session")
def cruxeval():
    return load_cruxeval()


@pytest.fixture(scope="session")
def pool():
    import sandbox

    with sandbox.Pool(2) as p:
        yield p
