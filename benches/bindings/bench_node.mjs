// Ingest the benchmark CSV and time `focus` calls through the Node package.
//
//     node bench_node.mjs CSV MAPPING DB CALLS
//
// Prints one JSON line, like bench_python.py and the Rust `embedded` harness.
import { createRequire } from 'node:module'
import { performance } from 'node:perf_hooks'

// The addon as built in bindings/node (release, by run.sh), not an installed copy.
const { Weave } = createRequire(import.meta.url)('../../bindings/node')

const [csv, mapping, db, callsArg] = process.argv.slice(2)
const calls = Number(callsArg)
const cpu = () => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1e6
}
const now = Date.UTC(2026, 10, 23, 9, 0, 0)

const weave = await Weave.open(`sqlite://${db}`)
let wall = performance.now()
let c = cpu()
const report = await weave.ingest(csv, { mapping })
const ingestWall = (performance.now() - wall) / 1000
const ingestCpu = cpu() - c
const times = []
wall = performance.now()
c = cpu()
for (let i = 0; i < calls; i++) {
  // The same instants as the Rust harness: now plus i mod 600 minutes.
  const at = new Date(now + (i % 600) * 60_000).toISOString()
  const t = performance.now()
  await weave.focus({ limit: 3, now: at })
  times.push(performance.now() - t)
}
const loopWall = (performance.now() - wall) / 1000
const loopCpu = cpu() - c
times.sort((a, b) => a - b)
const pct = (p) => (times.length ? times[Math.round((times.length - 1) * p)] : 0)
weave.close()
console.log(
  JSON.stringify({
    lang: 'node',
    inserted: report.inserted,
    ingest_wall_s: ingestWall,
    ingest_cpu_s: ingestCpu,
    focus_calls: calls,
    focus_p50_ms: pct(0.5),
    focus_p99_ms: pct(0.99),
    focus_loop_wall_s: loopWall,
    focus_loop_cpu_s: loopCpu,
  }),
)
