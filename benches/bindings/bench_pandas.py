"""The reference: what a Python user does today without opsweave — pandas reads the CSV into
SQLite (`to_sql`) and an FTS5 table indexes title and body — then the same full-text queries.

    python bench_pandas.py CSV DB QUERIES

Prints one JSON line (ingest wall / CPU, search p50 / p99). It does less than opsweave's ingest (no
raw payload kept, no normalisation, no idempotent re-ingest, no task model): it is the floor users
compare against, not an equal.
"""

import json
import resource
import sqlite3
import sys
import time

import pandas as pd


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    csv, db, queries_file = sys.argv[1], sys.argv[2], sys.argv[3]
    queries = [q.strip() for q in open(queries_file, encoding="utf-8") if q.strip()]
    wall, c = time.perf_counter(), cpu()
    frame = pd.read_csv(csv, dtype=str, keep_default_na=False)
    frame["due"] = pd.to_datetime(frame["due"], errors="coerce")
    frame["updated"] = pd.to_datetime(frame["updated"], errors="coerce", utc=True)
    con = sqlite3.connect(db)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    frame.to_sql("tasks", con, index=False, chunksize=20_000)
    con.execute("CREATE VIRTUAL TABLE tasks_fts USING fts5(title, body, content='tasks')")
    con.execute("INSERT INTO tasks_fts(rowid, title, body) SELECT rowid, title, body FROM tasks")
    con.commit()
    ingest_wall, ingest_cpu = time.perf_counter() - wall, cpu() - c
    times = []
    for q in queries:
        t = time.perf_counter()
        con.execute(
            "SELECT t.id, t.title, snippet(tasks_fts, 1, '[', ']', '…', 8) FROM tasks_fts "
            "JOIN tasks t ON t.rowid = tasks_fts.rowid WHERE tasks_fts MATCH ? "
            "ORDER BY bm25(tasks_fts) LIMIT 10",
            (q,),
        ).fetchall()
        times.append((time.perf_counter() - t) * 1000.0)
    times.sort()
    print(
        json.dumps(
            {
                "lang": "pandas+sqlite3",
                "rows": len(frame),
                "ingest_wall_s": ingest_wall,
                "ingest_cpu_s": ingest_cpu,
                "search_queries": len(times),
                "search_p50_ms": times[len(times) // 2] if times else 0.0,
                "search_p99_ms": times[round((len(times) - 1) * 0.99)] if times else 0.0,
            }
        )
    )


if __name__ == "__main__":
    main()
