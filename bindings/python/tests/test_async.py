"""The async API: the same operations awaited on asyncio, run concurrently on the engine."""

from __future__ import annotations

import asyncio

import pytest

import opsweave
from conftest import DATA, SAMPLE_DAY, SAMPLES


async def _scenario(db_url: str) -> None:
    async with await opsweave.AsyncWeave.open(db_url) as weave:
        reports = [await weave.ingest(DATA / file, preset=preset) for preset, file in SAMPLES]
        assert sum(r.inserted for r in reports) == 38
        bad = await weave.ingest(DATA / "odoo-crm-lead-bad-rows.csv", preset="odoo-crm-lead")
        assert [(r.line, r.field) for r in bad.rejected][:2] == [(3, "date_deadline"), (4, "name")]

        focus = await weave.focus(limit=3, now=SAMPLE_DAY)
        assert [len(focus[h]) for h in ("today", "week", "month")] == [3, 3, 3]
        first = focus.today[0]
        assert (await weave.complete(first.id)).status == "done"
        assert (await weave.undo(first.id)).status == first.task.status
        assert (await weave.task(first.id, now=SAMPLE_DAY)).id == first.id

        # Reads run side by side on the engine's runtime.
        hits, graph, again = await asyncio.gather(
            weave.search("cutover"), weave.graph(now=SAMPLE_DAY), weave.focus(now=SAMPLE_DAY)
        )
        assert any("OPS-101" in h.title for h in hits)
        assert (await weave.record(hits[0].id)).title == hits[0].title
        assert again.today[0].id == first.id
        assert set(graph.lanes) == {"past7d", "today", "week"}
        resolved = await weave.resolve("odoo-ace-opportunities")
        assert resolved.matched >= 1
        assert isinstance(await weave.review_queue(), list)
        events = await weave.events(subject=first.id)
        assert [e.kind for e in events] == ["status_changed", "undone"]

        with pytest.raises(opsweave.NotFoundError):
            await weave.complete("0000000000000001")
        with pytest.raises(opsweave.InvalidInputError) as bad_id:
            await weave.undo("not-an-id")
        assert bad_id.value.field == "id"
    assert weave.closed


def test_async_scenario(db_url: str) -> None:
    asyncio.run(_scenario(db_url))


def test_async_calls_run_concurrently_with_the_loop(db_url: str) -> None:
    async def main() -> int:
        weave = await opsweave.AsyncWeave.open(db_url)
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        task = asyncio.ensure_future(ticker())
        for preset, file in SAMPLES:
            await weave.ingest(DATA / file, preset=preset)
        task.cancel()
        weave.close()
        return ticks

    # The loop kept running other work while the engine ingested.
    assert asyncio.run(main()) > 0


def test_cancelling_an_awaited_call_leaves_the_store_usable(db_url: str) -> None:
    async def main() -> None:
        weave = await opsweave.AsyncWeave.open(db_url)
        call = asyncio.ensure_future(weave.ingest(DATA / "jira-search.json", preset="jira-issue"))
        await asyncio.sleep(0)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        report = await weave.ingest(DATA / "jira-search.json", preset="jira-issue")
        assert report.inserted + report.unchanged == 8

    asyncio.run(main())
