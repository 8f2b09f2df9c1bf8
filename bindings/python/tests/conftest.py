"""Fixtures: a fresh embedded store per test, and one loaded with the sample exports."""

from __future__ import annotations

import pathlib
from typing import Iterator, List, Tuple

import pytest

import opsweave

DATA = pathlib.Path(__file__).resolve().parents[3] / "examples" / "data"

# The samples are dated around this day; focus and graph are asked "as of" it.
SAMPLE_DAY = "2026-11-23"

SAMPLES: List[Tuple[str, str]] = [
    ("odoo-crm-lead", "odoo-crm-lead.csv"),
    ("ace-opportunity", "ace-opportunity.csv"),
    ("gmail-message", "gmail-messages.json"),
    ("jira-issue", "jira-search.json"),
    ("github-issue", "github-issues.json"),
]


@pytest.fixture
def db_url(tmp_path: pathlib.Path) -> str:
    return f"sqlite://{tmp_path / 'opsweave.db'}"


@pytest.fixture
def weave(db_url: str) -> Iterator[opsweave.Weave]:
    with opsweave.Weave.open(db_url) as handle:
        yield handle


@pytest.fixture
def loaded(weave: opsweave.Weave) -> opsweave.Weave:
    for preset, file in SAMPLES:
        report = weave.ingest(DATA / file, preset=preset)
        assert report.rejected_total == 0, report.rejected
    return weave
