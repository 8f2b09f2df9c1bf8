"""Background jobs from Python: queue, read, list, cancel, and run them in this process."""

from __future__ import annotations

import _thread
import asyncio
import datetime as dt
import json
import signal
import threading
import time

import pytest

import opsweave
from conftest import DATA


def test_jobs_are_queued_idempotently_listed_cancelled_and_run(weave: opsweave.Weave) -> None:
    first = weave.enqueue("sleep", {"ms": 20}, idempotency_key="nightly")
    assert isinstance(first, opsweave.Job)
    assert (first.kind, first.status, first.payload) == ("sleep", "queued", {"ms": 20})
    assert first.scope == weave.scope and first.max_attempts == 3 and not first.finished
    assert weave.enqueue("sleep", {"ms": 20}, idempotency_key="nightly").id == first.id
    with pytest.raises(opsweave.ConflictError, match="nightly") as err:
        weave.enqueue("sleep", {"ms": 21}, idempotency_key="nightly")
    assert err.value.field == "idempotency_key"

    second = weave.enqueue("sleep", {"ms": 10}, max_attempts=1, backoff_ms=0)
    doomed = weave.enqueue("sleep", {"ms": 10})
    cancelled = weave.cancel_job(doomed.id)
    assert cancelled.status == "cancelled" and cancelled.finished
    assert [j.id for j in weave.jobs(status="queued")] == [second.id, first.id]
    assert [j.id for j in weave.jobs(limit=1)] == [doomed.id], "newest first"
    assert weave.open_jobs() == opsweave.OpenJobs(queued=2, running=0)
    assert weave.open_jobs(kinds="sleep").total == 2
    assert weave.open_jobs(kinds=["ingest", "embed"]).total == 0
    with pytest.raises(TypeError, match="kinds"):
        weave.open_jobs(kinds=[1])  # type: ignore[list-item]

    report = weave.run_jobs(timeout=60)
    assert report == opsweave.WorkerReport(done=2, failed=0, lost=0)
    for id in (first.id, second.id):
        job = weave.job(id)
        assert job.status == "done" and job.progress == 1.0 and job.finished_at is not None
    assert weave.job(doomed.id).status == "cancelled"
    with pytest.raises(opsweave.ConflictError):
        weave.cancel_job(first.id)
    assert weave.open_jobs().total == 0
    assert json.loads(json.dumps(weave.job(first.id).to_dict()))["status"] == "done"


def test_an_ingest_job_loads_a_file_and_keeps_its_report(weave: opsweave.Weave) -> None:
    job = weave.enqueue(
        "ingest", {"file": str(DATA / "odoo-crm-lead.csv"), "preset": "odoo-crm-lead"}
    )
    assert weave.run_jobs(kinds=["ingest"], timeout=120).done == 1
    done = weave.job(job.id)
    assert done.status == "done" and done.message is not None
    assert json.loads(done.message)["inserted"] == 10
    hits = weave.search("migration")
    assert any(h.title.startswith("Data platform migration to AWS") for h in hits), hits
    today = weave.focus(now="2026-11-23").today
    assert today and today[0].title.startswith("Data platform migration"), today


def test_a_job_with_a_bad_payload_fails_for_good_with_its_error(weave: opsweave.Weave) -> None:
    job = weave.enqueue("sleep", {"ms": "soon"}, max_attempts=3, backoff_ms=10)
    report = weave.run_jobs(timeout=60)
    assert (report.done, report.failed) == (0, 1)
    failed = weave.job(job.id)
    assert failed.status == "failed" and failed.finished
    assert failed.attempts == 1, "bad input is not retried: it would fail the same way again"
    assert failed.error is not None and "ms" in failed.error, failed.error


def test_jobs_belong_to_their_scope(db_url: str) -> None:
    with opsweave.Weave.open(db_url, org="acme") as acme, opsweave.Weave.open(
        db_url, org="globex"
    ) as globex:
        job = acme.enqueue("noop")
        with pytest.raises(opsweave.NotFoundError):
            globex.job(job.id)
        assert globex.jobs() == []
        # A later run_after keeps it queued past a short run.
        hour = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
        later = acme.enqueue("noop", run_after=hour)
        assert later.run_after > dt.datetime.now(dt.timezone.utc)
        assert acme.run_jobs(timeout=0.5).done == 1
        assert acme.job(later.id).status == "queued"


