// opsweave from Node: ingest two sample exports into a fresh embedded store, show the rows that
// were rejected, print the focus list, then complete and undo the top task.
import { Weave } from 'opsweave'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

const data = join(dirname(fileURLToPath(import.meta.url)), '..', 'data')
const weave = await Weave.open(`sqlite://${join(mkdtempSync(join(tmpdir(), 'opsweave-')), 'ops.db')}`)

await weave.ingest(join(data, 'jira-search.json'), { preset: 'jira-issue' })
const report = await weave.ingest(join(data, 'odoo-crm-lead-bad-rows.csv'), { preset: 'odoo-crm-lead' })
console.log(`odoo: ${report.inserted} new, ${report.rejectedTotal} rejected`)
for (const bad of report.rejected) console.log(`  line ${bad.line} ${bad.field ?? '-'}: ${bad.reason}`)

const focus = await weave.focus({ limit: 3, now: '2026-11-23' })
for (const horizon of ['today', 'week', 'month']) {
  console.log(horizon)
  for (const task of focus[horizon]) {
    console.log(`  ${task.priority.score.toFixed(1).padStart(5)}  ${task.id}  ${task.title}`)
  }
}

const top = focus.today[0]
console.log('complete:', (await weave.complete(top.id)).status, 'undo:', (await weave.undo(top.id)).status)
console.log("search 'cutover':", (await weave.search('cutover')).map((hit) => hit.title))
weave.close()
