"""The blocking API over a real embedded store: ingest, focus, complete / undo, search, graph."""

from __future__ import annotations

import datetime as dt
import json
import pathlib

import pytest

import opsweave
from conftest import DATA, SAMPLE_DAY, SAMPLES


def test_open_creates_the_store_and_closes(db_url: str, tmp_path: pathlib.Path) -> None:
    with opsweave.Weave.open(db_url, org="acme") as weave:
        assert not weave.closed
        assert weave.scope == opsweave.Scope(org="acme")
        assert weave.focus().horizons == {"today": [], "week": [], "month": []}
    assert weave.closed
    assert (tmp_path / "opsweave.db").exists()
    with pytest.raises(opsweave.UnavailableError, match="closed"):
        weave.focus()


def test_ingest_a_preset_sample_file(weave: opsweave.Weave) -> None:
    report = weave.ingest(DATA / "odoo-crm-lead.csv", preset="odoo-crm-lead")
    assert isinstance(report, opsweave.IngestReport)
    assert (report.inserted, report.updated, report.unchanged) == (10, 0, 0)
    assert report.rejected == [] and report.rejected_total == 0
    assert report.mapping == "odoo-crm-lead"
    assert report.file.endswith("odoo-crm-lead.csv")
    again = weave.ingest(str(DATA / "odoo-crm-lead.csv"), preset="odoo-crm-lead")
    assert (again.inserted, again.unchanged) == (0, 10), "re-ingest is idempotent"


def test_bad_rows_are_reported_with_line_and_field(weave: opsweave.Weave) -> None:
    report = weave.ingest(DATA / "odoo-crm-lead-bad-rows.csv", preset="odoo-crm-lead")
    assert report.inserted == 2
    assert report.rejected_total == 5
    by_line = {r.line: r for r in report.rejected}
    assert sorted(by_line) == [3, 4, 5, 6, 7]
    assert by_line[3].field == "date_deadline" and "2026-13-01" in by_line[3].reason
    assert by_line[4].field == "name" and "missing" in by_line[4].reason
    assert by_line[5].field is None and "columns" in by_line[5].reason
    assert by_line[7].field == "expected_revenue"
    assert report.to_dict()["rejected"][0] == {
        "line": 3,
        "field": "date_deadline",
        "reason": by_line[3].reason,
    }


def test_ingest_rows_with_a_mapping_dict(weave: opsweave.Weave) -> None:
    mapping = opsweave.preset("odoo-crm-lead")
    assert mapping["name"] == "odoo-crm-lead"
    rows: list[dict[str, object]] = [
        {
            "id": "lead-1",
            "name": "Backup modernisation",
            "partner_name": "Duff",
            "email_from": "homer@duff.example",
            "website": "duff.example",
            "expected_revenue": 15000,
            "probability": 50.0,
            "date_deadline": dt.date(2026, 11, 24),
            "stage_id": "New",
            "user_id": "Alan",
            "priority": "2",
        },
        {"id": "lead-2", "name": "", "date_deadline": "2026-11-30"},
    ]
    report = weave.ingest(rows, mapping=mapping, name="crm-rows")
    assert report.file == "crm-rows"
    assert report.inserted == 1
    assert [(r.line, r.field) for r in report.rejected] == [(2, "name")]
    top = weave.focus(now=SAMPLE_DAY, horizons=["today", "week"])
    titles = [t.title for t in top.today + top.week]
    assert any(title.startswith("Backup modernisation") for title in titles), titles


def test_ingest_with_a_mapping_file(weave: opsweave.Weave, tmp_path: pathlib.Path) -> None:
    path = tmp_path / "crm.json"
    path.write_text(json.dumps(opsweave.preset("odoo-crm-lead")))
    report = weave.ingest(DATA / "odoo-crm-lead.csv", mapping=path)
    assert report.inserted == 10


def test_focus_top_three_per_horizon(loaded: opsweave.Weave) -> None:
    focus = loaded.focus(limit=3, now=SAMPLE_DAY)
    assert list(focus.horizons) == ["today", "week", "month"]
    wide = loaded.focus(limit=10, now=SAMPLE_DAY)
    for horizon in ("today", "week", "month"):
        tasks = focus[horizon]
        assert len(tasks) == 3, horizon
        assert all(t.horizon == horizon for t in tasks)
        assert all(t.task.status in ("todo", "doing") for t in tasks)
        scores = [t.score for t in tasks]
        assert scores == sorted(scores, reverse=True)
        # The top three are the first three of a longer list: nothing better was skipped.
        assert [t.id for t in tasks] == [t.id for t in wide[horizon][:3]]
    best = focus.today[0]
    parts = best.priority.breakdown
    total = sum(c.points for c in (parts.urgency, parts.importance, parts.recency, parts.source))
    assert abs(total + parts.boost.points - best.score) < 1e-6
    as_dict = focus.to_dict()
    assert as_dict["horizons"]["today"][0]["task"]["id"] == best.id
    json.dumps(as_dict)  # plain data all the way down
    only_week = loaded.focus(horizons="week", now=dt.datetime(2026, 11, 23, 9))
    assert list(only_week.horizons) == ["week"]
    assert [t.id for t in only_week.week] == [t.id for t in focus.week]