def test_bad_job_arguments_name_what_is_wrong(weave: opsweave.Weave) -> None:
    with pytest.raises(TypeError, match="id must be an int"):
        weave.job("7")  # type: ignore[arg-type]
    with pytest.raises(opsweave.InvalidInputError) as err:
        weave.job(0)
    assert err.value.field == "id"
    with pytest.raises(opsweave.InvalidInputError, match="status"):
        weave.jobs(status="finished")  # type: ignore[arg-type]
    with pytest.raises(opsweave.InvalidInputError) as err:
        weave.jobs(limit=0)
    assert err.value.field == "limit"
    with pytest.raises(opsweave.InvalidInputError) as err:
        weave.enqueue("sleep", max_attempts=0)
    assert err.value.field == "max_attempts"
    with pytest.raises(opsweave.InvalidInputError) as err:
        weave.enqueue("sleep", backoff_ms=3_600_001)
    assert err.value.field == "backoff_ms"
    with pytest.raises(opsweave.InvalidInputError) as err:
        weave.enqueue("sleep", backoff_ms=-1)
    assert err.value.field == "backoff_ms"
    with pytest.raises(opsweave.InvalidInputError) as err:
        weave.enqueue("sleep", run_after="next tuesday")
    assert err.value.field == "run_after"
    with pytest.raises(TypeError):
        weave.enqueue("sleep", {"when": object()})
    with pytest.raises(opsweave.InvalidInputError, match="timeout"):
        weave.run_jobs(timeout=-1)
    with pytest.raises(opsweave.InvalidInputError, match="no handler"):
        weave.run_jobs(kinds=["mail-merge"])
    with pytest.raises(opsweave.NotFoundError):
        weave.cancel_job(424242)


def _interrupt_once_running(weave: opsweave.Weave, job: int, times: int) -> threading.Thread:
    """A thread that waits for the job to be running, then presses Ctrl-C `times` times."""

    def press() -> None:
        deadline = time.monotonic() + 30
        while weave.job(job).status != "running" and time.monotonic() < deadline:
            time.sleep(0.02)
        for _ in range(times):
            _thread.interrupt_main()
            time.sleep(0.3)

    thread = threading.Thread(target=press)
    thread.start()
    return thread


@pytest.fixture
def ctrl_c(request: pytest.FixtureRequest) -> None:
    # A shell starts background jobs with SIGINT ignored, and then Python installs no handler
    # (interrupt_main would do nothing): put Python's own handler in place for the test.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    request.addfinalizer(lambda: signal.signal(signal.SIGINT, previous))


@pytest.mark.usefixtures("ctrl_c")
def test_ctrl_c_lets_the_jobs_in_hand_finish(weave: opsweave.Weave) -> None:
    running = weave.enqueue("sleep", {"ms": 1500})
    waiting = weave.enqueue("sleep", {"ms": 10})
    presser = _interrupt_once_running(weave, running.id, times=1)
    with pytest.raises(KeyboardInterrupt):
        weave.run_jobs(concurrency=1, timeout=60)
    presser.join()
    # The job in hand finished; nothing more was claimed after the stop.
    assert weave.job(running.id).status == "done"
    assert weave.job(waiting.id).status == "queued"


@pytest.mark.usefixtures("ctrl_c")
def test_a_second_ctrl_c_hands_the_jobs_back(weave: opsweave.Weave) -> None:
    running = weave.enqueue("sleep", {"ms": 60_000})
    presser = _interrupt_once_running(weave, running.id, times=2)
    with pytest.raises(KeyboardInterrupt):
        weave.run_jobs(concurrency=1, timeout=120)
    presser.join()
    # Stopped mid-run and handed back for another run, its attempt not used up.
    back = weave.job(running.id)
    assert (back.status, back.attempts) == ("queued", 0)


def test_async_jobs(db_url: str) -> None:
    async def main() -> None:
        async with await opsweave.AsyncWeave.open(db_url) as weave:
            job = await weave.enqueue("sleep", {"ms": 5})
            assert [j.id for j in await weave.jobs()] == [job.id]
            assert (await weave.open_jobs(kinds=["sleep"])).queued == 1
            report = await weave.run_jobs(timeout=60)
            assert report.done == 1
            assert (await weave.job(job.id)).status == "done"
            other = await weave.enqueue("noop")
            assert (await weave.cancel_job(other.id)).status == "cancelled"

    asyncio.run(main())


def test_cancelling_async_run_jobs_hands_the_jobs_back(db_url: str) -> None:
    async def main() -> None:
        async with await opsweave.AsyncWeave.open(db_url) as weave:
            job = await weave.enqueue("sleep", {"ms": 60_000})
            run = asyncio.create_task(weave.run_jobs(concurrency=1, timeout=120))
            deadline = time.monotonic() + 30
            while (await weave.job(job.id)).status != "running":
                assert time.monotonic() < deadline, "the job never started"
                await asyncio.sleep(0.02)
            run.cancel()
            with pytest.raises(asyncio.CancelledError):
                await run
            # Handed back before the cancellation reached the caller: queued again, its attempt
            # not used up, instead of waiting out its lease.
            back = await weave.job(job.id)
            assert (back.status, back.attempts) == ("queued", 0)

    asyncio.run(main())
