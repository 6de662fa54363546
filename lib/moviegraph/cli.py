"""Command line: ``python -m moviegraph <job> [--config F] [--set key=value ...] [job options]``.

``jobs/<job>.py`` (what spark-submit runs) and ``python -m moviegraph`` both land here.
Every job is a subcommand built from the stage registry (:mod:`moviegraph.stages`) and
takes only its own options (``python -m moviegraph <job> --help``). Arguments and config
are validated before Spark starts.

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
from moviegraph.stages import JOBS, STAGES, Job

EXIT_OK, EXIT_ERROR, EXIT_CONFIG, EXIT_INPUT, EXIT_TABLE, EXIT_LOCKED = 0, 1, 2, 3, 4, 5


def _common(parser: argparse.ArgumentParser, job: Job) -> None:
    """The options every job takes, then the job's own."""
    parser.add_argument("--config", action="append", default=[], metavar="FILE",
                        help="TOML config file(s), applied in order over the defaults "
                             "(default: conf/local.toml)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        dest="overrides", help="override one config key, e.g. walks.p=0.5 "
                                               "(lists: comma-separated)")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress bars; one line per stage (for schedulers)")
    if job.name in STAGES or job.name == "pipeline":
        parser.add_argument("--force", action="store_true",
                            help="run even when config and inputs are unchanged")
    for flag in job.flags:
        help_text = flag.help + (f" (sets {flag.key})" if flag.key else "")
        if not flag.option.startswith("-"):  # a positional argument
            parser.add_argument(flag.attribute, metavar=flag.metavar, help=help_text)
        elif flag.metavar is None:
            parser.add_argument(flag.option, action="store_true", dest=flag.attribute,
                                help=help_text)
        else:
            parser.add_argument(flag.option, metavar=flag.metavar, dest=flag.attribute,
                                help=help_text)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser: one subcommand per job of the registry."""
    parser = argparse.ArgumentParser(
        prog="moviegraph", description="moviegraph batch jobs (see README.md); "
        "`moviegraph <job> --help` lists a job's options")
    sub = parser.add_subparsers(dest="job", metavar="job", required=True)
    for job in JOBS.values():
        _common(sub.add_parser(job.name, help=job.summary, description=job.summary), job)
    return parser


def _check_slice(args: argparse.Namespace) -> None:
    """``--from`` / ``--until`` must name stages (ConfigError: exit 2, one line)."""
    names = list(STAGES)
    for option, value in (("--from", getattr(args, "start", None)),
                          ("--until", getattr(args, "until", None))):
        if value is not None and value not in names:
            raise ConfigError(f"{option} {value}: unknown stage; stages: {', '.join(names)}")
    start, until = getattr(args, "start", None), getattr(args, "until", None)
    if start and until and names.index(start) > names.index(until):
        raise ConfigError(f"--from {start} comes after --until {until}")


def parse(argv: list[str]) -> tuple[argparse.Namespace, Config]:
    """Parse arguments and load the validated config (raises ConfigError)."""
    args = build_parser().parse_args(argv)
    job = JOBS[args.job]
    _check_slice(args)
    overrides = list(args.overrides)
    for flag in job.flags:
        overrides += flag.overrides(getattr(args, flag.attribute))
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
    except SystemExit as exc:  # argparse already printed the usage (or the help)
        return EXIT_CONFIG if exc.code else EXIT_OK
    from moviegraph import pipeline
    from moviegraph.errors import InputError
    from moviegraph.lock import PipelineLockedError
    from moviegraph.tables import TableError

    started = time.time()
    try:
        pipeline.run_job(args.job, cfg, quiet=args.quiet, force=getattr(args, "force", False),
                         start=getattr(args, "start", None), until=getattr(args, "until", None))
    except InputError as exc:
        print(f"input error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except TableError as exc:
        print(f"missing table: {exc}", file=sys.stderr)
        return EXIT_TABLE
    except PipelineLockedError as exc:
        print(f"locked: {exc}", file=sys.stderr)
        return EXIT_LOCKED
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    print(f"[moviegraph] {args.job} finished in {time.time() - started:.1f}s", flush=True)
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