def test_complete_then_undo(loaded: opsweave.Weave) -> None:
    first = loaded.focus(limit=3, now=SAMPLE_DAY).today[0]
    before = first.task.status
    done = loaded.complete(first.id)
    assert done.id == first.id and done.status == "done"
    assert isinstance(done.completed_at, dt.datetime)
    assert loaded.complete(first.id).status == "done", "completing twice changes nothing"
    after = loaded.focus(limit=3, now=SAMPLE_DAY).today
    assert first.id not in [t.id for t in after]
    restored = loaded.undo(first.id)
    assert restored.status == before and restored.completed_at is None
    assert loaded.undo(first.id).status == before, "undoing twice changes nothing more"
    assert loaded.focus(limit=3, now=SAMPLE_DAY).today[0].id == first.id
    kinds = [e.kind for e in loaded.events(subject=first.id)]
    assert kinds == ["status_changed", "undone"]
    assert loaded.events(subject=first.id)[0].actor == "python"


def test_mark_pins_to_today(loaded: opsweave.Weave) -> None:
    month = loaded.focus(limit=3, now=SAMPLE_DAY).month[-1]
    pinned = loaded.mark(month.id, pinned=True, boost=5)
    assert pinned.pinned and pinned.boost == 5
    today = loaded.focus(limit=3, now=SAMPLE_DAY).today
    assert today[0].id == month.id and today[0].priority.breakdown.pinned
    assert loaded.task(month.id, now=SAMPLE_DAY).horizon == "today"


def test_search_finds_records(loaded: opsweave.Weave) -> None:
    hits = loaded.search("cutover", limit=5)
    assert hits, "the Jira sample has cutover issues"
    assert all(isinstance(h, opsweave.SearchHit) for h in hits)
    assert any("OPS-101" in h.title for h in hits)
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    record = loaded.record(hits[0].id)
    assert record.id == hits[0].id and record.source.kind == "jira"
    assert loaded.search("zzzqqqxxyy") == []


def test_graph_has_lanes_nodes_and_edges(loaded: opsweave.Weave) -> None:
    first = loaded.focus(now=SAMPLE_DAY).today[0]
    loaded.complete(first.id)
    graph = loaded.graph(now=dt.datetime.now(dt.timezone.utc))
    assert set(graph.lanes) == {"past7d", "today", "week"}
    assert first.id in graph.lanes["past7d"]
    ids = {n.id for n in graph.nodes}
    assert all(i in ids for lane in graph.lanes.values() for i in lane)
    assert all(e.from_id in ids and e.to_id in ids for e in graph.edges)
    month = loaded.graph(window="month", now=SAMPLE_DAY)
    assert "month" in month.lanes


def test_presets_are_listed() -> None:
    names = opsweave.presets()
    assert [n for n, _ in SAMPLES] == names


def test_resolve_links_twins_and_queues_reviews(loaded: opsweave.Weave) -> None:
    report = loaded.resolve("odoo-ace-opportunities")
    assert (report.mode, report.left_records, report.right_records) == ("full", 10, 8)
    assert report.matched >= 1
    edges = loaded.graph(window="month", now=SAMPLE_DAY).edges
    assert any(e.kind == "same_entity" for e in edges)
    again = loaded.resolve("odoo-ace-opportunities", incremental=True)
    assert (again.mode, again.new_records) == ("incremental", 0)

    dedupe = loaded.resolve("task-dedupe")
    queue = loaded.review_queue(resolver="task-dedupe")
    assert len(queue) == dedupe.review > 0
    first = queue[0]
    assert first.status == "pending" and first.explanation
    decided = loaded.decide_review("task-dedupe", first.left, first.right, accept=False)
    assert decided.status == "rejected"
    assert [(q.left, q.right) for q in loaded.review_queue(resolver="task-dedupe")] == [
        (q.left, q.right) for q in queue[1:]
    ]
    with pytest.raises(opsweave.InvalidInputError) as unknown:
        loaded.resolve("salesforce-dedupe")
    assert unknown.value.field == "resolver"
