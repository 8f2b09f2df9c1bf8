// Shared fixtures: a fresh embedded store per test, and the sample exports.
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
export const opsweave = require('../index.js')

export const DATA = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'examples', 'data')

// The samples are dated around this day; focus and graph are asked "as of" it.
export const SAMPLE_DAY = '2026-11-23'

export const SAMPLES = [
  ['odoo-crm-lead', 'odoo-crm-lead.csv'],
  ['ace-opportunity', 'ace-opportunity.csv'],
  ['gmail-message', 'gmail-messages.json'],
  ['jira-issue', 'jira-search.json'],
  ['github-issue', 'github-issues.json'],
]

export function dbUrl() {
  return `sqlite://${join(mkdtempSync(join(tmpdir(), 'opsweave-node-')), 'opsweave.db')}`
}

export async function loaded() {
  const weave = await opsweave.Weave.open(dbUrl())
  for (const [preset, file] of SAMPLES) {
    const report = await weave.ingest(join(DATA, file), { preset })
    if (report.rejectedTotal !== 0) throw new Error(`${file}: ${JSON.stringify(report.rejected)}`)
  }
  return weave
}

// A store whose recall and memory use the real MiniLM test model (fetched by
// adapters/opsweave-onnx/fetch-test-model.sh, which sets OPSWEAVE_TEST_MODEL_DIR and
// ORT_DYLIB_PATH); fails, never skips, without it.
export async function withModel() {
  const modelDir = process.env.OPSWEAVE_TEST_MODEL_DIR
  if (!modelDir) {
    throw new Error('OPSWEAVE_TEST_MODEL_DIR is not set: run `eval "$(adapters/opsweave-onnx/fetch-test-model.sh)"` first')
  }
  const dir = mkdtempSync(join(tmpdir(), 'opsweave-node-'))
  const config = join(dir, 'opsweave.toml')
  writeFileSync(
    config,
    `db = ${JSON.stringify(`sqlite://${join(dir, 'memory.db')}`)}\n` +
      '[embed]\nmodel = "onnx:all-minilm-l6-v2"\n' +
      `model_dir = ${JSON.stringify(modelDir)}\n`,
  )
  return opsweave.Weave.open(undefined, { config })
}
