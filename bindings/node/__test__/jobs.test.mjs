// The job queue: enqueue (idempotency keys), read, list, cancel, and the built-in worker run
// in-process by runJobs; scopes keep jobs apart; bad arguments name themselves.
import { test } from 'node:test'
import { getEventListeners } from 'node:events'
import assert from 'node:assert/strict'
import { opsweave, dbUrl } from './helpers.mjs'

const SLEEP = { ms: 20 }

test('enqueue, idempotency, list, cancel, then runJobs runs the rest', async () => {
  const url = dbUrl()
  const weave = await opsweave.Weave.open(url)

  const a = await weave.enqueue('sleep', SLEEP)
  assert.equal(typeof a.id, 'number')
  assert.ok(Number.isInteger(a.id) && a.id >= 0)
  assert.equal(a.kind, 'sleep')
  assert.deepEqual(a.payload, SLEEP)
  assert.equal(a.status, 'queued')
  assert.deepEqual(a.scope, weave.scope)
  assert.equal(a.attempts, 0)
  assert.equal(a.maxAttempts, 3)
  assert.equal(a.backoffMs, 1000)
  assert.equal(a.progress, 0)
  assert.equal(a.idempotencyKey, undefined)
  assert.equal(a.finishedAt, undefined)
  assert.ok(!Number.isNaN(Date.parse(a.createdAt)) && !Number.isNaN(Date.parse(a.runAfter)))

  // The same key returns the same job; another payload or kind under it is a conflict.
  const b = await weave.enqueue('sleep', SLEEP, { idempotencyKey: 'nightly-1', maxAttempts: 5, backoffMs: 250 })
  assert.equal(b.idempotencyKey, 'nightly-1')
  assert.equal(b.maxAttempts, 5)
  assert.equal(b.backoffMs, 250)
  const again = await weave.enqueue('sleep', { ms: 20 }, { idempotencyKey: 'nightly-1' })
  assert.equal(again.id, b.id)
  assert.equal(again.maxAttempts, 5)
  await assert.rejects(weave.enqueue('sleep', { ms: 30 }, { idempotencyKey: 'nightly-1' }), (err) => {
    assert.equal(err.code, 'CONFLICT')
    assert.equal(err.field, 'idempotency_key')
    assert.match(err.message, /nightly-1/)
    return true
  })
  await assert.rejects(weave.enqueue('noop', SLEEP, { idempotencyKey: 'nightly-1' }), { code: 'CONFLICT' })

  const c = await weave.enqueue('sleep', SLEEP)
  const d = await weave.enqueue('sleep', SLEEP)
  const ids = (jobs) => jobs.map((job) => job.id)
  assert.deepEqual(ids(await weave.jobs()), [d.id, c.id, b.id, a.id], 'newest first')
  assert.deepEqual(ids(await weave.jobs({ limit: 2 })), [d.id, c.id])

  const cancelled = await weave.cancelJob(c.id)
  assert.equal(cancelled.id, c.id)
  assert.equal(cancelled.status, 'cancelled')
  assert.equal((await weave.cancelJob(c.id)).status, 'cancelled', 'cancelling twice changes nothing')
  assert.deepEqual(ids(await weave.jobs({ status: 'queued' })), [d.id, b.id, a.id])
  assert.deepEqual(ids(await weave.jobs({ status: 'cancelled' })), [c.id])
  assert.deepEqual(await weave.openJobs(), { queued: 3, running: 0 })
  assert.deepEqual(await weave.openJobs({ kinds: ['noop'] }), { queued: 0, running: 0 })
  assert.deepEqual(await weave.openJobs({ kinds: ['sleep', 'noop'] }), { queued: 3, running: 0 })

  const report = await weave.runJobs({ timeoutMs: 60_000 })
  assert.deepEqual(report, { done: 3, failed: 0, lost: 0 })
  assert.deepEqual(await weave.openJobs(), { queued: 0, running: 0 })
  for (const id of [a.id, b.id, d.id]) {
    const job = await weave.job(id)
    assert.equal(job.status, 'done')
    assert.equal(job.progress, 1)
    assert.equal(job.attempts, 1)
    assert.equal(typeof job.finishedAt, 'string')
  }
  assert.equal((await weave.job(c.id)).status, 'cancelled')
  assert.deepEqual(ids(await weave.jobs({ status: 'done' })), [d.id, b.id, a.id])
  assert.deepEqual(await weave.jobs({ status: 'queued' }), [])
  await assert.rejects(weave.cancelJob(a.id), { code: 'CONFLICT' })

  // Another org on the same store sees none of it.
  const other = await opsweave.Weave.open(url, { org: 'other-org' })
  assert.equal(other.scope.org, 'other-org')
  await assert.rejects(other.job(a.id), { code: 'NOT_FOUND' })
  await assert.rejects(other.cancelJob(d.id), { code: 'NOT_FOUND' })
  assert.deepEqual(await other.jobs(), [])
  assert.deepEqual(await other.runJobs(), { done: 0, failed: 0, lost: 0 })
  other.close()
  weave.close()
})

