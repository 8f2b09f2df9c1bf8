"""Ingest the benchmark CSV and time `focus` calls through the Python package.

    python bench_python.py CSV MAPPING DB CALLS [QUERIES]

Prints one JSON line: ingest seconds (wall and process CPU), focus p50 / p99 and the loop's CPU, and
with a QUERIES file (one query a line) full-text search p50 / p99, to set beside bench_pandas.py.
The Rust (`embedded`) and Node (`bench_node.mjs`) harnesses do the same work on the same rows.
"""

import datetime as dt
import json
import resource
import sys
import time

import opsweave


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    csv, mapping, db, calls = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    queries_file = sys.argv[5] if len(sys.argv) > 5 else None
    now = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.timezone.utc)
    with opsweave.Weave.open(f"sqlite://{db}") as weave:
        wall, c = time.perf_counter(), cpu()
        report = weave.ingest(csv, mapping=mapping)
        ingest_wall, ingest_cpu = time.perf_counter() - wall, cpu() - c
        times = []
        wall, c = time.perf_counter(), cpu()
        for i in range(calls):
            # The same instants as the Rust harness: now plus i mod 600 minutes.
            at = now + dt.timedelta(minutes=i % 600)
            t = time.perf_counter()
            weave.focus(limit=3, now=at)
            times.append((time.perf_counter() - t) * 1000.0)
        loop_wall, loop_cpu = time.perf_counter() - wall, cpu() - c
        times.sort()
        searches = []
        if queries_file:
            for q in open(queries_file, encoding="utf-8"):
                if q.strip():
                    t = time.perf_counter()
                    weave.search(q.strip(), limit=10)
                    searches.append((time.perf_counter() - t) * 1000.0)
        searches.sort()

        def pct(p: float, values: list = times) -> float:
            return values[round((len(values) - 1) * p)] if values else 0.0

        print(
            json.dumps(
                {
                    "lang": "python",
                    "inserted": report.inserted,
                    "ingest_wall_s": ingest_wall,
                    "ingest_cpu_s": ingest_cpu,
                    "focus_calls": calls,
                    "focus_p50_ms": pct(0.5),
                    "focus_p99_ms": pct(0.99),
                    "focus_loop_wall_s": loop_wall,
                    "focus_loop_cpu_s": loop_cpu,
                    "search_queries": len(searches),
                    "search_p50_ms": pct(0.5, searches),
                    "search_p99_ms": pct(0.99, searches),
                }
            )
        )


if __name__ == "__main__":
    main()
