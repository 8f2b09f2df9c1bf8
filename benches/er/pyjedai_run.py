"""pyJedAI 0.3.6 on one benchmark data set; prints one JSON line.

    python pyjedai_run.py link LEFT RIGHT GOLD [--sweep]
    python pyjedai_run.py dedupe RECORDS GOLD [--sweep]

One unsupervised, schema-agnostic workflow for every data set, the one pyJedAI's Clean-Clean ER
tutorial (docs/tutorials/CleanCleanER.ipynb) builds, on all attributes:

    token blocking (StandardBlocking, Ray off) -> BlockPurging -> BlockFiltering(ratio=0.8)
    -> meta-blocking WeightedEdgePruning(EJS)
    -> EntityMatching: cosine of TF-IDF character 3-gram vectors
    -> link: UniqueMappingClustering at 0.17 (the tutorial's threshold)
       dedupe: ConnectedComponentsClustering at 0.3 (the threshold of the Dirty ER tutorial)

No embeddings (they would need a model download). Without --sweep this is the timed run. With
--sweep it also reports candidates, blocking recall and the best F1 over clustering thresholds
0.01..0.99 (an oracle that reads the gold pairs; not timed).
"""

import sys
import time

from common import emit, read_gold, read_records, score

import pyjedai  # noqa: E402
from pyjedai.block_building import StandardBlocking  # noqa: E402
from pyjedai.block_cleaning import BlockFiltering, BlockPurging  # noqa: E402
from pyjedai.clustering import ConnectedComponentsClustering, UniqueMappingClustering  # noqa: E402
from pyjedai.comparison_cleaning import WeightedEdgePruning  # noqa: E402
from pyjedai.datamodel import Data  # noqa: E402
from pyjedai.matching import EntityMatching  # noqa: E402

# Work time starts after the imports (interpreter start-up and imports show in the wall time).
START = time.perf_counter()

LINK_THRESHOLD = 0.17
DEDUPE_THRESHOLD = 0.3


def original_id(data, node):
    """The file's id of a pyJedAI entity number."""
    if node < data.dataset_limit:
        return data._gt_to_ids_reversed_1[node]
    return data._gt_to_ids_reversed_2[node]


def pair_of(data, a, b, dedupe):
    """An id pair, left first (link) or smaller first (dedupe)."""
    ia, ib = original_id(data, a), original_id(data, b)
    if dedupe:
        return (min(ia, ib), max(ia, ib))
    return (ia, ib) if a < data.dataset_limit else (ib, ia)


def cluster_score(data, clusters, gold, dedupe):
    """Scores clusters as all the pairs inside each (counted, not listed)."""
    if not dedupe:
        predicted = set()
        for c in clusters:
            c = sorted(c)
            if len(c) == 2:
                predicted.add(pair_of(data, c[0], c[1], False))
        return score(predicted, gold)
    cluster_of = {}
    predicted_n = 0
    for k, c in enumerate(clusters):
        predicted_n += len(c) * (len(c) - 1) // 2
        for node in c:
            cluster_of[original_id(data, node)] = k
    tp = sum(1 for a, b in gold if a in cluster_of and cluster_of[a] == cluster_of.get(b))
    p = tp / predicted_n if predicted_n else 0.0
    r = tp / len(gold)
    return {
        "precision": p,
        "recall": r,
        "f1": 2 * p * r / (p + r) if p + r else 0.0,
        "predicted_pairs": predicted_n,
        "true_positives": tp,
    }


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    sweep = "--sweep" in sys.argv
    dedupe = args[0] == "dedupe"
    if dedupe:
        records, id_col = read_records(args[1])
        data = Data(dataset_1=records, id_column_name_1=id_col)
        gold = read_gold(args[2], dedupe=True)
    else:
        left, left_id = read_records(args[1])
        right, right_id = read_records(args[2])
        data = Data(
            dataset_1=left,
            id_column_name_1=left_id,
            dataset_2=right,
            id_column_name_2=right_id,
        )
        gold = read_gold(args[3], dedupe=False)

    # Ray (on by default) starts a local cluster: seconds of start-up and worker processes
    # whose memory /usr/bin/time cannot see, for no gain on data this small.
    blocks = StandardBlocking(disable_ray=True).build_blocks(data, tqdm_disable=True)
    blocks = BlockPurging().process(blocks, data, tqdm_disable=True)
    blocks = BlockFiltering(ratio=0.8).process(blocks, data, tqdm_disable=True)
    candidates = WeightedEdgePruning(weighting_scheme="EJS").process(
        blocks, data, tqdm_disable=True
    )
    matcher = EntityMatching(
        metric="cosine",
        tokenizer="char_tokenizer",
        vectorizer="tfidf",
        qgram=3,
        similarity_threshold=0.0,
    )
    graph = matcher.predict(candidates, data, tqdm_disable=True)

    def cluster(threshold):
        if dedupe:
            return ConnectedComponentsClustering().process(graph, data, similarity_threshold=threshold)
        return UniqueMappingClustering().process(graph, data, similarity_threshold=threshold)

    threshold = DEDUPE_THRESHOLD if dedupe else LINK_THRESHOLD
    result = cluster_score(data, cluster(threshold), gold, dedupe)
    result.update(
        {
            "tool": f"pyjedai {pyjedai.__version__ if hasattr(pyjedai, '__version__') else '0.3.6'}",
            "threshold": threshold,
            "seconds": time.perf_counter() - START,
        }
    )

    if sweep:
        pairs = set()
        for a, neighbours in candidates.items():
            for b in neighbours:
                pairs.add(pair_of(data, min(a, b), max(a, b), dedupe))
        result["candidates"] = len(pairs)
        result["blocking_recall"] = len(pairs & gold) / len(gold)
        best = {"f1": 0.0}
        for step in range(1, 100):
            t = step / 100
            s = cluster_score(data, cluster(t), gold, dedupe)
            if s["f1"] > best["f1"]:
                best = {"f1": s["f1"], "threshold": t, "precision": s["precision"], "recall": s["recall"]}
        result["best"] = best
    emit(result)


if __name__ == "__main__":
    main()
