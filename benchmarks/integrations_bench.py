"""Reward server and Ray backend throughput.

    python -m benchmarks.integrations_bench [--requests 2000] [--concurrency 16]

1. `execalign serve` on 127.0.0.1: OpenRLHF-style requests (one sample each, as
   its agent path sends them) from `--concurrency` client threads; requests/s and
   p50/p99 latency, with every request about a different program (cold) and with
   64 programs asked about repeatedly (a GRPO-like warm cache).
2. The Ray backend on local clusters of 1, 2 and 4 nodes (one scoring actor per
   node): the 800 CRUXEval output predictions, scores/s. Needs ray.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import rewards
from rewards.server import RewardServer

from .common import RESULTS, load_cruxeval, python_version, report


def _post(url: str, body: bytes) -> float:
    start = time.perf_counter()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        response.read()
    return time.perf_counter() - start


def server_load(rows: list, requests: int, concurrency: int, distinct: int) -> str:
    rewards.CACHE.clear()
    server = RewardServer(("127.0.0.1", 0), max_pending=max(64, concurrency))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    bodies = []
    for i in range(requests):
        r = rows[i % min(distinct, len(rows))]
        label = {
            "kind": "trace",
            "code": r["code"] + (f"\n# {i}" if distinct >= requests else ""),
            "tests": [f"f({r['input']})"],
            "question": "output",
        }
        bodies.append(
            json.dumps({"query": ["Q" + r["output"]], "prompts": ["Q"], "labels": [json.dumps(label)]}).encode()
        )
    try:
        start = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as executor:
            latencies = sorted(executor.map(lambda b: _post(server.url + "/", b), bodies))
        elapsed = time.perf_counter() - start
    finally:
        server.shutdown()
        server.server_close()
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[int(0.99 * (len(latencies) - 1))] * 1000
    return f"| {requests} | {concurrency} | {distinct} | {requests / elapsed:.0f} | {p50:.1f} | {p99:.1f} |"


def ray_scaling(rows: list) -> list[str]:
    try:
        import ray
        from ray.cluster_utils import Cluster
    except ImportError:
        return ["(ray not installed: pip install -e .[ray])"]
    from rewards.ray_backend import RayScorer

    items = [
        {"code": r["code"], "tests": [f"f({r['input']})"], "predicted_trace": r["output"], "question": "output"}
        for r in rows
    ]
    out = []
    for nodes in (1, 2, 4):
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
        for _ in range(nodes - 1):
            cluster.add_node(num_cpus=1)
        ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False)
        try:
            scorer = RayScorer(actors=nodes, workers_per_actor=max(1, (os.cpu_count() or 2) // nodes), num_cpus=0.5)
            scorer.score_batch(items[:8])  # actors and zygotes up
            start = time.perf_counter()
            scores = scorer.score_batch(items)
            elapsed = time.perf_counter() - start
            ok = sum(s.status == "ok" for s in scores)
            out.append(f"| {nodes} | {len(items)} | {elapsed:.2f} | {len(items) / elapsed:.0f} | {ok} ok |")
            scorer.close()
        finally:
            ray.shutdown()
            cluster.shutdown()
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    rows = load_cruxeval()
    if not rows:
        return 1
    lines = [
        f"# Integrations benchmark, Python {python_version()}, {os.cpu_count()} CPUs",
        "",
        "## Reward server (OpenRLHF JSON, one sample per request, 127.0.0.1)",
        "",
        "| requests | concurrency | distinct programs | requests/s | p50 ms | p99 ms |",
        "|---|---|---|---|---|---|",
        server_load(rows, args.requests, args.concurrency, args.requests),
        server_load(rows, args.requests, args.concurrency, 64),
        "",
        "## Ray backend, local clusters (one actor per node, 800 CRUXEval output predictions)",
        "",
        "| nodes | items | seconds | scores/s | outcome |",
        "|---|---|---|---|---|",
        *ray_scaling(rows),
        "",
    ]
    report("integrations", "\n".join(lines), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
