"""Command line: ``python -m moviegraph <job> [--config F] [--set key=value ...]``.

``jobs/<job>.py`` (what spark-submit runs) and ``python -m moviegraph`` both land here.
Arguments and config are validated before Spark starts.

Exit codes (for schedulers): 0 success, 2 bad arguments or config, 3 bad or missing
input data, 4 a required table is missing, 5 another pipeline holds the warehouse
(retry later), 1 anything else.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

from moviegraph import config as config_mod
from moviegraph.config import PROJECT_ROOT, Config, ConfigError

EXIT_OK, EXIT_ERROR, EXIT_CONFIG, EXIT_INPUT, EXIT_TABLE, EXIT_LOCKED = 0, 1, 2, 3, 4, 5


JOBS = ("fetch", "synth", "ingest", "pairs", "edges", "walks", "train", "similar", "evaluate",
        "export", "pipeline")

# Job-specific flags are shortcuts for config keys.
_SHORTCUTS = {
    "--dataset": ("ingest.dataset", str),
    "--path": ("ingest.path", str),
    "--strict": ("ingest.strict", None),
    "--append": ("ingest.append", None),
    "--ratings": ("synth.ratings", str),
    "--out": ("synth.out", str),
    "--seed": ("synth.seed", str),
    "--resume": ("train.resume", None),
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser shared by every job."""
    parser = argparse.ArgumentParser(
        prog="moviegraph", description="moviegraph batch jobs (see README.md)")
    parser.add_argument("job", choices=JOBS, help="stage to run, or 'pipeline' for all")
    parser.add_argument("--config", action="append", default=[], metavar="FILE",
                        help="TOML config file(s), applied in order over the defaults")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        dest="overrides", help="override one config key, e.g. walks.p=0.5")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress bars; one line per stage (for schedulers)")
    parser.add_argument("--force", action="store_true",
                        help="run stages even when config and inputs are unchanged")
    parser.add_argument("--from", dest="start", metavar="STAGE",
                        help="pipeline: first stage to run")
    parser.add_argument("--until", metavar="STAGE", help="pipeline: last stage to run")
    for flag, (key, kind) in _SHORTCUTS.items():
        if kind is None:
            parser.add_argument(flag, action="store_true", help=f"sets {key}=true")
        else:
            parser.add_argument(flag, help=f"sets {key}")
    return parser


def parse(argv: list[str]) -> tuple[argparse.Namespace, Config]:
    """Parse arguments and load the validated config (raises ConfigError)."""
    args = build_parser().parse_args(argv)
    overrides = list(args.overrides)
    for flag, (key, kind) in _SHORTCUTS.items():
        value = getattr(args, flag.lstrip("-").replace("-", "_"))
        if kind is None and value:
            overrides.append(f"{key}=true")
        elif kind is not None and value is not None:
            if key == "synth.ratings":
                value = str(int(float(value)))  # accept 1e6
            overrides.append(f"{key}={value}")
    configs = args.config or _default_configs()
    cfg = config_mod.load(configs, overrides)
    if args.quiet:
        cfg.spark.progress = False
    return args, cfg


def _default_configs() -> list[str]:
    local = PROJECT_ROOT / "conf" / "local.toml"
    return [str(local)] if local.is_file() else []


def main(argv: list[str] | None = None) -> int:
    """Run one job; return its exit code."""
    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s",
                        datefmt="%H:%M:%S")
    logging.getLogger("py4j").setLevel(logging.WARNING)
    try:
        args, cfg = parse(argv)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except SystemExit as exc:  # argparse already printed the usage
        return EXIT_CONFIG if exc.code else EXIT_OK
    from moviegraph import pipeline
    from moviegraph.errors import InputError
    from moviegraph.tables import TableError

    started = time.time()
    try:
        pipeline.run_job(args.job, cfg, quiet=args.quiet, force=args.force,
                         start=args.start, until=args.until)
    except InputError as exc:
        print(f"input error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except TableError as exc:
        print(f"missing table: {exc}", file=sys.stderr)
        return EXIT_TABLE
    except pipeline.PipelineLockedError as exc:
        print(f"locked: {exc}", file=sys.stderr)
        return EXIT_LOCKED
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    print(f"[moviegraph] {args.job} finished in {time.time() - started:.1f}s", flush=True)
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
