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
        if r.get("reopen"):
            o = r["reopen"]
            print(f"\n{r['engine']}: save {o['save_s']:.2f} s; a new handle's first query "
                  f"{o['load_s']:.2f} s from the saved file, {o['rebuild_s']:.1f} s rebuilding "
                  f"from SQLite rows.")
            g = o.get("tenant_graph_path")
            if g:
                print(f"{r['engine']}, 1 % tenant on the filtered graph walk (exact scan off): "
                      f"recall@10 {g['recall@10']:.3f}, k rows {100 * g['full_k']:.0f} %, "
                      f"p50 {g['p50_ms']:.2f} ms, p99 {g['p99_ms']:.2f} ms, QPS {g['qps']:.0f}.")


if __name__ == "__main__":
    main(sys.argv[1])
