"""Drift guard: every public method of the Rust facade has a Python counterpart (sync and async)
or is listed as deliberately omitted in bindings/facade-surface.json."""

from __future__ import annotations

import importlib.resources
import json
import pathlib
import re
from typing import Any, Dict, Set

import opsweave

ROOT = pathlib.Path(__file__).resolve().parents[3]


def facade_methods() -> Set[str]:
    names: Set[str] = set()
    for path in (ROOT / "core" / "opsweave" / "src").glob("*.rs"):
        text = path.read_text()
        for block in re.finditer(r"^impl Weave \{\n(.*?)^\}", text, re.M | re.S):
            names.update(re.findall(r"^    pub (?:async )?fn (\w+)", block.group(1), re.M))
    return names


def test_every_facade_method_has_a_python_counterpart() -> None:
    table: Dict[str, Dict[str, Any]] = json.loads(
        (ROOT / "bindings" / "facade-surface.json").read_text()
    )["methods"]
    methods = facade_methods()
    assert "focus" in methods and "ingest_rows" in methods, "the facade parser found nothing"
    assert methods == set(table), (
        f"unlisted facade methods: {sorted(methods - set(table))}; "
        f"listed but gone: {sorted(set(table) - methods)}"
    )
    for name, entry in table.items():
        if "omitted" in entry:
            continue
        for cls in (opsweave.Weave, opsweave.AsyncWeave):
            assert hasattr(cls, entry["python"]), f"{cls.__name__} lacks {entry['python']} ({name})"


def test_the_package_ships_its_types() -> None:
    files = importlib.resources.files("opsweave")
    assert files.joinpath("py.typed").is_file()
    assert files.joinpath("_opsweave.pyi").is_file()
