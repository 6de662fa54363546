"""The pipeline killed with kill -9 mid-stage, then re-run, equals an uninterrupted run.

The runs happen in the background from the session's start
(``tests/integration/fault_runs.py``: ``killed_started``); this test checks what they left.
"""

from __future__ import annotations

from tests.integration.tables_compare import assert_same_tables, lease_given_back


def test_killed_pipeline_resumes_to_the_same_tables(killed_started, reference_pipeline):
    killed = killed_started.result()
    left = killed.lease
    assert left.epoch > 0 and not left.released, "the killed run should leave its lease"
    assert not killed.left_walks

    rerun = killed.rerun
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "[stage] ingest skipped" in rerun.stdout
    assert "[stage] pairs skipped" in rerun.stdout
    assert "[stage] walks done" in rerun.stdout
    assert_same_tables(killed.root, reference_pipeline)
    assert lease_given_back(killed.root)
