"""Turns the result files of run.sh into the "Embedding throughput (issue 4)" section of
docs/benchmarks.md, leaving every other section as it is.

    python report.py RESULTS_DIR docs/benchmarks.md COMMAND
"""

import datetime
import json
import pathlib
import statistics
import sys

HEADING = "## Embedding throughput (issue 4)"
IMPLS = [("rust", "opsweave-onnx"), ("python", "Python onnxruntime")]


def load(results, impl, order, threads):
    run = json.loads((results / f"{impl}-{order}-{threads}.json").read_text())
    run["wall"] = statistics.median(r["wall_s"] for r in run["runs"])
    cpus = [r["cpu_s"] for r in run["runs"] if r["cpu_s"] is not None]
    run["cpu"] = statistics.median(cpus) if cpus else float("nan")
    return run


def section(results, command):
    machine = json.loads((results / "machine.json").read_text())
    # Thread counts whose four runs all finished (a cut-short run still reports the rest).
    threads_run = sorted(
        t
        for t in {int(p.stem.rsplit("-", 1)[1]) for p in results.glob("rust-sorted-*.json")}
        if all(
            (results / f"{impl}-{order}-{t}.json").stat().st_size > 0
            if (results / f"{impl}-{order}-{t}.json").exists()
            else False
            for impl, _ in IMPLS
            for order in ("sorted", "fixed")
        )
    )
    runs = {}
    for t in threads_run:
        for order in ("sorted", "fixed"):
            for impl, _ in IMPLS:
                runs[impl, order, t] = load(results, impl, order, t)
    any_run = next(iter(runs.values()))
    texts, tokens = any_run["texts"], any_run["tokens"]
    py = runs["python", "sorted", threads_run[0]]
    lines = [
        HEADING,
        "",
        "Command (fetches the test model and ONNX Runtime with `fetch-test-model.sh`, makes a venv with",
        f"onnxruntime {py['onnxruntime']} and tokenizers {py['tokenizers']}, builds the Rust harness, writes the corpus,",
        "runs every configuration Rust first then Python, and rewrites this section):",
        "",
        "```sh",
        command,
        "```",
        "",
        f"- Model: all-MiniLM-L6-v2, int8 ONNX (the test model), 384 dims, 256-token chunks, one session.",
        f"- Corpus: {texts:,} texts, {tokens:,} tokens (special tokens included, padding not), from the",
        "  Abt-Buy product listings and DBLP-ACM paper records (`benches/embed/corpus.py`: shuffled with a",
        "  fixed seed, so short and long texts arrive mixed).",
        "- Both sides run the adapter's pipeline step for step (`benches/embed/python_embed.py` mirrors it):",
        "  tokenize all texts with `encode_batch`, order the chunks longest first (**sorted**, what the",
        "  adapter does) or keep input order (**fixed**, `OnnxConfig::with_sorted_batches(false)`), cut",
        "  batches of at most 8,192 padded tokens (rows × longest row), pad, run, mean-pool, normalise.",
        "  The batches are therefore identical on both sides. Intra-op threads and the tokenizer's rayon",
        "  threads are both set to the thread count.",
        f"- One `embed` call over the whole corpus per run, after an untimed warm-up call on 64 texts;",
        f"  median of {len(any_run['runs'])} run(s). CPU = user + system seconds of the process during the call.",
        f"- Machine: {machine['cpus']} cores ({machine['cpu']}), shared: load average {machine['load']} at",
        f"  the start and {machine.get('load_after', '?')} at the end, so wall times are inflated several-fold and",
        "  CPU seconds are the steadier comparison. "
        + datetime.date.today().isoformat()
        + ".",
        "",
        "| threads | batching | implementation | texts/s | tokens/s | wall s | CPU s | padded tokens |",
        "|---:|---|---|---:|---:|---:|---:|---:|",
    ]
    for t in threads_run:
        for order in ("sorted", "fixed"):
            padded = runs["python", order, t].get("padded_tokens")
            for impl, name in IMPLS:
                r = runs[impl, order, t]
                lines.append(
                    f"| {t} | {order} | {name} | {texts / r['wall']:,.0f} | "
                    f"{tokens / r['wall']:,.0f} | {r['wall']:.1f} | {r['cpu']:.1f} | "
                    f"{padded:,} ({padded / tokens:.2f}×) |"
                )
    lines += [
        "",
        "| threads | batching | opsweave-onnx / Python, by wall time | by CPU time | largest vector difference |",
        "|---:|---|---:|---:|---:|",
    ]
    for t in threads_run:
        for order in ("sorted", "fixed"):
            rust, python = runs["rust", order, t], runs["python", order, t]
            lines.append(
                f"| {t} | {order} | {python['wall'] / rust['wall']:.2f}× | "
                f"{python['cpu'] / rust['cpu']:.2f}× | "
                f"{python['max_abs_diff_vs_rust']:.1e} ({python['compared']} texts) |"
            )
    lines += [
        "",
        "| threads | implementation | sorted over fixed, by wall time | by CPU time |",
        "|---:|---|---:|---:|",
    ]
    for t in threads_run:
        for impl, name in IMPLS:
            s, f = runs[impl, "sorted", t], runs[impl, "fixed", t]
            lines.append(
                f"| {t} | {name} | {f['wall'] / s['wall']:.2f}× | {f['cpu'] / s['cpu']:.2f}× |"
            )
    lines += [
        "",
        "Ratios above 1 mean opsweave (or sorted batching) is faster. The largest vector difference",
        "compares every 50th text's vector from the adapter with Python's for the same batches (goal:",
        "within 1e-4).",
        "",
    ]
    return "\n".join(lines)


def main():
    results = pathlib.Path(sys.argv[1])
    doc = pathlib.Path(sys.argv[2])
    command = sys.argv[3]
    text = doc.read_text() if doc.exists() else "# Benchmarks\n"
    new = section(results, command)
    start = text.find(HEADING)
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + new
    else:
        nxt = text.find("\n## ", start + len(HEADING))
        end = len(text) if nxt < 0 else nxt + 1
        text = text[:start] + new + ("\n" + text[end:] if nxt >= 0 else "")
    doc.write_text(text.rstrip("\n") + "\n")
    print(new)


if __name__ == "__main__":
    main()
