"""Benchmark: node2vec walk generation, our numba kernel vs PecanPy vs the recipe's Python loop.

Usage (from the repository root)::

    bash benchmarks/setup_peers.sh                  # once: PecanPy in .venv-bench
    .venv/bin/python -m benchmarks.walk_kernel      # synthetic heavy-tailed graph
    .venv/bin/python -m benchmarks.walk_kernel --npz graph.npz   # arrays src, dst, weight

Every configuration runs in a fresh subprocess limited to its thread count (NUMBA_NUM_THREADS),
so peak RSS (ru_maxrss) is that configuration's own.  Timed: walk generation only -- not
graph loading, not JIT compilation (each worker warms up first), not PecanPy's conversion of
index walks to Python string lists.  PecanPy PreComp's table construction is timed separately
and shown in its own column.  A "step" is one transition (a walk of L nodes has L - 1 steps);
PecanPy's ``walk_length`` counts steps, so it is given ``walk_length - 1``.

This file is also the worker: ``--worker ours|pecanpy|python`` (PecanPy's worker runs in the
benchmark venv, so this module imports only the standard library and numpy at top level).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BENCH_PYTHON = ROOT / ".venv-bench" / "bin" / "python"


# ------------------------------------------------------------------ graph inputs


def synthetic_graph(
    num_nodes: int, num_edges: int, exponent: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Undirected Chung-Lu-style graph with heavy-tailed degrees and log-normal weights.

    Endpoints are drawn with probability proportional to ``(rank + 1) ** -exponent``;
    self-loops and repeated pairs are dropped and more pairs drawn until ``num_edges``
    distinct undirected edges exist.
    """
    rng = np.random.default_rng(seed)
    theta = (np.arange(num_nodes) + 1.0) ** -exponent
    theta /= theta.sum()
    keys = np.empty(0, dtype=np.int64)
    while len(keys) < num_edges:
        k = int((num_edges - len(keys)) * 1.3) + 1000
        a = rng.choice(num_nodes, size=k, p=theta)
        b = rng.choice(num_nodes, size=k, p=theta)
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        new = (lo * num_nodes + hi)[lo != hi]
        keys = np.unique(np.concatenate([keys, new]))
    keys = rng.permutation(keys)[:num_edges]
    src, dst = keys // num_nodes, keys % num_nodes
    # Relabel so node id is unrelated to degree, as in real data.
    perm = rng.permutation(num_nodes)
    weight = rng.lognormal(0.0, 1.0, num_edges)
    return perm[src], perm[dst], weight


def degree_stats(src: np.ndarray, dst: np.ndarray, num_nodes: int) -> dict[str, float]:
    """Degree summary, including sum(d^2) which sizes PecanPy PreComp's tables."""
    deg = np.bincount(np.concatenate([src, dst]), minlength=num_nodes).astype(np.float64)
    return {
        "nodes": num_nodes,
        "undirected_edges": len(src),
        "mean_degree": float(deg.mean()),
        "max_degree": int(deg.max()),
        "isolated": int((deg == 0).sum()),
        "sum_d2": float((deg**2).sum()),
    }


# ------------------------------------------------------------------ workers


