"""Recall, memory and embedding with the real all-MiniLM-L6-v2 model: memories are found the
moment they are written, change and disappear with them; modes, filters and recency; bad
arguments are TypeErrors naming the argument, bad values InvalidInputErrors naming the field."""

from __future__ import annotations

import asyncio
import datetime
import json
import pathlib
from typing import Any, Callable, Dict, List

import pytest

import opsweave
from conftest import DATA, SAMPLES, model_config

NOTES = {
    "acme": "Acme asked for a 10% discount on the Q3 renewal of their licence.",
    "incident": "The payment service returned 502 errors for twenty minutes after a deploy.",
    "kitchen": "Whoever empties the dishwasher last on Friday buys coffee beans.",
    "hiring": "We will open two backend engineering positions in January.",
}


def remember_all(weave: opsweave.Weave) -> Dict[str, str]:
    return {name: weave.remember(text, tags=[name]) for name, text in NOTES.items()}


def test_remember_then_recall_finds_it_first(memory: opsweave.Weave) -> None:
    ids = remember_all(memory)
    assert len(set(ids.values())) == len(NOTES)
    # No word in common with the note: only the model can connect them.
    hits = memory.recall("price reduction for a customer's contract", k=3)
    assert hits[0].id == ids["acme"], [h.title for h in hits]
    assert hits[0].entity == "note" and hits[0].source_kind == "memory"
    assert hits[0].title.startswith("Acme asked")
    assert hits[0].score == hits[0].explanation.score > 0
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert "dense" in hits[0].rankers
    # Hybrid: a word match and a meaning match agree, so both rankers found it.
    both = memory.recall("outage of the payment service", k=2)
    assert both[0].id == ids["incident"]
    assert set(both[0].rankers) == {"dense", "bm25"}
    assert both[0].to_dict()["explanation"]["found_by"][0]["rank"] == 1
    record = memory.record(ids["kitchen"])
    assert (record.entity, record.source.kind) == ("note", "memory")
    assert "kitchen" in json.dumps(record.fields)


def test_update_memory_changes_what_recall_finds(memory: opsweave.Weave) -> None:
    ids = remember_all(memory)
    updated = memory.update_memory(
        ids["incident"], "The team offsite will be in Lisbon in March.", tags=["travel"]
    )
    assert updated.id == ids["incident"] and updated.title.startswith("The team offsite")
    assert "travel" in json.dumps(updated.fields) and "incident" not in json.dumps(updated.fields)
    assert memory.recall("trip to Portugal", k=1)[0].id == ids["incident"]
    for mode in ("hybrid", "bm25", "dense"):
        found = memory.recall("payment service 502 errors", k=4, mode=mode)
        assert ids["incident"] not in [h.id for h in found[:1]], mode
    assert memory.recall("payment 502", mode="bm25") == []
    # Tags stay when none are given.
    kept = memory.update_memory(ids["kitchen"], "Whoever empties the dishwasher buys tea.")
    assert "kitchen" in json.dumps(kept.fields)


def test_forget_removes_it(memory: opsweave.Weave) -> None:
    ids = remember_all(memory)
    memory.forget(ids["kitchen"])
    for mode in ("hybrid", "bm25", "dense"):
        found = memory.recall("dishwasher coffee beans", k=10, mode=mode)
        assert ids["kitchen"] not in [h.id for h in found], mode
    assert len(memory.recall("dishwasher coffee beans", k=10, mode="dense")) == len(NOTES) - 1
    with pytest.raises(opsweave.NotFoundError):
        memory.record(ids["kitchen"])
    with pytest.raises(opsweave.NotFoundError):
        memory.forget(ids["kitchen"])


def test_embed_then_recall_modes_and_filters(memory: opsweave.Weave) -> None:
    for preset, file in SAMPLES:
        memory.ingest(DATA / file, preset=preset)
    report = memory.embed()
    assert report.model and report.dim == 384
    assert report.stale == report.embedded + report.skipped_empty and report.embedded >= 30
    assert report.calls >= 1 and report.tokens > 0
    assert report.bulk_load is False, "the embedded store indexes as it goes"
    again = memory.embed()
    assert (again.stale, again.embedded) == (0, 0)
    # Every model call was metered: the run's calls and tokens, without a price (none configured).
    (total,) = memory.usage()
    assert (total.key, total.model) == (report.model, report.model)
    assert (total.calls, total.embedding_tokens) == (report.calls, report.tokens)
    assert total.cost_usd is None
    hour_ago = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)
    (by_org,) = memory.usage(group_by="org", start=hour_ago)
    assert by_org.key == memory.scope.org and by_org.embedding_tokens == report.tokens
    assert by_org.client is None
    (by_project,) = memory.usage(group_by="project", start=hour_ago)
    scope = memory.scope
    assert (by_project.key, by_project.client) == (scope.project or "", scope.client or "")
    assert memory.usage(start=datetime.date(2000, 1, 1), end="2000-01-02") == []
    with pytest.raises(opsweave.InvalidInputError) as bad:
        memory.usage(group_by="team")  # type: ignore[arg-type]
    assert bad.value.field == "group_by"
    note = memory.remember("The cutover of the billing system moves to Saturday night.")

    dense = memory.recall("cutover", k=5, mode="dense")
    bm25 = memory.recall("cutover", k=5, mode="bm25")
    hybrid = memory.recall("cutover", k=5)
    assert len(dense) == 5 and all(h.rankers == ["dense"] for h in dense)
    assert bm25 and all(h.rankers == ["bm25"] for h in bm25)
    assert any(set(h.rankers) == {"dense", "bm25"} for h in hybrid)

    notes = memory.recall("cutover", entities="note")
    assert [h.id for h in notes] == [note]
    issues = memory.recall("cutover", entities=["issue", "message"], k=20)
    assert issues and all(h.entity in ("issue", "message") for h in issues)
    jira = memory.recall("cutover", sources=["jira"], k=20)
    assert jira and all(h.source_kind == "jira" for h in jira)

    recent = memory.recall("cutover", recency=opsweave.Recency(half_life_days=30, weight=0.5))
    assert all(h.explanation.recency is not None for h in recent)
    assert all(h.explanation.age_days is not None for h in recent)
    plain = memory.recall("cutover", recency=7)
    assert plain and plain[0].explanation.recency is not None
    assert memory.recall("cutover")[0].explanation.recency is None


