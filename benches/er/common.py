"""Shared by the peer drivers: reading the CSVs, scoring predicted pairs against gold."""

import json
import sys

import pandas as pd


def read_records(path):
    """Reads a records CSV as strings; the first column is the id."""
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    return df, df.columns[0]


def read_gold(path, dedupe):
    """Reads the gold pairs (first two columns) as a set of id pairs; dedupe pairs are unordered."""
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    pairs = set()
    for a, b in zip(df.iloc[:, 0], df.iloc[:, 1]):
        a, b = a.strip(), b.strip()
        if dedupe:
            if a == b:
                continue
            a, b = min(a, b), max(a, b)
        pairs.add((a, b))
    return pairs


def score(predicted, gold):
    """Precision, recall and F1 of a set of predicted id pairs."""
    tp = len(predicted & gold)
    p = tp / len(predicted) if predicted else 0.0
    r = tp / len(gold) if gold else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": p, "recall": r, "f1": f1, "predicted_pairs": len(predicted), "true_positives": tp}


def best_threshold(scored, gold, dedupe_pairs=None):
    """The best F1 over every threshold of pairwise scores: `scored` is [(score, a, b)]."""
    scored = sorted(scored, key=lambda t: -t[0])
    tp = 0
    best = {"f1": 0.0, "threshold": None, "precision": 0.0, "recall": 0.0}
    for n, (s, a, b) in enumerate(scored, start=1):
        if (a, b) in gold:
            tp += 1
        # Only cut between distinct scores.
        if n < len(scored) and scored[n][0] == s:
            continue
        p, r = tp / n, tp / len(gold)
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        if f1 > best["f1"]:
            best = {"f1": f1, "threshold": s, "precision": p, "recall": r}
    return best


def emit(result):
    """Prints the result as one JSON line on stdout."""
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    sys.stdout.flush()
