"""Every command the README shows parses: its job exists, its options are the job's own,
and every ``--set key=value`` names a real setting with a valid value (as the job would
check it, before Spark starts). A renamed key or flag breaks this test, not a user's run."""

from __future__ import annotations

import re
import shlex

import pytest

from moviegraph import cli
from moviegraph.config import PROJECT_ROOT, Config, ConfigError, apply

# spark-submit's own options that take a value, and the launcher's flags (spark-submit.sh).
SPARK_OPTIONS = {"--master", "--deploy-mode", "--conf", "--name", "--queue", "--num-executors",
                 "--executor-memory", "--executor-cores", "--driver-memory", "--driver-cores",
                 "--total-executor-cores", "--archives", "--py-files", "--files", "--jars",
                 "--packages", "--properties-file", "--principal", "--keytab"}
LAUNCHER_FLAGS = {"--ship", "--ship-venv", "--ship-executor-env"}
COMMAND = re.compile(r"(\$ )?(?:\./spark-submit\.sh|python -m moviegraph)\s(.*)")
SET = re.compile(r"--set ([a-z_.]+)=([^\s`]*)")
README = (PROJECT_ROOT / "README.md").read_text()


def _lines(text: str) -> list[tuple[str, bool]]:
    """Command lines of the README (continuation lines joined, inline code included),
    each with whether it is shown at a ``$`` prompt followed by its error."""
    text = re.sub(r"\\\n\s*", " ", text)
    found = []
    for line in text.splitlines():
        for chunk in line.split("`"):
            match = COMMAND.search(chunk)
            if match:
                found.append((match.group(2), bool(match.group(1))))
    return found


def _job_argv(rest: str) -> list[str] | None:
    """The job's argv of one command line (None for a usage pattern such as ``<job>``)."""
    tokens = shlex.split(rest, comments=True)
    argv: list[str] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token in SPARK_OPTIONS and not argv:
            i += 2
            continue
        if token in LAUNCHER_FLAGS and not argv:
            i += 1
            continue
        argv.append(token)
        i += 1
    if not argv or any(t.startswith(("<", "[")) or "..." in t for t in argv):
        return None
    return argv


COMMANDS = [argv for line, shown_failing in _lines(README)
            if not shown_failing and (argv := _job_argv(line)) is not None]
FAILING = [argv for line, shown_failing in _lines(README)
           if shown_failing and (argv := _job_argv(line)) is not None]


def test_the_readme_shows_commands():
    jobs = {argv[0] for argv in COMMANDS}
    assert {"pipeline", "ingest", "walks", "train"} <= jobs, jobs


@pytest.mark.parametrize("argv", COMMANDS, ids=[" ".join(a) for a in COMMANDS])
def test_readme_command_parses(argv, monkeypatch):
    monkeypatch.chdir(PROJECT_ROOT)  # --config conf/... is relative to the checkout
    try:
        cli.parse(argv)
    except SystemExit as exc:
        if exc.code:
            pytest.fail(f"README command rejected by the CLI: {' '.join(argv)}")


@pytest.mark.parametrize("argv", FAILING, ids=[" ".join(a) for a in FAILING])
def test_readme_error_examples_fail_as_shown(argv, monkeypatch):
    monkeypatch.chdir(PROJECT_ROOT)
    with pytest.raises(ConfigError) as caught:
        cli.parse(argv)
    assert f"error: {caught.value}" in README, "the README shows another message"


def test_every_set_key_in_the_readme_is_a_setting():
    shown = "\n".join(line for line in README.splitlines() if not line.startswith("$ "))
    keys = {key: value for key, value in SET.findall(shown)}  # error examples aside
    assert len(keys) > 10
    for key, value in keys.items():
        cfg = Config()
        if key.startswith(("spark.conf.", "section.")) or "." not in key:
            continue  # passed through to Spark as it is, or the syntax itself
        if not value or "..." in value or value.isupper():
            value = str(_current(cfg, key))  # a placeholder: the key must still exist
        try:
            apply(cfg, key, value)
        except ConfigError as exc:
            pytest.fail(f"README's --set {key}={value}: {exc}")


def _current(cfg: Config, key: str) -> object:
    obj: object = cfg
    for part in key.split("."):
        if not hasattr(obj, part):
            pytest.fail(f"README's --set {key}: no such setting")
        obj = getattr(obj, part)
    return ",".join(map(str, obj)) if isinstance(obj, list) else obj
