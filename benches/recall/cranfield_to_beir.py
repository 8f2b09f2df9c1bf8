#!/usr/bin/env python3
"""Converts the Cranfield collection in TREC XML form to the BEIR layout `opsweave eval recall` reads.

Input: a folder holding `cran.all.1400.xml` (documents), `cran.qry.xml` (225 queries) and
`cranqrel.trec.txt` (TREC qrels: query 0 doc relevance), as published in the public repository
oussbenk/cranfield-trec-dataset (commit 1208e6e).

Output in OUT: corpus.jsonl ({"_id","title","text"}), queries.jsonl ({"_id","text"}) and qrels.tsv
(header, then query-id, corpus-id, score).

Two Cranfield quirks are handled as ir_datasets does: the query file numbers its 225 queries with
gaps (1, 2, 4, 8, ... 365) while the qrels number them 1 to 225 in file order, so queries are
renumbered by position; and judgements are binary (1 relevant, 0 not; one stray 3 becomes 1).

    python3 benches/recall/cranfield_to_beir.py SRC OUT
"""

import json
import re
import sys
from pathlib import Path


def tag(block: str, name: str) -> str:
    m = re.search(rf"<{name}>(.*?)</{name}>", block, re.S)
    return m.group(1) if m else ""


def clean(text: str) -> str:
    return " ".join(text.split())


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    src, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)

    docs = re.findall(r"<doc>(.*?)</doc>", (src / "cran.all.1400.xml").read_text(), re.S)
    empty = []
    with (out / "corpus.jsonl").open("w") as f:
        for block in docs:
            doc_id = clean(tag(block, "docno"))
            title = clean(tag(block, "title"))
            text = clean(tag(block, "text"))
            if not doc_id:
                sys.exit(f"cran.all.1400.xml: document without an id: {block[:80]!r}")
            if not (title or text):
                empty.append(doc_id)  # Cranfield 471 and 995 are empty: nothing to index
                continue
            f.write(json.dumps({"_id": doc_id, "title": title, "text": text}) + "\n")

    topics = re.findall(r"<top>(.*?)</top>", (src / "cran.qry.xml").read_text(), re.S)
    with (out / "queries.jsonl").open("w") as f:
        for position, block in enumerate(topics, start=1):
            f.write(json.dumps({"_id": str(position), "text": clean(tag(block, "title"))}) + "\n")

    judged = 0
    with (out / "qrels.tsv").open("w") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        for line in (src / "cranqrel.trec.txt").read_text().splitlines():
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 4:
                sys.exit(f"cranqrel.trec.txt: expected 4 columns: {line!r}")
            query, _, doc, rel = parts
            score = 1 if int(rel) > 0 else 0
            judged += score
            f.write(f"{query}\t{doc}\t{score}\n")

    print(
        f"{len(docs) - len(empty)} documents (empty, left out: {', '.join(empty) or 'none'}), "
        f"{len(topics)} queries, {judged} relevant judgements -> {out}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