def _cpu_s() -> float:
    """User + system CPU seconds of this process, all threads."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _rss_mb() -> float:
    """Peak resident set size of this process in MiB (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _result(steps: int, walks: int, seconds: float, cpu_s: float, setup_s: float,
            struct_mb: float, rss_before_mb: float) -> dict:
    """One worker's figures (what ``fmt_row`` prints)."""
    return {"steps": steps, "walks": walks, "seconds": seconds, "cpu_s": cpu_s,
            "load1": os.getloadavg()[0], "setup_s": setup_s, "struct_mb": struct_mb,
            "rss_before_mb": rss_before_mb, "peak_rss_mb": _rss_mb()}


def worker_ours(a: argparse.Namespace) -> dict:
    """Time our kernel on every node x num_walks."""
    from moviegraph.walks.csr import CSRGraph
    from moviegraph.walks.kernel import random_walks

    z = np.load(a.graph_npz)
    src, dst, w, n = z["src"], z["dst"], z["weight"], int(z["num_nodes"])
    t0 = time.perf_counter()
    g = CSRGraph.from_edges(src, dst, w, n)
    build_s = time.perf_counter() - t0
    del z, src, dst, w
    starts = np.repeat(np.arange(n, dtype=np.int64), a.num_walks)
    rounds = np.tile(np.arange(a.num_walks, dtype=np.int64), n)
    # Warm-up: JIT (or cache load) on a small batch.
    random_walks(g, starts[:64], rounds[:64], a.walk_length, a.p, a.q, 1, a.threads)
    rss_before, cpu0 = _rss_mb(), _cpu_s()
    t0 = time.perf_counter()
    walks = random_walks(g, starts, rounds, a.walk_length, a.p, a.q, 1, a.threads)
    secs, cpu = time.perf_counter() - t0, _cpu_s() - cpu0
    steps = int((walks >= 0).sum()) - len(starts)
    return _result(steps, len(starts), secs, cpu, build_s, g.nbytes / 2**20, rss_before)


def worker_pecanpy(a: argparse.Namespace) -> dict:
    """Time PecanPy's numba walk loop (``_random_walks``) with the chosen mode."""
    import numba
    from pecanpy import pecanpy

    numba.set_num_threads(a.threads)  # PecanPy's ``workers`` argument is unused upstream
    cls = {"SparseOTF": pecanpy.SparseOTF, "PreComp": pecanpy.PreComp}[a.mode]
    g = cls(p=a.p, q=a.q, workers=a.threads, verbose=False, extend=False, random_state=1)
    g.read_edg(a.edg, weighted=True, directed=False)
    t0 = time.perf_counter()
    g._preprocess_transition_probs()  # PreComp: builds the O(sum d^2) alias tables
    setup_s = time.perf_counter() - t0
    n = g.num_nodes
    rng = np.random.default_rng(0)
    starts = np.tile(np.arange(n, dtype=np.uint32), a.num_walks)
    rng.shuffle(starts)  # as simulate_walks does, for load balance
    if a.max_walks and len(starts) > a.max_walks:
        starts = starts[: a.max_walks]  # a uniform sample of the same start multiset
    move_forward = g.get_move_forward()
    has_nbrs = g.get_has_nbrs()
    steps_arg = a.walk_length - 1

    from numba_progress import ProgressBar

    def run(s: np.ndarray) -> np.ndarray:
        with ProgressBar(total=len(s), disable=True) as progress:
            return g._random_walks(len(s), steps_arg, 1, s, has_nbrs, move_forward, progress)

    run(starts[:64])  # warm-up: compile with this move_forward closure
    rss_before, cpu0 = _rss_mb(), _cpu_s()
    t0 = time.perf_counter()
    mat = run(starts)
    secs, cpu = time.perf_counter() - t0, _cpu_s() - cpu0
    steps = int(mat[:, -1].astype(np.int64).sum()) - len(starts)
    struct = g.data.nbytes + g.indices.nbytes + g.indptr.nbytes
    if a.mode == "PreComp":
        struct += g.alias_j.nbytes + g.alias_q.nbytes + g.alias_indptr.nbytes
    return _result(steps, len(starts), secs, cpu, setup_s, struct / 2**20, rss_before)


def worker_python(a: argparse.Namespace) -> dict:
    """The Keras recipe's walker: per step, weights over a dict of neighbours, np.random.choice."""
    z = np.load(a.graph_npz)
    adj: dict[int, dict[int, float]] = {}
    for s, d, w in zip(z["src"].tolist(), z["dst"].tolist(), z["weight"].tolist(), strict=True):
        adj.setdefault(s, {})[d] = w
        adj.setdefault(d, {})[s] = w
    nodes = sorted(adj)
    rng = np.random.default_rng(0)
    np.random.seed(0)

    def next_step(previous: int | None, current: int) -> int:
        neighbours = list(adj[current])
        weights = []
        for nb in neighbours:
            w = adj[current][nb]
            if nb == previous:
                weights.append(w / a.p)
            elif previous is None or previous in adj[nb]:
                weights.append(w)  # first step, or x next to the previous node
            else:
                weights.append(w / a.q)
        total = sum(weights)
        return np.random.choice(neighbours, size=1, p=[x / total for x in weights])[0]

    steps, walks = 0, 0
    cpu0 = _cpu_s()
    t0 = time.perf_counter()
    for start in rng.choice(nodes, size=a.max_walks, replace=True).tolist():
        walk = [start]
        while len(walk) < a.walk_length:
            previous = walk[-2] if len(walk) > 1 else None
            walk.append(next_step(previous, walk[-1]))
            steps += 1
        walks += 1
        if time.perf_counter() - t0 > a.time_limit:
            break
    secs, cpu = time.perf_counter() - t0, _cpu_s() - cpu0
    return _result(steps, walks, secs, cpu, 0.0, float("nan"), float("nan"))


# ------------------------------------------------------------------ driver


def run_worker(python: Path, worker: str, threads: int, extra: list[str]) -> dict:
    """Run one configuration in a fresh process pinned to ``threads`` numba threads."""
    env = dict(os.environ)
    env["NUMBA_NUM_THREADS"] = str(threads)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(threads)
    env["PYTHONPATH"] = str(ROOT / "lib")
    cmd = [str(python), str(Path(__file__).resolve()), "--worker", worker, "--threads"]
    cmd += [str(threads), *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["?"])[-1][:200]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def fmt_row(name: str, pq: str, threads: int, r: dict) -> str:
    """One line of the comparison table."""
    if "error" in r or "skipped" in r:
        why = r.get("error") or r.get("skipped")
        return f"| {name} | {pq} | {threads} | - | - | - | - | - | - | - | {why} |"
    rate = r["steps"] / r["seconds"]
    per_cpu = r["steps"] / max(r["cpu_s"], 1e-9)
    return (
        f"| {name} | {pq} | {threads} | {rate:,.0f} | {per_cpu:,.0f} | {r['load1']:.1f} "
        f"| {r['walks']:,} | {r['seconds']:.2f} "
        f"| {r['setup_s']:.2f} | {r['struct_mb']:.1f} | peak RSS {r['peak_rss_mb']:.0f} MiB |"
    )


def main(argv: list[str] | None = None) -> int:
    """Parse arguments; act as a worker or drive the whole comparison."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--npz", type=Path, help="graph with arrays src, dst, weight [, num_nodes]")
    ap.add_argument("--nodes", type=int, default=10_000)
    ap.add_argument("--edges", type=int, default=1_000_000)
    ap.add_argument(
        "--exponent", type=float, default=0.6, help="degree skew of the synthetic graph"
    )
    ap.add_argument("--graph-seed", type=int, default=0)
    ap.add_argument("--num-walks", type=int, default=10)
    ap.add_argument("--walk-length", type=int, default=80, help="nodes per walk incl. the start")
    ap.add_argument(
        "--pq", action="append", help="p,q setting (repeatable); default 1,1 and 0.25,4"
    )
    ap.add_argument("--threads-list", default="1,2")
    ap.add_argument("--peer-max-walks", type=int, default=20_000, help="cap for PecanPy runs")
    ap.add_argument("--python-walks", type=int, default=200)
    ap.add_argument("--python-seconds", type=float, default=20.0)
    ap.add_argument("--precomp-max-gb", type=float, default=6.0)
    ap.add_argument("--skip-pecanpy", action="store_true")
    # worker-only arguments
    ap.add_argument("--worker", choices=["ours", "pecanpy", "python"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--mode", default="SparseOTF")
    ap.add_argument("--graph-npz")
    ap.add_argument("--edg")
    ap.add_argument("--p", type=float, default=1.0)
    ap.add_argument("--q", type=float, default=1.0)
    ap.add_argument("--max-walks", type=int, default=0)
    ap.add_argument("--time-limit", type=float, default=20.0)
    a = ap.parse_args(argv)

    if a.worker:
        a.num_walks, a.walk_length = a.num_walks, a.walk_length
        fn = {"ours": worker_ours, "pecanpy": worker_pecanpy, "python": worker_python}[a.worker]
        print(json.dumps(fn(a)))
        return 0

    with tempfile.TemporaryDirectory(prefix="walkbench-") as tmp:
        if a.npz:
            z = np.load(a.npz)
            src, dst, w = z["src"].astype(np.int64), z["dst"].astype(np.int64), z["weight"]
            n = int(z["num_nodes"]) if "num_nodes" in z else int(max(src.max(), dst.max())) + 1
            label = f"{a.npz}"
        else:
            t0 = time.perf_counter()
            src, dst, w = synthetic_graph(a.nodes, a.edges, a.exponent, a.graph_seed)
            n = a.nodes
            label = f"synthetic (exponent {a.exponent}, seed {a.graph_seed})"
            print(f"generated graph in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
        stats = degree_stats(src, dst, n)
        npz = Path(tmp) / "graph.npz"
        edg = Path(tmp) / "graph.edg"
        np.savez(npz, src=src, dst=dst, weight=w, num_nodes=n)
        with open(edg, "w") as f:
            for s, d, x in zip(src.tolist(), dst.tolist(), w.tolist(), strict=True):
                f.write(f"{s}\t{d}\t{x!r}\n")
        precomp_gb = stats["sum_d2"] * 8 / 2**30  # uint32 alias_j + float32 alias_q

        print(f"graph: {label}")
        print("  " + ", ".join(f"{k}={v:,.6g}" for k, v in stats.items()))
        print(
            f"  walks: {a.num_walks} per node x {a.walk_length} nodes; PecanPy on at most "
            f"{a.peer_max_walks:,} of them (uniform sample), Python walker on "
            f"{a.python_walks} (<= {a.python_seconds:.0f}s)"
        )
        print(f"  PecanPy PreComp tables would take {precomp_gb:.2f} GiB")
        print()
        print(
            "| implementation | p,q | threads | steps/s | steps/CPU-s | load | walks | walk s "
            "| setup s | structure MiB | memory |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        threads_list = [int(t) for t in a.threads_list.split(",")]
        common = [
            "--graph-npz",
            str(npz),
            "--edg",
            str(edg),
            "--num-walks",
            str(a.num_walks),
            "--walk-length",
            str(a.walk_length),
        ]
        have_peer = BENCH_PYTHON.exists() and not a.skip_pecanpy
        for pq in a.pq or ["1,1", "0.25,4"]:
            p, q = (float(x) for x in pq.split(","))
            args = [*common, "--p", str(p), "--q", str(q)]
            for t in threads_list:
                r = run_worker(Path(sys.executable), "ours", t, args)
                print(fmt_row("moviegraph kernel", pq, t, r), flush=True)
            for mode in ("SparseOTF", "PreComp"):
                for t in threads_list:
                    if a.skip_pecanpy:
                        r = {"skipped": "--skip-pecanpy"}
                    elif not have_peer:
                        r = {"skipped": "no .venv-bench (run benchmarks/setup_peers.sh)"}
                    elif mode == "PreComp" and precomp_gb > a.precomp_max_gb:
                        r = {"skipped": f"tables need {precomp_gb:.1f} GiB > --precomp-max-gb"}
                    else:
                        extra = [*args, "--mode", mode, "--max-walks", str(a.peer_max_walks)]
                        r = run_worker(BENCH_PYTHON, "pecanpy", t, extra)
                    print(fmt_row(f"PecanPy {mode}", pq, t, r), flush=True)
            extra = [
                *args,
                "--max-walks",
                str(a.python_walks),
                "--time-limit",
                str(a.python_seconds),
            ]
            r = run_worker(Path(sys.executable), "python", 1, extra)
            print(fmt_row("recipe Python loop", pq, 1, r), flush=True)
    print()
    print("steps/CPU-s: steps per CPU-second of the worker (all its threads), the core-for-core")
    print("figure, robust to other load; load: 1-min load average at the end of the run.")
    print("walk s: timed walk generation (after warm-up); setup s: CSR build (ours) or")
    print("preprocess_transition_probs (PecanPy; non-zero only for PreComp); structure: bytes")
    print("of graph + sampling tables; memory: ru_maxrss of that configuration's process.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
