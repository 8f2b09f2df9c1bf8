// The Promise API over a real embedded store: ingest, focus, complete / undo, search, graph.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { opsweave, DATA, SAMPLE_DAY, SAMPLES, dbUrl, loaded } from './helpers.mjs'

test('open creates the store, close releases it', async () => {
  const url = dbUrl()
  const weave = await opsweave.Weave.open(url, { org: 'acme' })
  assert.equal(weave.closed, false)
  assert.deepEqual(weave.scope, { org: 'acme' })
  const focus = await weave.focus()
  assert.deepEqual(focus, { today: [], week: [], month: [] })
  assert.ok(existsSync(url.slice('sqlite://'.length)))
  weave.close()
  assert.equal(weave.closed, true)
  await assert.rejects(weave.focus(), { code: 'UNAVAILABLE', message: /closed/ })
})

test('ingest a preset sample file, idempotently', async () => {
  const weave = await opsweave.Weave.open(dbUrl())
  const report = await weave.ingest(join(DATA, 'odoo-crm-lead.csv'), { preset: 'odoo-crm-lead' })
  assert.equal(report.inserted, 10)
  assert.equal(report.rejectedTotal, 0)
  assert.equal(report.mapping, 'odoo-crm-lead')
  const again = await weave.ingest(join(DATA, 'odoo-crm-lead.csv'), { preset: 'odoo-crm-lead' })
  assert.equal(again.inserted, 0)
  assert.equal(again.unchanged, 10)
})

test('bad rows are reported with line and field', async () => {
  const weave = await opsweave.Weave.open(dbUrl())
  const report = await weave.ingest(join(DATA, 'odoo-crm-lead-bad-rows.csv'), { preset: 'odoo-crm-lead' })
  assert.equal(report.inserted, 2)
  assert.equal(report.rejectedTotal, 5)
  const lines = report.rejected.map((r) => [r.line, r.field ?? null])
  assert.deepEqual(lines, [
    [3, 'date_deadline'],
    [4, 'name'],
    [5, null],
    [6, 'user_id'],
    [7, 'expected_revenue'],
  ])
  assert.match(report.rejected[0].reason, /2026-13-01/)
})

test('ingest rows with a mapping object', async () => {
  const weave = await opsweave.Weave.open(dbUrl())
  const mapping = opsweave.preset('odoo-crm-lead')
  assert.equal(mapping.name, 'odoo-crm-lead')
  const rows = [
    {
      id: 'lead-1', name: 'Backup modernisation', partner_name: 'Duff', email_from: 'homer@duff.example',
      website: 'duff.example', expected_revenue: 15000, probability: 50, date_deadline: '2026-11-24',
      stage_id: 'New', user_id: 'Alan', priority: '2',
    },
    { id: 'lead-2', name: '', date_deadline: '2026-11-30' },
  ]
  const report = await weave.ingest(rows, { mapping, name: 'crm-rows' })
  assert.equal(report.file, 'crm-rows')
  assert.equal(report.inserted, 1)
  assert.deepEqual(report.rejected.map((r) => [r.line, r.field]), [[2, 'name']])
})

test('focus: top 3 per horizon, best first', async () => {
  const weave = await loaded()
  const focus = await weave.focus({ limit: 3, now: SAMPLE_DAY })
  const wide = await weave.focus({ limit: 10, now: SAMPLE_DAY })
  assert.deepEqual(Object.keys(focus).filter((k) => focus[k] !== undefined).sort(), ['month', 'today', 'week'])
  for (const horizon of ['today', 'week', 'month']) {
    const tasks = focus[horizon]
    assert.equal(tasks.length, 3, horizon)
    assert.ok(tasks.every((t) => t.horizon === horizon && ['todo', 'doing'].includes(t.status)))
    const scores = tasks.map((t) => t.priority.score)
    assert.deepEqual(scores, [...scores].sort((a, b) => b - a))
    assert.deepEqual(tasks.map((t) => t.id), wide[horizon].slice(0, 3).map((t) => t.id))
  }
  const best = focus.today[0]
  const b = best.priority.breakdown
  const total = b.urgency.points + b.importance.points + b.recency.points + b.source.points + b.boost.points
  assert.ok(Math.abs(total - best.priority.score) < 1e-6)
  assert.equal(typeof best.sourceKind, 'string')
  const weekOnly = await weave.focus({ horizons: ['week'], now: new Date('2026-11-23T09:00:00Z').toISOString() })
  assert.deepEqual(weekOnly.week.map((t) => t.id), focus.week.map((t) => t.id))
  assert.equal(weekOnly.today, undefined)
})

test('complete then undo', async () => {
  const weave = await loaded()
  const first = (await weave.focus({ now: SAMPLE_DAY })).today[0]
  const done = await weave.complete(first.id)
  assert.equal(done.status, 'done')
  assert.equal(typeof done.completedAt, 'string')
  assert.equal((await weave.complete(first.id)).status, 'done')
  const after = (await weave.focus({ now: SAMPLE_DAY })).today
  assert.ok(!after.some((t) => t.id === first.id))
  const restored = await weave.undo(first.id)
  assert.equal(restored.status, first.status)
  assert.equal(restored.completedAt, undefined)
  assert.equal((await weave.undo(first.id)).status, first.status)
  assert.equal((await weave.focus({ now: SAMPLE_DAY })).today[0].id, first.id)
  const events = await weave.events({ subject: first.id })
  assert.deepEqual(events.map((e) => e.kind.type), ['status_changed', 'undone'])
  assert.equal(events[0].actor, 'node')
})

