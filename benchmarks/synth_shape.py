"""Generate MovieLens-25M-shaped data and compare its shape with MovieLens 25M.

    .venv/bin/python -m benchmarks.synth_shape [--ratings 25000095] [--out /tmp/synth-N]

Prints generation wall time, peak memory (RSS) and the shape comparison table.
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

from moviegraph.sources import synth


def _peak_rss_mib() -> float:
    """Peak resident memory of this process so far (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ratings", type=int, default=synth.ML25M_RATINGS)
    parser.add_argument("--out", type=Path, default=None, help="default /tmp/synth-<ratings>")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    out = args.out or Path(f"/tmp/synth-{args.ratings}")

    t0 = time.perf_counter()
    summary = synth.generate(
        out, ratings=args.ratings, seed=args.seed, progress=not args.no_progress
    )
    wall = time.perf_counter() - t0
    gen_peak = _peak_rss_mib()
    sizes = ", ".join(
        f"{p.name} {p.stat().st_size / 2**20:,.1f} MiB" for p in summary.files.values()
    )
    print(f"generated {summary.n_ratings:,} ratings, {summary.n_users:,} users, "
          f"{summary.n_movies:,} rated movies into {out} ({sizes})")  # fmt: skip
    print(f"generate wall time: {wall:.1f} s; peak RSS after generate: {gen_peak:,.0f} MiB")

    t1 = time.perf_counter()
    report = synth.shape_report(summary.files["ratings"])
    print(f"shape_report: {time.perf_counter() - t1:.1f} s; peak RSS overall: "
          f"{_peak_rss_mib():,.0f} MiB")  # fmt: skip
    print()
    print(synth.format_shape_comparison(report))


if __name__ == "__main__":
    main()
