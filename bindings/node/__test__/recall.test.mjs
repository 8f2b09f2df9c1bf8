// Recall, memory and embedding with the real all-MiniLM-L6-v2 model: memories are found the
// moment they are written, change and disappear with them; modes, filters and recency; wrong
// argument types are TypeErrors naming the argument, bad values INVALID_INPUT naming the field.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { opsweave, DATA, SAMPLES, dbUrl, withModel } from './helpers.mjs'

const NOTES = {
  acme: 'Acme asked for a 10% discount on the Q3 renewal of their licence.',
  incident: 'The payment service returned 502 errors for twenty minutes after a deploy.',
  kitchen: 'Whoever empties the dishwasher last on Friday buys coffee beans.',
  hiring: 'We will open two backend engineering positions in January.',
}

async function rememberAll(weave) {
  const ids = {}
  for (const [name, text] of Object.entries(NOTES)) ids[name] = await weave.remember(text, [name])
  return ids
}

const rankers = (hit) => hit.explanation.foundBy.map((h) => h.ranker).sort()

test('remember then recall finds it first', async () => {
  const weave = await withModel()
  const ids = await rememberAll(weave)
  assert.equal(new Set(Object.values(ids)).size, 4)
  // No word in common with the note: only the model can connect them.
  const hits = await weave.recall("price reduction for a customer's contract", { k: 3 })
  assert.equal(hits[0].id, ids.acme)
  assert.equal(hits[0].entity, 'note')
  assert.equal(hits[0].sourceKind, 'memory')
  assert.match(hits[0].title, /^Acme asked/)
  assert.ok(hits[0].explanation.score > 0)
  const scores = hits.map((h) => h.explanation.score)
  assert.deepEqual(scores, [...scores].sort((a, b) => b - a))
  const both = await weave.recall('outage of the payment service', { k: 2 })
  assert.equal(both[0].id, ids.incident)
  assert.deepEqual(rankers(both[0]), ['bm25', 'dense'])
  const record = await weave.record(ids.kitchen)
  assert.equal(record.source.kind, 'memory')
  assert.match(JSON.stringify(record.fields), /kitchen/)
})

test('updateMemory changes what recall finds', async () => {
  const weave = await withModel()
  const ids = await rememberAll(weave)
  const updated = await weave.updateMemory(ids.incident, 'The team offsite will be in Lisbon in March.', ['travel'])
  assert.equal(updated.id, ids.incident)
  assert.match(updated.title, /^The team offsite/)
  assert.match(JSON.stringify(updated.fields), /travel/)
  assert.equal((await weave.recall('trip to Portugal', { k: 1 }))[0].id, ids.incident)
  assert.deepEqual(await weave.recall('payment 502', { mode: 'bm25' }), [])
  const kept = await weave.updateMemory(ids.kitchen, 'Whoever empties the dishwasher buys tea.')
  assert.match(JSON.stringify(kept.fields), /kitchen/)
})

test('forget removes it', async () => {
  const weave = await withModel()
  const ids = await rememberAll(weave)
  assert.equal(await weave.forget(ids.kitchen), undefined)
  for (const mode of ['hybrid', 'bm25', 'dense']) {
    const found = await weave.recall('dishwasher coffee beans', { k: 10, mode })
    assert.ok(!found.some((h) => h.id === ids.kitchen), mode)
  }
  assert.equal((await weave.recall('dishwasher', { mode: 'dense' })).length, 3)
  await assert.rejects(weave.record(ids.kitchen), { code: 'NOT_FOUND' })
  await assert.rejects(weave.forget(ids.kitchen), { code: 'NOT_FOUND' })
})

