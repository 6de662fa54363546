"""Run the pipeline through spark-submit.sh and print time and peak memory per stage.

    .venv/bin/python -m benchmarks.pipeline_scale -- --config conf/large.toml \
        --set warehouse.root=/tmp/big/warehouse --set ingest.dataset=path \
        --path data/synth-25000095

Everything after ``--`` goes to ``./spark-submit.sh pipeline``. The pipeline's own output
streams through; its ``[stage] NAME started`` / ``done in`` lines split the run, and the
RSS of the whole process tree (spark-submit, the driver JVM, the Python driver and every
Python worker) is sampled every 0.5 s, so each stage gets the peak it reached. The table
at the end repeats the stage times the pipeline printed next to those peaks.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.tree_rss import PeakRSS

ROOT = Path(__file__).resolve().parents[1]
STAGE_LINE = re.compile(r"^\[stage\] (\w+) (started|done in ([\d.]+)s|skipped)")


def main() -> int:
    """Run the pipeline, stream its output, print the per-stage table; exit with its code."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pipeline_args", nargs="*", help="arguments after `--`")
    args = parser.parse_args()
    cmd = [str(ROOT / "spark-submit.sh"), "pipeline", *args.pipeline_args]
    print("running:", " ".join(cmd), flush=True)
    t0 = time.time()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, bufsize=1)
    seconds: dict[str, str] = {}
    order: list[str] = []
    assert proc.stdout is not None
    with PeakRSS(proc.pid, interval=0.5) as sampler:
        sampler.phase = "startup"
        for line in proc.stdout:
            sys.stdout.write(line)
            m = STAGE_LINE.match(line)
            if not m:
                continue
            name, what = m[1], m[2]
            if what == "started":
                sampler.phase = name
                order.append(name)
            else:
                if name not in order:
                    order.append(name)
                seconds[name] = m[3] if m[3] else "skipped"
                sampler.phase = f"after {name}"
        code = proc.wait()
    wall = time.time() - t0
    print(f"\nexit {code}; {wall:.1f}s wall in all; peak RSS of the process tree per stage:")
    print(f"{'stage':<10} {'seconds':>9} {'peak GiB':>9}")
    for name in order:
        peak = sampler.peaks.get(name, 0) / 2**30
        print(f"{name:<10} {seconds.get(name, 'failed'):>9} {peak:9.2f}")
    print(f"{'all':<10} {wall:9.1f} {sampler.gib:9.2f}")
    return code


if __name__ == "__main__":
    sys.exit(main())
