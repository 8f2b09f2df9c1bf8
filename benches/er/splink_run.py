"""Splink 5 (DuckDB) on one benchmark data set; prints one JSON line.

    python splink_run.py link DATASET LEFT RIGHT GOLD [--sweep]
    python splink_run.py dedupe DATASET RECORDS GOLD [--sweep]

Splink has no settings that work without being told about the data, so each data set gets the
settings a Splink user would write, after Splink's own examples: FEBRL3 and FEBRL4 copy the
"detailed model" of Splink's febrl3 / febrl4 demo notebooks; DBLP-ACM and Abt-Buy use the same
recipe (string-similarity levels on each shared column, a few blocking rules, u from random
sampling, m by EM) with the prior of two clean sources, 1 / records (the febrl4 demo's remark;
deterministic rules on product names catch too few twins to estimate it). Nothing is tuned against the gold pairs.

Without --sweep this is the timed run: train, predict at match probability >= THRESHOLD, and (for
dedupe) cluster at the same threshold, then score against gold. With --sweep it also predicts
every blocked pair and reports the candidate count, blocking recall and the best F1 over all
thresholds (pairwise, an oracle that reads the gold pairs; not timed).
"""

import logging
import sys
import time

import pandas as pd

from common import best_threshold, emit, read_gold, read_records, score

import splink  # noqa: E402
import splink.comparison_level_library as cll  # noqa: E402
import splink.comparison_library as cl  # noqa: E402
from splink import DuckDBAPI, Linker, SettingsCreator, block_on  # noqa: E402

logging.getLogger("splink").setLevel(logging.ERROR)

# Work time starts after the imports (interpreter start-up and imports show in the wall time).
START = time.perf_counter()

# Match probability at which a pair is a match: the point where the model finds a match more
# likely than not (opsweave's default cut is the same).
THRESHOLD = 0.5
U_MAX_PAIRS = 1e7
SEED = 1


def febrl_link():
    """Splink's febrl4 demo, detailed model."""
    blocking = [
        block_on("given_name", "surname"),
        "l.given_name = r.surname and l.surname = r.given_name",
        block_on("date_of_birth"),
        block_on("soc_sec_id"),
        block_on("state", "address_1"),
        block_on("street_number", "address_1"),
        block_on("postcode"),
    ]
    comparisons = [
        cl.NameComparison("given_name").configure(term_frequency_adjustments=True),
        cl.NameComparison("surname").configure(term_frequency_adjustments=True),
        cl.DateOfBirthComparison(
            "date_of_birth",
            input_is_string=True,
            datetime_format="%Y%m%d",
            invalid_dates_as_null=True,
        ),
        cl.DamerauLevenshteinAtThresholds("soc_sec_id", [1, 2]),
        cl.ExactMatch("street_number").configure(term_frequency_adjustments=True),
        cl.DamerauLevenshteinAtThresholds("postcode", [1, 2]).configure(
            term_frequency_adjustments=True
        ),
    ]
    deterministic = [
        block_on("soc_sec_id"),
        block_on("given_name", "surname", "date_of_birth"),
    ]
    em = [block_on("date_of_birth"), block_on("postcode")]
    return blocking, comparisons, deterministic, 0.8, em


def febrl_dedupe():
    """Splink's febrl3 demo."""
    blocking = [
        block_on("soc_sec_id"),
        block_on("given_name"),
        block_on("surname"),
        block_on("date_of_birth"),
        block_on("postcode"),
    ]
    comparisons = [
        cl.NameComparison("given_name"),
        cl.NameComparison("surname"),
        cl.DateOfBirthComparison(
            "date_of_birth",
            input_is_string=True,
            datetime_format="%Y%m%d",
            invalid_dates_as_null=True,
        ),
        cl.DamerauLevenshteinAtThresholds("soc_sec_id", [2]),
        cl.ExactMatch("street_number").configure(term_frequency_adjustments=True),
        cl.ExactMatch("postcode").configure(term_frequency_adjustments=True),
    ]
    deterministic = [
        block_on("soc_sec_id"),
        block_on("given_name", "surname", "date_of_birth"),
        "l.given_name = r.surname and l.surname = r.given_name and l.date_of_birth = r.date_of_birth",
    ]
    em = [block_on("date_of_birth"), block_on("postcode")]
    return blocking, comparisons, deterministic, 0.9, em


def bibliographic():
    """DBLP-ACM: title, authors, venue, year."""
    blocking = [block_on("year"), block_on("title_prefix")]
    comparisons = [
        cl.JaroWinklerAtThresholds("title_lower", [0.97, 0.9, 0.8]),
        cl.JaroWinklerAtThresholds("authors_lower", [0.9, 0.7]),
        cl.JaroWinklerAtThresholds("venue_lower", [0.9, 0.7]),
        cl.ExactMatch("year"),
    ]
    em = [block_on("year"), block_on("title_prefix")]
    return blocking, comparisons, None, None, em


def products():
    """Abt-Buy: name, description, price."""
    blocking = [block_on("brand"), block_on("name_prefix")]
    comparisons = [
        cl.JaroWinklerAtThresholds("name_lower", [0.95, 0.88, 0.7]),
        cl.ArrayIntersectAtSizes("name_tokens", [4, 2, 1]),
        cl.JaroWinklerAtThresholds("description_lower", [0.9, 0.7]),
        cl.CustomComparison(
            output_column_name="price",
            comparison_levels=[
                cll.NullLevel("price_num"),
                cll.ExactMatchLevel("price_num"),
                cll.PercentageDifferenceLevel("price_num", 0.1),
                cll.ElseLevel(),
            ],
        ),
    ]
    em = [block_on("brand"), block_on("name_prefix")]
    return blocking, comparisons, None, None, em


