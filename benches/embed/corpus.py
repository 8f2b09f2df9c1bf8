#!/usr/bin/env python3
"""Writes the embedding benchmark's corpus: one JSON string per line, deterministic.

    corpus.py DATA_DIR OUT.jsonl

Texts of very different lengths from the entity-matching data sets: Abt-Buy product listings
(name and description, from a few tokens to past the model's 256-token limit, so some are
chunked) and DBLP-ACM paper records (title, authors, venue, year: short). Shuffled with a fixed
seed, so that input order mixes long and short texts as a real ingest would.
"""

import csv
import json
import random
import sys
from pathlib import Path


def rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        yield from csv.DictReader(f)


def main():
    data, out = Path(sys.argv[1]), Path(sys.argv[2])
    texts = []
    for side in ("left", "right"):
        for r in rows(data / "abt-buy" / f"{side}.csv"):
            texts.append(". ".join(v.strip() for v in (r["name"], r.get("description", "")) if v and v.strip()))
    for r in rows(data / "dblp-acm" / "left.csv"):
        parts = [r.get(k, "") for k in ("title", "authors", "venue", "year")]
        texts.append(". ".join(p.strip() for p in parts if p and p.strip()))
    texts = [t for t in texts if t.strip()]
    random.Random(20260401).shuffle(texts)
    with open(out, "w", encoding="utf-8") as f:
        for t in texts:
            f.write(json.dumps(t, ensure_ascii=False) + "\n")
    print(f"corpus.py: {len(texts)} texts -> {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
