"""Fixtures: a fresh embedded store per test, and one loaded with the sample exports."""

from __future__ import annotations

import json
import os
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


def model_config(tmp_path: pathlib.Path) -> pathlib.Path:
    """A configuration file naming an embedded store and the MiniLM test model.

    Needs the model and ONNX Runtime (``eval "$(adapters/opsweave-onnx/fetch-test-model.sh)"``
    sets ``OPSWEAVE_TEST_MODEL_DIR`` and ``ORT_DYLIB_PATH``); fails, never skips, without them."""
    model_dir = os.environ.get("OPSWEAVE_TEST_MODEL_DIR")
    if not model_dir:
        pytest.fail(
            "OPSWEAVE_TEST_MODEL_DIR is not set: run "
            '`eval "$(adapters/opsweave-onnx/fetch-test-model.sh)"` first'
        )
    config = tmp_path / "opsweave.toml"
    config.write_text(
        f"db = {json.dumps('sqlite://' + str(tmp_path / 'memory.db'))}\n"
        "[embed]\n"
        'model = "onnx:all-minilm-l6-v2"\n'
        f"model_dir = {json.dumps(model_dir)}\n"
    )
    return config


@pytest.fixture
def memory(tmp_path: pathlib.Path) -> Iterator[opsweave.Weave]:
    """An embedded store whose recall and memory use the real MiniLM model."""
    with opsweave.Weave.open(config=model_config(tmp_path)) as handle:
        yield handle
