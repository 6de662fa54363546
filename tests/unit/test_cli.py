"""The command line: one subcommand per job with only its own flags, built from the registry."""

from __future__ import annotations

import subprocess
import sys

import pytest

from moviegraph.cli import EXIT_CONFIG, EXIT_OK, main, parse
from moviegraph.config import PROJECT_ROOT
from moviegraph.stages import JOBS


@pytest.mark.parametrize("job", list(JOBS))
def test_each_job_help_lists_its_own_options(job, capsys):
    assert main([job, "--help"]) == EXIT_OK
    out = capsys.readouterr().out
    assert out.startswith(f"usage: moviegraph {job}")
    for flag in JOBS[job].flags:
        assert flag.option in out
    others = {f.option for j in JOBS.values() if j.name != job for f in j.flags}
    own = {f.option for f in JOBS[job].flags}
    for option in others - own:
        assert f"  {option} " not in out, f"{job} --help lists {option}"


def test_flags_belong_to_their_job():
    _, cfg = parse(["export", "--out", "/tmp/x"])
    assert cfg.export.out == "/tmp/x" and cfg.synth.out == ""
    _, cfg = parse(["synth", "--out", "/tmp/y", "--ratings", "1e6"])
    assert (cfg.synth.out, cfg.synth.ratings, cfg.export.out) == ("/tmp/y", 1_000_000, "exports")
    _, cfg = parse(["ingest", "--append", "new/ratings.csv"])
    assert (cfg.ingest.append, cfg.ingest.dataset, cfg.ingest.path) == (
        True, "path", "new/ratings.csv")
    _, cfg = parse(["train", "--resume", "--set", "train.node2vec.dim=32"])
    assert cfg.train.resume and cfg.train.node2vec.dim == 32
    with pytest.raises(SystemExit):
        parse(["walks", "--append", "x"])  # not a flag of walks


@pytest.mark.parametrize("argv, message", [
    (["pipeline", "--from", "bogus"], "--from bogus: unknown stage; stages: ingest, pairs"),
    (["pipeline", "--until", "nope"], "--until nope: unknown stage"),
    (["pipeline", "--from", "walks", "--until", "pairs"], "--from walks comes after --until"),
])
def test_bad_stage_names_exit_2_with_one_line(argv, message, capsys):
    assert main(argv) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err


def test_unknown_job_and_flag_exit_2(capsys):
    assert main(["nojob"]) == EXIT_CONFIG
    assert main(["walks", "--bogus"]) == EXIT_CONFIG
    assert "Traceback" not in capsys.readouterr().err


def test_module_entry_point_help_exits_0():
    proc = subprocess.run([sys.executable, "-m", "moviegraph", "ingest", "--help"],
                          capture_output=True, text=True, timeout=120, cwd=PROJECT_ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "--append FILE" in proc.stdout and "--strict" in proc.stdout
