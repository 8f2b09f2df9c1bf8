#!/usr/bin/env python3
"""Python onnxruntime + tokenizers doing what the ONNX adapter does, for the throughput comparison.

    python_embed.py MODEL_DIR TEXTS.jsonl THREADS sorted|fixed RUNS [RUST_VECTORS]

The same pipeline as adapters/opsweave-onnx, step for step, so that both sides run the same
batches: tokenize the whole corpus with `encode_batch` (no padding, truncation at the model's
max_seq_length with a stride of an eighth, overflow kept as extra chunks), order the chunks
longest first (`sorted`, a stable sort) or keep input order (`fixed`), cut batches of as many
chunks as fit a budget of 8,192 padded tokens (rows x longest row, at least one row), pad each
batch to its longest chunk, run, mean-pool over the attention mask, normalise each chunk, average
the chunks of a text and normalise again. One InferenceSession with THREADS intra-op threads.

Prints one JSON object like the Rust binary's, plus the padded-token count and, when
RUST_VECTORS is given, the largest absolute difference from the Rust vectors in it.
"""

import json
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import tokenizers

TOKEN_BUDGET = 8192  # OnnxConfig's default token_budget
WARM_UP = 64
SAMPLE_EVERY = 50


def batch_rows(lengths, budget):
    """How many of the next chunks fit `budget` padded tokens: the adapter's `batch_rows`."""
    longest = 0
    rows = 0
    for n in lengths:
        next_longest = max(longest, n, 1)
        if rows > 0 and (rows + 1) * next_longest > budget:
            break
        longest = next_longest
        rows += 1
    return rows


class Embedder:
    def __init__(self, model_dir: Path, threads: int, sorted_batches: bool):
        config = json.loads((model_dir / "sentence_bert_config.json").read_text())
        self.max_tokens = config["max_seq_length"]
        self.sorted = sorted_batches
        self.tok = tokenizers.Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        padding = self.tok.padding or {}
        self.pad_id = padding.get("pad_id", 0)
        self.pad_type_id = padding.get("pad_type_id", 0)
        self.tok.no_padding()
        self.tok.enable_truncation(max_length=self.max_tokens, stride=self.max_tokens // 8)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(
            str(model_dir / "model.onnx"), opts, providers=["CPUExecutionProvider"]
        )
        self.inputs = {i.name for i in self.session.get_inputs()}
        names = [o.name for o in self.session.get_outputs()]
        self.output = next(
            (n for n in ("last_hidden_state", "token_embeddings") if n in names), names[0]
        )

    def embed(self, texts):
        """Returns (vectors [n, dim], tokens, padded tokens)."""
        encodings = self.tok.encode_batch(texts, add_special_tokens=True)
        owners, chunks = [], []
        for i, enc in enumerate(encodings):
            for c in [enc, *enc.overflowing]:
                owners.append(i)
                chunks.append(c)
        order = list(range(len(chunks)))
        if self.sorted:
            order.sort(key=lambda i: -len(chunks[i].ids))
        lengths = [len(chunks[i].ids) for i in order]
        chunk_vectors = [None] * len(chunks)
        padded = 0
        start = 0
        while start < len(order):
            rows = batch_rows(lengths[start:], TOKEN_BUDGET)
            batch = order[start : start + rows]
            width = max(lengths[start : start + rows])
            padded += rows * width
            ids = np.full((rows, width), self.pad_id, dtype=np.int64)
            mask = np.zeros((rows, width), dtype=np.int64)
            types = np.full((rows, width), self.pad_type_id, dtype=np.int64)
            for r, i in enumerate(batch):
                c = chunks[i]
                n = len(c.ids)
                ids[r, :n] = c.ids
                mask[r, :n] = c.attention_mask
                types[r, :n] = c.type_ids
            feed = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in self.inputs:
                feed["token_type_ids"] = types
            hidden = self.session.run([self.output], feed)[0]
            m = mask[:, :, None].astype(np.float32)
            pooled = (hidden * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)
            pooled /= np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
            for r, i in enumerate(batch):
                chunk_vectors[i] = pooled[r]
            start += rows
        dim = chunk_vectors[0].shape[0]
        sums = np.zeros((len(texts), dim), dtype=np.float64)
        counts = np.zeros(len(texts))
        for owner, v in zip(owners, chunk_vectors):
            sums[owner] += v
            counts[owner] += 1
        vectors = (sums / counts[:, None]).astype(np.float32)
        vectors /= np.clip(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12, None)
        tokens = sum(len(c.ids) for c in chunks)
        return vectors, tokens, padded


def main():
    model_dir, texts_path, threads, order, runs = sys.argv[1:6]
    rust_vectors = sys.argv[6] if len(sys.argv) > 6 else None
    threads, runs = int(threads), int(runs)
    if order not in ("sorted", "fixed"):
        sys.exit(f"order must be sorted or fixed, not {order}")
    texts = [json.loads(line) for line in open(texts_path, encoding="utf-8")]
    embedder = Embedder(Path(model_dir), threads, order == "sorted")
    embedder.embed(texts[:WARM_UP])
    measured = []
    first = None
    tokens = padded = 0
    for _ in range(runs):
        cpu0, wall0 = time.process_time(), time.perf_counter()
        vectors, tokens, padded = embedder.embed(texts)
        measured.append(
            {"wall_s": time.perf_counter() - wall0, "cpu_s": time.process_time() - cpu0}
        )
        if first is None:
            first = vectors
    report = {
        "implementation": "python-onnxruntime",
        "order": order,
        "threads": threads,
        "texts": len(texts),
        "tokens": tokens,
        "padded_tokens": padded,
        "runs": measured,
        "onnxruntime": ort.__version__,
        "tokenizers": tokenizers.__version__,
    }
    if rust_vectors:
        sample = json.loads(Path(rust_vectors).read_text())
        worst = max(
            float(np.abs(np.asarray(s["vector"], dtype=np.float32) - first[s["index"]]).max())
            for s in sample
        )
        report["compared"] = len(sample)
        report["max_abs_diff_vs_rust"] = worst
    print(json.dumps(report))


if __name__ == "__main__":
    main()