SETTINGS = {
    "febrl4": febrl_link,
    "febrl3": febrl_dedupe,
    "dblp-acm": bibliographic,
    "abt-buy": products,
}


def prepare(df, dataset):
    """Empty strings become NULL; the derived columns the settings above use."""
    df = df.replace("", None)
    if dataset == "dblp-acm":
        for c in ["title", "authors", "venue"]:
            df[c + "_lower"] = df[c].str.lower().str.strip()
        df["title_prefix"] = df["title_lower"].str.slice(0, 10)
    elif dataset == "abt-buy":
        df["name_lower"] = df["name"].str.lower().str.strip()
        df["description_lower"] = df["description"].str.lower()
        df["brand"] = df["name_lower"].str.split().str[0]
        df["name_prefix"] = df["name_lower"].str.slice(0, 8)
        df["name_tokens"] = df["name_lower"].str.findall(r"[a-z0-9]+")
        df["price_num"] = pd.to_numeric(
            df["price"].str.replace(r"[^0-9.]", "", regex=True), errors="coerce"
        )
    return df


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    sweep = "--sweep" in sys.argv
    task, dataset = args[0], args[1]
    dedupe = task == "dedupe"
    if dedupe:
        records, id_col = read_records(args[2])
        frames = [prepare(records, dataset)]
        gold = read_gold(args[3], dedupe=True)
    else:
        left, id_col = read_records(args[2])
        right, right_id = read_records(args[3])
        right = right.rename(columns={right_id: id_col})
        frames = [prepare(left, dataset), prepare(right, dataset)]
        gold = read_gold(args[4], dedupe=False)

    blocking, comparisons, deterministic, recall, em_rules = SETTINGS[dataset]()
    extra = {}
    if deterministic is None:
        # Two clean sources, each record with at most one twin: the prior is known, as Splink's
        # febrl4 demo notes ("we know the probability that a random pair will be a match").
        extra["probability_two_random_records_match"] = 1 / max(len(f) for f in frames)
    settings = SettingsCreator(
        unique_id_column_name=id_col,
        link_type="dedupe_only" if dedupe else "link_only",
        blocking_rules_to_generate_predictions=blocking,
        comparisons=comparisons,
        **extra,
    )
    db_api = DuckDBAPI()
    names = ["a_left", "b_right"]
    sdfs = [db_api.register(f, dataset_display_name=n) for f, n in zip(frames, names)]
    linker = Linker(sdfs if len(sdfs) > 1 else sdfs[0], settings, log_level=logging.ERROR)
    if deterministic is not None:
        linker.training.estimate_probability_two_random_records_match(deterministic, recall=recall)
    linker.training.estimate_u_using_random_sampling(max_pairs=U_MAX_PAIRS, seed=SEED)
    for rule in em_rules:
        linker.training.estimate_parameters_using_expectation_maximisation(
            rule, estimate_without_term_frequencies=True
        )

    l_col, r_col = f"{id_col}_l", f"{id_col}_r"

    # In link mode a pair's left record may come from either file: order it by source.
    cols = f"{l_col}, {r_col}" + ("" if dedupe else ", source_dataset_l")

    def pair(a, b, source="a_left"):
        if dedupe:
            return (min(a, b), max(a, b))
        return (a, b) if source == "a_left" else (b, a)

    predictions = linker.inference.predict(threshold_match_probability=THRESHOLD)
    if dedupe:
        clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
            predictions, threshold_match_probability=THRESHOLD
        )
        rows = clusters.as_duckdbpyrelation().select(f"{id_col}, cluster_id").fetchall()
        cluster_of = {rid: cid for rid, cid in rows}
        sizes = {}
        for cid in cluster_of.values():
            sizes[cid] = sizes.get(cid, 0) + 1
        predicted_n = sum(n * (n - 1) // 2 for n in sizes.values())
        tp = sum(1 for a, b in gold if a in cluster_of and cluster_of.get(a) == cluster_of.get(b))
        p = tp / predicted_n if predicted_n else 0.0
        r = tp / len(gold)
        result = {
            "precision": p,
            "recall": r,
            "f1": 2 * p * r / (p + r) if p + r else 0.0,
            "predicted_pairs": predicted_n,
            "true_positives": tp,
        }
    else:
        rows = predictions.as_duckdbpyrelation().select(cols).fetchall()
        result = score({pair(*row) for row in rows}, gold)
    result.update(
        {
            "tool": f"splink {splink.__version__}",
            "threshold": THRESHOLD,
            "seconds": time.perf_counter() - START,
        }
    )

    if sweep:
        everything = linker.inference.predict()
        scored = [
            (row[0], *pair(*row[1:]))
            for row in everything.as_duckdbpyrelation()
            .select(f"match_probability, {cols}")
            .fetchall()
        ]
        candidates = {(a, b) for _, a, b in scored}
        result["candidates"] = len(candidates)
        result["blocking_recall"] = len(candidates & gold) / len(gold)
        result["best"] = best_threshold(scored, gold)
    emit(result)


if __name__ == "__main__":
    main()