test('embed, then recall modes, filters and recency', async () => {
  const weave = await withModel()
  for (const [preset, file] of SAMPLES) await weave.ingest(join(DATA, file), { preset })
  const report = await weave.embed()
  assert.equal(report.dim, 384)
  assert.equal(report.stale, report.embedded + report.skippedEmpty)
  assert.ok(report.embedded >= 30 && report.calls >= 1 && report.tokens > 0)
  assert.equal(report.bulkLoad, false, 'the embedded store indexes as it goes')
  const again = await weave.embed()
  assert.deepEqual([again.stale, again.embedded], [0, 0])
  // Every model call was metered: the run's calls and tokens, without a price (none configured).
  const [total, ...more] = await weave.usage()
  assert.equal(more.length, 0)
  assert.deepEqual([total.key, total.model, total.calls, total.embeddingTokens], [report.model, report.model, report.calls, report.tokens])
  assert.ok(total.costUsd == null, "no price configured")
  const hourAgo = new Date(Date.now() - 3600_000).toISOString()
  const [byOrg] = await weave.usage({ groupBy: 'org', start: hourAgo })
  assert.deepEqual([byOrg.key, byOrg.embeddingTokens], [weave.scope.org, report.tokens])
  assert.ok(byOrg.client == null, 'only a project group names its client')
  const [byProject] = await weave.usage({ groupBy: 'project', start: hourAgo })
  assert.deepEqual([byProject.key, byProject.client], [weave.scope.project ?? '', weave.scope.client ?? ''])
  assert.deepEqual(await weave.usage({ start: '2000-01-01', end: '2000-01-02' }), [])
  await assert.rejects(weave.usage({ groupBy: 'team' }), (err) => err.code === 'INVALID_INPUT' && err.field === 'group_by')
  const note = await weave.remember('The cutover of the billing system moves to Saturday night.')

  const dense = await weave.recall('cutover', { k: 5, mode: 'dense' })
  const bm25 = await weave.recall('cutover', { k: 5, mode: 'bm25' })
  const hybrid = await weave.recall('cutover', { k: 5 })
  assert.equal(dense.length, 5)
  assert.ok(dense.every((h) => rankers(h).join() === 'dense'))
  assert.ok(bm25.length > 0 && bm25.every((h) => rankers(h).join() === 'bm25'))
  assert.ok(hybrid.some((h) => rankers(h).join() === 'bm25,dense'))

  assert.deepEqual((await weave.recall('cutover', { entities: ['note'] })).map((h) => h.id), [note])
  const jira = await weave.recall('cutover', { sources: ['jira'], k: 20 })
  assert.ok(jira.length > 0 && jira.every((h) => h.sourceKind === 'jira'))
  const recent = await weave.recall('cutover', { recency: { halfLifeDays: 30, weight: 0.5 } })
  assert.ok(recent.every((h) => typeof h.explanation.recency === 'number' && typeof h.explanation.ageDays === 'number'))
  assert.equal((await weave.recall('cutover'))[0].explanation.recency, undefined)
})

test('wrong argument types are TypeErrors naming the argument', async () => {
  const weave = await withModel()
  const cases = [
    [() => weave.recall(5), 'query'],
    [() => weave.remember(42), 'text'],
    [() => weave.remember('x', 'urgent'), 'tags'],
    [() => weave.remember('x', [1]), 'tags'],
    [() => weave.updateMemory(17, 'x'), 'id'],
    [() => weave.updateMemory('00000000000000aa', {}), 'text'],
    [() => weave.forget(17), 'id'],
  ]
  for (const [call, name] of cases) {
    assert.throws(call, (err) => {
      assert.ok(err instanceof TypeError, `${name}: ${err}`)
      assert.equal(err.code, 'ERR_INVALID_ARG_TYPE')
      assert.match(err.message, new RegExp(`"${name}"`))
      return true
    })
  }
  assert.throws(() => weave.recall('x', { k: 'three' }), (err) => err instanceof Error && /\bk\b/.test(err.message))
  assert.throws(() => weave.recall('x', { entities: 'note' }), (err) => err instanceof Error && /entities/.test(err.message))
})

test('bad values are INVALID_INPUT naming the field', async () => {
  const weave = await withModel()
  await weave.ingest(join(DATA, 'jira-search.json'), { preset: 'jira-issue' })
  const issue = (await weave.search('cutover'))[0].id
  const cases = [
    [() => weave.recall('x', { k: 0 }), 'k'],
    [() => weave.recall('x', { k: 5000 }), 'k'],
    [() => weave.recall('x', { mode: 'fuzzy' }), 'mode'],
    [() => weave.recall('x', { entities: ['planet'] }), 'entities'],
    [() => weave.recall('x', { recency: { halfLifeDays: -1 } }), 'recency.half_life_days'],
    [() => weave.recall('x', { recency: { halfLifeDays: 7, weight: 2 } }), 'recency.weight'],
    [() => weave.recall('   '), 'query'],
    [() => weave.remember('   '), 'text'],
    [() => weave.remember('x', ['']), 'tags'],
    [() => weave.forget('xyz'), 'id'],
    [() => weave.updateMemory(issue, 'not a memory'), 'id'],
    [() => weave.forget(issue), 'id'],
  ]
  for (const [call, field] of cases) await assert.rejects(call(), { code: 'INVALID_INPUT', field })
  assert.equal((await weave.record(issue)).entity, 'issue')
})

test('without a model, memory says what to configure', async () => {
  const weave = await opsweave.Weave.open(dbUrl())
  await assert.rejects(weave.remember('a note'), { code: 'INVALID_INPUT', field: 'model', message: /embed\.model/ })
  await assert.rejects(weave.embed(), { code: 'INVALID_INPUT', field: 'model' })
  await weave.ingest(join(DATA, 'jira-search.json'), { preset: 'jira-issue' })
  const hits = await weave.recall('cutover', { mode: 'bm25' })
  assert.deepEqual(rankers(hits[0]), ['bm25'])
})
