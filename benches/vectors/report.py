"""Prints the markdown table of a benches/vectors/run.sh run (a results folder)."""

import json
import os
import re
import sys


def peak_rss_mib(time_file: str) -> float:
    text = open(time_file).read()
    kb = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    return int(kb.group(1)) / 1024 if kb else float("nan")


def main(folder: str) -> None:
    rows = []
    for name in ["opsweave-sqlite", "hnswlib", "faiss", "opsweave-postgres"]:
        path = os.path.join(folder, name + ".json")
        if not os.path.exists(path) or os.path.getsize(path) == 0:
            continue
        r = json.loads(open(path).read().strip().splitlines()[-1])
        rss = peak_rss_mib(os.path.join(folder, name + ".time"))
        rows.append((r, rss))
    print("| engine | build s (CPU s) | recall@10 | QPS | p50 ms | p99 ms | 1 % tenant recall@10 "
          "| tenant k rows | tenant p50 / p99 ms | peak RSS MiB |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r, rss in rows:
        p, t = r["plain"], r["tenant"]
        print(f"| {r['engine']} | {r['build_s']:.1f} ({r['build_cpu_s']:.1f}) "
              f"| {p['recall@10']:.3f} | {p['qps']:.0f} | {p['p50_ms']:.2f} | {p['p99_ms']:.2f} "
              f"| {t['recall@10']:.3f} | {100 * t['full_k']:.0f} % "
              f"| {t['p50_ms']:.2f} / {t['p99_ms']:.2f} | {rss:.0f} |")
    for r, _ in rows:
        o = r.get("reopen") or {}
        if "index_build_s" in o:
            print(f"\n{r['engine']}: bulk load, of which the index build after the rows "
                  f"{o['index_build_s']:.1f} s.")
        if "load_s" in o:
            rebuild = (f", {o['rebuild_s']:.1f} s rebuilding from SQLite rows"
                       if "rebuild_s" in o else "")
            print(f"\n{r['engine']}: save {o['save_s']:.2f} s; a new handle's first query "
                  f"{o['load_s']:.2f} s from the saved file{rebuild}.")
        g = o.get("tenant_graph_path")
        if g:
            print(f"{r['engine']}, 1 % tenant on the filtered graph walk (exact scan off): "
                  f"recall@10 {g['recall@10']:.3f}, k rows {100 * g['full_k']:.0f} %, "
                  f"p50 {g['p50_ms']:.2f} ms, p99 {g['p99_ms']:.2f} ms, QPS {g['qps']:.0f}.")
    curves = [(r["engine"], r.get("curve") or (r.get("reopen") or {}).get("curve")) for r, _ in rows]
    curves = [(e, c) for e, c in curves if c]
    if curves:
        print("\nPlain queries at other ef_search (same graph):\n")
        print("| engine | ef_search | recall@10 | QPS | p50 ms | p99 ms |")
        print("|---|---:|---:|---:|---:|---:|")
        for engine, curve in curves:
            for c in curve:
                print(f"| {engine} | {c['ef']} | {c['recall@10']:.4f} | {c['qps']:.0f} "
                      f"| {c['p50_ms']:.2f} | {c['p99_ms']:.2f} |")

if __name__ == "__main__":
    main(sys.argv[1])
