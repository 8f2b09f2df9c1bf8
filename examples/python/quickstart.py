"""opsweave from Python: ingest two sample exports into a fresh embedded store, show the rows
that were rejected, print the focus list, then complete and undo the top task."""

from __future__ import annotations

import pathlib
import tempfile

import opsweave

DATA = pathlib.Path(__file__).resolve().parents[1] / "data"

with tempfile.TemporaryDirectory() as tmp, opsweave.Weave.open(f"sqlite://{tmp}/ops.db") as weave:
    weave.ingest(DATA / "jira-search.json", preset="jira-issue")
    report = weave.ingest(DATA / "odoo-crm-lead-bad-rows.csv", preset="odoo-crm-lead")
    print(f"odoo: {report.inserted} new, {report.rejected_total} rejected")
    for bad in report.rejected:
        print(f"  line {bad.line} {bad.field or '-'}: {bad.reason}")

    focus = weave.focus(limit=3, now="2026-11-23")
    for horizon, tasks in focus.horizons.items():
        print(horizon)
        for task in tasks:
            print(f"  {task.score:5.1f}  {task.id}  {task.title}")

    top = focus.today[0]
    print("complete:", weave.complete(top.id).status, "undo:", weave.undo(top.id).status)
    print("search 'cutover':", [hit.title for hit in weave.search("cutover")])