test('a job with a bad payload fails; runAfter waits; runJobs stops at its timeout', async () => {
  const weave = await opsweave.Weave.open(dbUrl())
  const bad = await weave.enqueue('sleep', { seconds: 1 }, { maxAttempts: 1 })
  const later = new Date(Date.now() + 3_600_000)
  const waiting = await weave.enqueue('noop', null, { runAfter: later.toISOString() })
  assert.equal(waiting.payload, null)
  assert.ok(Math.abs(Date.parse(waiting.runAfter) - later.getTime()) < 1000)

  const started = Date.now()
  const report = await weave.runJobs({ kinds: ['sleep', 'noop'], concurrency: 1, timeoutMs: 500 })
  assert.ok(Date.now() - started < 30_000)
  assert.deepEqual(report, { done: 0, failed: 1, lost: 0 })
  const failed = await weave.job(bad.id)
  assert.equal(failed.status, 'failed')
  assert.match(failed.error, /ms/)
  assert.equal((await weave.job(waiting.id)).status, 'queued', 'not before its runAfter')

  const dated = await weave.enqueue('noop', {}, { runAfter: '2030-01-02' })
  assert.equal(new Date(dated.runAfter).toISOString().slice(0, 10), '2030-01-02')
  weave.close()
})

test('bad arguments name themselves', async () => {
  const weave = await opsweave.Weave.open(dbUrl())
  const invalid = (field) => ({ code: 'INVALID_INPUT', field })

  await assert.rejects(weave.job(-1), invalid('id'))
  await assert.rejects(weave.job(0), invalid('id'))
  await assert.rejects(weave.job(1.5), invalid('id'))
  await assert.rejects(weave.cancelJob(-3), invalid('id'))
  await assert.rejects(weave.job(Number.MAX_SAFE_INTEGER + 10), invalid('id'))
  await assert.rejects(weave.job(424242), { code: 'NOT_FOUND' })
  for (const call of [() => weave.job('1'), () => weave.cancelJob(undefined), () => weave.enqueue(42)]) {
    assert.throws(call, (err) => {
      assert.ok(err instanceof TypeError)
      assert.equal(err.code, 'ERR_INVALID_ARG_TYPE')
      return true
    })
  }
  assert.throws(() => weave.job({}), /"id"/)
  assert.throws(() => weave.enqueue(null), /"kind"/)

  await assert.rejects(weave.jobs({ limit: 0 }), invalid('limit'))
  await assert.rejects(weave.jobs({ limit: 1001 }), invalid('limit'))
  await assert.rejects(weave.jobs({ limit: -5 }), invalid('limit'))
  await assert.rejects(weave.jobs({ status: 'later' }), invalid('status'))

  await assert.rejects(weave.enqueue('', SLEEP), invalid('kind'))
  await assert.rejects(weave.enqueue('sleep', SLEEP, { maxAttempts: 0 }), invalid('max_attempts'))
  await assert.rejects(weave.enqueue('sleep', SLEEP, { maxAttempts: 2.5 }), invalid('max_attempts'))
  await assert.rejects(weave.enqueue('sleep', SLEEP, { backoffMs: -5 }), invalid('backoff_ms'))
  await assert.rejects(weave.enqueue('sleep', SLEEP, { backoffMs: 3_600_001 }), invalid('backoff_ms'))
  await assert.rejects(weave.enqueue('sleep', SLEEP, { runAfter: 'next tuesday' }), invalid('run_after'))
  await assert.rejects(weave.enqueue('sleep', SLEEP, { idempotencyKey: 'a\nb' }), invalid('idempotency_key'))

  await assert.rejects(weave.runJobs({ concurrency: 0 }), invalid('concurrency'))
  await assert.rejects(weave.runJobs({ timeoutMs: -1 }), invalid('timeout_ms'))
  assert.deepEqual(await weave.jobs(), [], 'nothing was queued by the bad calls')

  weave.close()
  await assert.rejects(weave.jobs(), { code: 'UNAVAILABLE' })
  await assert.rejects(weave.enqueue('noop'), { code: 'UNAVAILABLE' })
})

test('runJobs stops claiming when its AbortSignal aborts; the job in hand finishes', async () => {
  const weave = await opsweave.Weave.open(dbUrl())
  const first = await weave.enqueue('sleep', { ms: 300 })
  const second = await weave.enqueue('sleep', { ms: 300 })
  const controller = new AbortController()
  const run = weave.runJobs({ concurrency: 1 }, controller.signal)
  while ((await weave.job(first.id)).status !== 'running') {
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  controller.abort()
  assert.deepEqual(await run, { done: 1, failed: 0, lost: 0 })
  assert.equal((await weave.job(first.id)).status, 'done')
  assert.equal((await weave.job(second.id)).status, 'queued', 'nothing claimed after the abort')

  // A signal aborted before the call: the run stops before it claims anything.
  assert.deepEqual(await weave.runJobs({}, AbortSignal.abort()), { done: 0, failed: 0, lost: 0 })
  assert.equal((await weave.job(second.id)).status, 'queued')

  assert.throws(() => weave.runJobs({}, { aborted: 'no' }), { name: 'TypeError', message: /"signal"/ })
  assert.throws(() => weave.runJobs({}, 'soon'), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' })
  assert.deepEqual(await weave.runJobs({ timeoutMs: 60_000 }, undefined), { done: 1, failed: 0, lost: 0 })

  // One signal for many runs (a SIGINT controller): each run takes its listener off when it ends.
  const shared = new AbortController()
  for (let i = 0; i < 12; i++) {
    await weave.runJobs({ timeoutMs: 60_000 }, shared.signal)
    assert.equal(getEventListeners(shared.signal, 'abort').length, 0, `after run ${i}`)
  }
  weave.close()
  await assert.rejects(weave.runJobs({}, shared.signal), { code: 'UNAVAILABLE' })
  assert.equal(getEventListeners(shared.signal, 'abort').length, 0, 'a failed run too')
})
