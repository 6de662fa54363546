"""The stage registry is the one description of the jobs: README, tables, models agree."""

from __future__ import annotations

from dataclasses import fields, is_dataclass

from moviegraph import config
from moviegraph.config import PROJECT_ROOT
from moviegraph.stages import JOBS, STAGES, jobs_table, writer_of
from moviegraph.tables import SCHEMAS


def _readme_jobs_table() -> str:
    text = (PROJECT_ROOT / "README.md").read_text()
    start = text.index("| job | reads | writes |")
    return text[start:text.index("\n\n", start)]


def test_readme_jobs_table_is_the_registry():
    assert _readme_jobs_table() == jobs_table(), (
        "README's jobs table differs from the stage registry; paste "
        "`python -c 'from moviegraph.stages import jobs_table; print(jobs_table())'`")


def test_every_table_is_written_by_exactly_one_stage():
    import moviegraph.runs  # noqa: F401  (declares the runs table, written by the pipeline)

    for table in SCHEMAS:
        writers = [s.name for s in STAGES.values() if table in s.writes]
        if table == "runs":
            assert writers == [], "runs is the pipeline's own record, no stage writes it"
        else:
            assert len(writers) == 1, f"{table}: written by {writers or 'no stage'}"
            assert writer_of(table).name == writers[0]
    for stage in STAGES.values():
        assert set(stage.writes) <= set(SCHEMAS), f"{stage.name} writes an unknown table"


def test_stages_read_only_what_earlier_stages_write():
    order = list(STAGES)
    for stage in STAGES.values():
        for table in (*stage.reads, *stage.optional_reads):
            assert order.index(writer_of(table).name) < order.index(stage.name), (
                f"{stage.name} reads {table} before {writer_of(table).name} writes it")


def test_documented_cells_name_every_table():
    for stage in STAGES.values():
        for table in stage.writes:
            assert f"`{table}" in stage.writes_markdown(), (stage.name, table)
        for table in stage.reads:
            assert stage.reads_doc or f"`{table}`" in stage.reads_markdown(), (stage.name, table)


def test_stage_sections_and_flags_are_config_keys():
    cfg = config.Config()
    section_names = {f.name for f in fields(cfg)}
    for job in JOBS.values():
        for flag in job.flags:
            if flag.key:
                section, _, name = flag.key.partition(".")
                assert name in {f.name for f in fields(getattr(cfg, section))}, flag.key
        if job.name in STAGES:
            assert set(STAGES[job.name].sections) <= section_names, job.name


def test_model_registry_matches_the_model_sections():
    from moviegraph.train.models import MODELS

    sections = [f.name for f in fields(config.TrainConfig)
                if is_dataclass(getattr(config.Config().train, f.name)) and f.name != "scorers"]
    assert list(MODELS) == list(config.MODELS) == sections
    # Every model has its shipped scorer's section.
    assert [f.name for f in fields(config.ScorersConfig)] == list(MODELS)
    tc = config.Config().train
    for name, model in MODELS.items():
        assert set(model.inputs(tc)) <= set(STAGES["train"].reads), name