def test_the_async_variants(tmp_path: pathlib.Path) -> None:
    async def scenario() -> None:
        async with await opsweave.AsyncWeave.open(config=model_config(tmp_path)) as weave:
            await weave.ingest(DATA / "jira-search.json", preset="jira-issue")
            report = await weave.embed()
            assert report.embedded > 0
            first, second = await asyncio.gather(
                weave.remember(NOTES["acme"], tags=("acme",)),
                weave.remember(NOTES["hiring"]),
            )
            hits = await weave.recall("price reduction for a customer's contract", k=1)
            assert hits[0].id == first
            record = await weave.update_memory(second, "Recruiting two backend engineers.")
            assert record.title.startswith("Recruiting")
            await weave.forget(first)
            found = await weave.recall("discount renewal", entities="note", mode="dense")
            assert [h.id for h in found] == [second]

    asyncio.run(scenario())


def test_bad_arguments_are_type_errors_naming_them(memory: opsweave.Weave) -> None:
    bad: List[Callable[[], Any]] = [
        lambda: memory.recall(5),  # type: ignore[arg-type]
        lambda: memory.recall("x", k="3"),  # type: ignore[arg-type]
        lambda: memory.recall("x", k=True),
        lambda: memory.recall("x", mode=2),  # type: ignore[arg-type]
        lambda: memory.recall("x", entities=[1]),  # type: ignore[list-item]
        lambda: memory.recall("x", sources=3),  # type: ignore[arg-type]
        lambda: memory.recall("x", recency="soon"),  # type: ignore[arg-type]
        lambda: memory.remember(42),  # type: ignore[arg-type]
        lambda: memory.remember("x", tags=[1]),  # type: ignore[list-item]
        lambda: memory.update_memory(17, "x"),  # type: ignore[arg-type]
        lambda: memory.update_memory("00000000000000aa", b"x"),  # type: ignore[arg-type]
        lambda: memory.forget(17),  # type: ignore[arg-type]
    ]
    names = ["query", "k", "k", "mode", "entities", "sources", "recency", "text", "tags", "id"]
    names += ["text", "id"]
    for call, name in zip(bad, names):
        with pytest.raises(TypeError) as caught:
            call()
        assert name in str(caught.value), (name, str(caught.value))


def test_bad_values_are_invalid_input_naming_the_field(memory: opsweave.Weave) -> None:
    task = memory.ingest(DATA / "jira-search.json", preset="jira-issue")
    assert task.inserted > 0
    issue = memory.search("cutover")[0].id
    cases: List[Any] = [
        (lambda: memory.recall("x", k=0), "k"),
        (lambda: memory.recall("x", k=5000), "k"),
        (lambda: memory.recall("x", mode="fuzzy"), "mode"),  # type: ignore[arg-type]
        (lambda: memory.recall("x", entities=["planet"]), "entities"),
        (lambda: memory.recall("x", recency=-1), "recency.half_life_days"),
        (lambda: memory.recall("x", recency=opsweave.Recency(7, weight=2)), "recency.weight"),
        (lambda: memory.recall("   "), "query"),
        (lambda: memory.remember("   "), "text"),
        (lambda: memory.remember("x", tags=[""]), "tags"),
        (lambda: memory.forget("xyz"), "id"),
        (lambda: memory.update_memory(issue, "not a memory"), "id"),
        (lambda: memory.forget(issue), "id"),
    ]
    for call, field in cases:
        with pytest.raises(opsweave.InvalidInputError) as caught:
            call()
        assert caught.value.field == field, (field, str(caught.value))
    # The issue was neither changed nor forgotten.
    assert memory.record(issue).entity == "issue"


def test_without_a_model_memory_says_what_to_configure(weave: opsweave.Weave) -> None:
    with pytest.raises(opsweave.InvalidInputError) as caught:
        weave.remember("a note")
    assert caught.value.field == "model" and "embed.model" in caught.value.message
    with pytest.raises(opsweave.InvalidInputError):
        weave.embed()
    # BM25 needs no model.
    weave.ingest(DATA / "jira-search.json", preset="jira-issue")
    assert weave.recall("cutover", mode="bm25")[0].rankers == ["bm25"]