test('mark pins to today', async () => {
  const weave = await loaded()
  const last = (await weave.focus({ now: SAMPLE_DAY })).month.at(-1)
  const marked = await weave.mark(last.id, { pinned: true, boost: 5 })
  assert.equal(marked.pinned, true)
  assert.equal(marked.boost, 5)
  const today = (await weave.focus({ now: SAMPLE_DAY })).today
  assert.equal(today[0].id, last.id)
  assert.equal((await weave.task(last.id, SAMPLE_DAY)).horizon, 'today')
})

test('search finds records, best first', async () => {
  const weave = await loaded()
  const hits = await weave.search('cutover', 5)
  assert.ok(hits.some((h) => h.title.includes('OPS-101')))
  const scores = hits.map((h) => h.score)
  assert.deepEqual(scores, [...scores].sort((a, b) => b - a))
  const record = await weave.record(hits[0].id)
  assert.equal(record.id, hits[0].id)
  assert.equal(record.source.kind, 'jira')
  assert.deepEqual(await weave.search('zzzqqqxxyy'), [])
})

test('graph has lanes, nodes and edges', async () => {
  const weave = await loaded()
  const first = (await weave.focus({ now: SAMPLE_DAY })).today[0]
  await weave.complete(first.id)
  // past7d ends at `now`: the task was completed at the real time, after SAMPLE_DAY's 09:00.
  const graph = await weave.graph()
  assert.ok(graph.lanes.past7d.includes(first.id))
  const ids = new Set(graph.nodes.map((n) => n.id))
  for (const lane of [graph.lanes.past7d, graph.lanes.today, graph.lanes.week]) {
    assert.ok(lane.every((id) => ids.has(id)))
  }
  assert.ok(graph.edges.every((e) => ids.has(e.from) && ids.has(e.to)))
  assert.equal(graph.lanes.month, undefined)
  assert.ok(Array.isArray((await weave.graph({ window: 'month', now: SAMPLE_DAY })).lanes.month))
})

test('calls run off the main thread, side by side', async () => {
  const weave = await loaded()
  const header = readFileSync(join(DATA, 'odoo-crm-lead.csv'), 'utf8').split('\n')[0]
  const rows = Array.from({ length: 5000 }, (_, i) =>
    `lead-${i},Deal ${i},Acme,a@acme.example,acme.example,${1000 + i},50,2026-12-01,New,Alan,${i % 4}`)
  const big = join(mkdtempSync(join(tmpdir(), 'opsweave-node-')), 'big.csv')
  writeFileSync(big, [header, ...rows].join('\n') + '\n')
  let ticks = 0
  const timer = setInterval(() => { ticks += 1 }, 1)
  const [report, hits, focus] = await Promise.all([
    weave.ingest(big, { preset: 'odoo-crm-lead' }),
    weave.search('cutover'),
    weave.focus({ now: SAMPLE_DAY }),
  ])
  clearInterval(timer)
  assert.equal(report.inserted, 5000)
  assert.ok(hits.length > 0)
  assert.equal(focus.today.length, 3)
  // Timers kept firing while the engine worked: the main thread was free.
  assert.ok(ticks > 10, `only ${ticks} timer ticks during the calls`)
})

test('presets are listed', () => {
  assert.deepEqual(opsweave.presets(), SAMPLES.map(([p]) => p))
})

test('resolve links twins and queues reviews', async () => {
  const weave = await loaded()
  const report = await weave.resolve('odoo-ace-opportunities')
  assert.deepEqual([report.mode, report.leftRecords, report.rightRecords], ['full', 10, 8])
  assert.ok(report.matched >= 1)
  const graph = await weave.graph({ window: 'month', now: SAMPLE_DAY })
  assert.ok(graph.edges.some((e) => e.kind === 'same_entity'))
  const again = await weave.resolve('odoo-ace-opportunities', true)
  assert.deepEqual([again.mode, again.newRecords], ['incremental', 0])

  const dedupe = await weave.resolve('task-dedupe')
  const queue = await weave.reviewQueue({ resolver: 'task-dedupe' })
  assert.ok(queue.length > 0)
  assert.equal(queue.length, dedupe.review)
  const [first] = queue
  assert.equal(first.status, 'pending')
  const decided = await weave.decideReview('task-dedupe', first.left, first.right, false)
  assert.equal(decided.status, 'rejected')
  const rest = await weave.reviewQueue({ resolver: 'task-dedupe' })
  assert.deepEqual(rest.map((q) => [q.left, q.right]), queue.slice(1).map((q) => [q.left, q.right]))
  await assert.rejects(weave.resolve('salesforce-dedupe'), { code: 'INVALID_INPUT', field: 'resolver' })
})
