// Drift guard: every public method of the Rust facade has a Node counterpart or is listed as
// deliberately omitted in bindings/facade-surface.json; the TypeScript types declare each one.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, readdirSync } from 'node:fs'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { opsweave } from './helpers.mjs'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')

function facadeMethods() {
  const names = new Set()
  const dir = join(ROOT, 'core', 'opsweave', 'src')
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.rs'))) {
    const text = readFileSync(join(dir, file), 'utf8')
    for (const block of text.matchAll(/^impl Weave \{\n([\s\S]*?)^\}/gm)) {
      for (const m of block[1].matchAll(/^ {4}pub (?:async )?fn (\w+)/gm)) names.add(m[1])
    }
  }
  return names
}

test('every facade method has a Node counterpart', () => {
  const table = JSON.parse(readFileSync(join(ROOT, 'bindings', 'facade-surface.json'), 'utf8')).methods
  const methods = facadeMethods()
  assert.ok(methods.has('focus') && methods.has('ingest_rows'), 'the facade parser found nothing')
  assert.deepEqual([...methods].sort(), Object.keys(table).sort())
  const types = readFileSync(join(ROOT, 'bindings', 'node', 'index.d.ts'), 'utf8')
  for (const [name, entry] of Object.entries(table)) {
    if (entry.omitted) continue
    const js = entry.node
    const has = typeof opsweave.Weave[js] === 'function' || js in opsweave.Weave.prototype
    assert.ok(has, `Weave lacks ${js} (${name})`)
    assert.match(types, new RegExp(`\\b(static |get )?${js}\\(`), `index.d.ts lacks ${js}`)
  }
})
