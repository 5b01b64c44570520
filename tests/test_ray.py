"""Scoring on a local Ray cluster of several nodes, including a node dying mid-batch.

Needs ray (the CI's integrations step installs it); skipped, saying so, without it.
"""

import threading
import time

import pytest

ray = pytest.importorskip("ray", reason="ray not installed (CI installs it in its integrations step)")
from ray.cluster_utils import Cluster  # noqa: E402

from rewards.ray_backend import RayScorer  # noqa: E402

CODE = "def f(x):\n    y = x * 2\n    return y + 1"


def items(n, sleep=0.0):
    code = CODE if not sleep else f"import time\ntime.sleep({sleep})\n" + CODE
    return [
        {
            "code": code + f"\n# variant {i % 12}",
            "tests": [f"f({i % 5})"],
            "predicted_trace": str(2 * (i % 5) + 1),
            "question": "output",
        }
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def cluster():
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    workers = [c.add_node(num_cpus=1) for _ in range(2)]
    ray.init(address=c.address, include_dashboard=False, log_to_driver=False)
    c.wait_for_nodes()
    yield c, workers
    ray.shutdown()
    c.shutdown()


def test_scores_spread_over_nodes_match_local_scoring(cluster):
    scorer = RayScorer(actors=3, workers_per_actor=1, num_cpus=0.5, chunk_size=8)
    try:
        assert len(set(scorer.nodes())) >= 2
        scores = scorer.score_batch(items(60))
        assert len(scores) == 60 and all(s.status == "ok" and s.reward == 1.0 for s in scores)
    finally:
        scorer.close()


def test_a_node_dying_mid_batch_loses_no_sample(cluster):
    c, workers = cluster
    scorer = RayScorer(actors=3, workers_per_actor=1, num_cpus=0.5, chunk_size=4, retries=2, timeout=120)
    try:
        assert len(set(scorer.nodes())) == 3  # one actor on each node, so the node that dies has one
        before = list(scorer.actors)
        batch = items(36, sleep=0.3)
        killer = threading.Timer(1.0, lambda: c.remove_node(workers[0]))
        killer.start()
        started = time.monotonic()
        scores = scorer.score_batch(batch)
        killer.join()
        assert len(scores) == 36 and time.monotonic() - started < 240
        assert all(
            (s.status == "ok" and s.reward == 1.0) or (s.status == "infra_error" and s.reward is None) for s in scores
        )
        assert sum(s.status == "ok" for s in scores) >= 30
        assert scorer.actors != before  # the lost actor was replaced and its chunks re-run
    finally:
        scorer.close()
