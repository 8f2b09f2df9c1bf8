// Errors: a stable `code` per kind, location properties, the cause chain; wrong argument types
// are TypeErrors.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { opsweave, DATA, dbUrl } from './helpers.mjs'

const CODES = {
  invalid_input: 'INVALID_INPUT',
  not_found: 'NOT_FOUND',
  conflict: 'CONFLICT',
  unauthorized: 'UNAUTHORIZED',
  unavailable: 'UNAVAILABLE',
  internal: 'INTERNAL',
}

test('every kind has its code, location and cause', async () => {
  for (const [kind, code] of Object.entries(CODES)) {
    await assert.rejects(opsweave._errorForTest(kind, 'it broke', 'x', 'disk'), (err) => {
      assert.ok(err instanceof Error)
      assert.equal(err.code, code)
      assert.equal(err.file, 'test.csv')
      assert.equal(err.line, 7)
      assert.equal(err.field, 'x')
      assert.match(err.message, /test\.csv, line 7, field `x`: it broke: disk$/)
      assert.equal(err.cause.message, 'disk')
      return true
    })
  }
  await assert.rejects(opsweave._errorForTest('nonsense', 'x'), { code: 'INVALID_INPUT', field: 'kind' })
})

test('invalid input names file, line and field', async () => {
  const weave = await opsweave.Weave.open(dbUrl())
  await assert.rejects(
    weave.ingest(join(DATA, 'odoo-crm-lead.csv'), { preset: 'ace-opportunity' }),
    (err) => err.code === 'INVALID_INPUT' && err.file.endsWith('odoo-crm-lead.csv') && err.line === 1 && typeof err.field === 'string',
  )
  await assert.rejects(weave.ingest(join(DATA, 'odoo-crm-lead.csv'), { preset: 'salesforce' }), {
    code: 'INVALID_INPUT',
    field: 'preset',
  })
  await assert.rejects(weave.ingest(join(DATA, 'odoo-crm-lead.csv'), {}), { code: 'INVALID_INPUT', field: 'preset' })
  const mapping = join(mkdtempSync(join(tmpdir(), 'opsweave-node-')), 'broken.toml')
  writeFileSync(mapping, 'name = "x"\nsource = "y"\n\n[fields\n')
  await assert.rejects(weave.ingest(join(DATA, 'odoo-crm-lead.csv'), { mapping }), {
    code: 'INVALID_INPUT',
    file: mapping,
  })
  await assert.rejects(weave.complete('xyz'), { code: 'INVALID_INPUT', field: 'id' })
  await assert.rejects(weave.focus({ horizons: ['tomorrow'] }), { code: 'INVALID_INPUT', field: 'horizons' })
  await assert.rejects(weave.focus({ now: 'next tuesday' }), { code: 'INVALID_INPUT', field: 'now' })
  await assert.rejects(weave.focus({ limit: 5000 }), { code: 'INVALID_INPUT', field: 'limit' })
  await assert.rejects(weave.graph({ window: 'year' }), { code: 'INVALID_INPUT', field: 'window' })
  await assert.rejects(opsweave.Weave.open('mysql://localhost/x'), { code: 'INVALID_INPUT' })
})

test('not found', async () => {
  const weave = await opsweave.Weave.open(dbUrl())
  await assert.rejects(weave.complete('00000000000000aa'), { code: 'NOT_FOUND' })
  await assert.rejects(weave.record('00000000000000aa'), { code: 'NOT_FOUND' })
})

test('unavailable when closed', async () => {
  const weave = await opsweave.Weave.open(dbUrl())
  weave.close()
  await assert.rejects(weave.search('anything'), { code: 'UNAVAILABLE' })
})

test('backend failures keep their cause chain', async () => {
  const path = join(mkdtempSync(join(tmpdir(), 'opsweave-node-')), 'garbage.db')
  writeFileSync(path, 'this is not a database '.repeat(200))
  await assert.rejects(opsweave.Weave.open(`sqlite://${path}`), (err) => {
    assert.equal(typeof err.code, 'string')
    assert.match(err.cause.message, /not a database/)
    assert.match(err.message, /not a database/)
    return true
  })
})

test('wrong argument types are TypeErrors', async () => {
  const weave = await opsweave.Weave.open(dbUrl())
  assert.throws(() => weave.ingest(42, { preset: 'odoo-crm-lead' }), (err) => {
    assert.ok(err instanceof TypeError)
    assert.equal(err.code, 'ERR_INVALID_ARG_TYPE')
    assert.match(err.message, /source/)
    return true
  })
  assert.throws(() => weave.complete(17), (err) => err instanceof Error && /string/i.test(err.message))
  assert.throws(() => weave.focus({ limit: 'three' }), (err) => err instanceof Error && /limit/.test(err.message))
  // Options that are not an object are refused, not read as "no options".
  for (const call of [
    () => weave.focus('today'),
    () => weave.ingest(join(DATA, 'jira-search.json'), 'jira-issue'),
    () => weave.recall('renewal', 10),
    () => weave.search('x', 'ten'),
  ]) {
    assert.throws(call, (err) => err instanceof Error && /Expect value to be Option<(Object|Number)>/.test(err.message))
  }
})

test('numbers out of range name the option and the value', async () => {
  const weave = await opsweave.Weave.open(dbUrl())
  // A negative limit used to wrap to 4294967293 and be told it was above 1000.
  await assert.rejects(weave.focus({ limit: -3 }), (err) => {
    assert.equal(err.code, 'INVALID_INPUT')
    assert.equal(err.field, 'limit')
    assert.match(err.message, /limit is -3; it must be a whole number from 0 to 1000/)
    return true
  })
  await assert.rejects(weave.search('x', 2.5), { code: 'INVALID_INPUT', field: 'limit' })
  await assert.rejects(weave.recall('x', { k: -1 }), (err) => err.field === 'k' && /k is -1/.test(err.message))
  await assert.rejects(weave.recall('x', { k: 0 }), { code: 'INVALID_INPUT', field: 'k' })
  await assert.rejects(weave.events({ limit: 20000 }), (err) => err.field === 'limit' && /from 0 to 10000/.test(err.message))
  assert.deepEqual(await weave.focus({ limit: 0 }), { today: [], week: [], month: [] })
})
