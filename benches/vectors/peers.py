"""Vector search peers for benches/vectors/run.sh: makes the data set and runs hnswlib and faiss.

    peers.py gen --n N --out DIR      low-rank synthetic vectors, queries and exact ground truth
    peers.py hnswlib --data DIR       build + queries (plain and 1 % tenant filtered), JSON line
    peers.py faiss --data DIR         the same with faiss IndexHNSWFlat

Data: rank-32 Gaussian vectors in 384 dimensions plus small isotropic noise, normalised (text
embeddings are close to low rank). Ground truth is brute force over inner products (cosine, as
every vector is normalised). The tenant is every 100th row (1 %), the filter the harness queries.
All indexes use M = 16, ef_construction = 128 (`--m`, `--ef-construction` change them),
ef_search = 64; queries run one at a time on one thread (the latency a request sees), builds on
every core.
"""

import argparse
import json
import os
import time

import numpy as np

K = 10
M = 16
EF_CONSTRUCTION = 128
EF_SEARCH = 64
# Plain queries are also measured at these ef_search values (recall against latency).
CURVE_EF = (64, 96, 128, 192, 256)


def gen(n: int, dim: int, rank: int, queries: int, out: str) -> None:
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(42)
    basis = rng.standard_normal((rank, dim)).astype(np.float32)

    def sample(count: int) -> np.ndarray:
        x = rng.standard_normal((count, rank)).astype(np.float32) @ basis
        x += 0.1 * np.sqrt(rank) * rng.standard_normal((count, dim)).astype(np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        return x.astype(np.float32)

    base = np.concatenate([sample(min(100_000, n - i)) for i in range(0, n, 100_000)])
    q = sample(queries)
    tenant = np.arange(n) % 100 == 0

    def truth(rows: np.ndarray, ids: np.ndarray) -> np.ndarray:
        best_s = np.full((queries, K), -np.inf, dtype=np.float32)
        best_i = np.zeros((queries, K), dtype=np.int64)
        for start in range(0, len(rows), 200_000):
            s = q @ rows[start:start + 200_000].T
            idx = np.argpartition(-s, K, axis=1)[:, :K]
            cand_s = np.take_along_axis(s, idx, axis=1)
            all_s = np.concatenate([best_s, cand_s], axis=1)
            all_i = np.concatenate([best_i, ids[start + idx]], axis=1)
            keep = np.argsort(-all_s, axis=1)[:, :K]
            best_s = np.take_along_axis(all_s, keep, axis=1)
            best_i = np.take_along_axis(all_i, keep, axis=1)
        return best_i.astype(np.int32)

    gt = truth(base, np.arange(n))
    gt_tenant = truth(base[tenant], np.flatnonzero(tenant))
    base.tofile(os.path.join(out, "base.f32"))
    q.tofile(os.path.join(out, "queries.f32"))
    gt.tofile(os.path.join(out, "gt.i32"))
    gt_tenant.tofile(os.path.join(out, "gt_tenant.i32"))
    with open(os.path.join(out, "meta.json"), "w") as f:
        json.dump({"n": n, "dim": dim, "rank": rank, "queries": queries, "k": K}, f)


def load(data: str):
    meta = json.load(open(os.path.join(data, "meta.json")))
    n, dim, nq = meta["n"], meta["dim"], meta["queries"]
    base = np.fromfile(os.path.join(data, "base.f32"), dtype=np.float32).reshape(n, dim)
    q = np.fromfile(os.path.join(data, "queries.f32"), dtype=np.float32).reshape(nq, dim)
    gt = np.fromfile(os.path.join(data, "gt.i32"), dtype=np.int32).reshape(nq, K)
    gt_t = np.fromfile(os.path.join(data, "gt_tenant.i32"), dtype=np.int32).reshape(nq, K)
    return meta, base, q, gt, gt_t


def cpu() -> float:
    t = os.times()
    return t.user + t.system


def measure(search, q, gt) -> dict:
    for i in range(min(50, len(q))):
        search(q[i])
    lat, found, full = [], 0, 0
    for i in range(len(q)):
        t0 = time.perf_counter()
        ids = search(q[i])
        lat.append(time.perf_counter() - t0)
        ids = [int(x) for x in ids if x >= 0]
        full += len(ids) == K
        found += len(set(ids) & set(int(x) for x in gt[i]))
    lat = np.array(lat) * 1000
    return {
        "recall@10": found / (K * len(q)),
        "full_k": full / len(q),
        "qps": len(q) / (lat.sum() / 1000),
        "p50_ms": float(np.percentile(lat, 50)),
        "p99_ms": float(np.percentile(lat, 99)),
    }


def run_hnswlib(data: str, m: int, ef_construction: int) -> dict:
    import hnswlib

    meta, base, q, gt, gt_t = load(data)
    t0, c0 = time.perf_counter(), cpu()
    index = hnswlib.Index(space="ip", dim=meta["dim"])
    index.init_index(max_elements=len(base), ef_construction=ef_construction, M=m)
    index.add_items(base, np.arange(len(base)), num_threads=os.cpu_count())
    build_s, build_cpu = time.perf_counter() - t0, cpu() - c0
    index.set_ef(EF_SEARCH)
    index.set_num_threads(1)
    plain = measure(lambda v: index.knn_query(v, k=K)[0][0], q, gt)
    curve = []
    for ef in CURVE_EF:
        index.set_ef(ef)
        curve.append({"ef": ef, **measure(lambda v: index.knn_query(v, k=K)[0][0], q, gt)})
    index.set_ef(EF_SEARCH)
    tenant = lambda label: label % 100 == 0  # noqa: E731
    filtered = measure(lambda v: index.knn_query(v, k=K, filter=tenant)[0][0], q, gt_t)
    return {"engine": "hnswlib " + getattr(hnswlib, "__version__", ""),
            "m": m, "ef_construction": ef_construction, "build_s": build_s,
            "build_cpu_s": build_cpu, "plain": plain, "tenant": filtered, "curve": curve}


def run_faiss(data: str, m: int, ef_construction: int) -> dict:
    import faiss

    meta, base, q, gt, gt_t = load(data)
    faiss.omp_set_num_threads(os.cpu_count())
    t0, c0 = time.perf_counter(), cpu()
    index = faiss.IndexHNSWFlat(meta["dim"], m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = ef_construction
    index.add(base)
    build_s, build_cpu = time.perf_counter() - t0, cpu() - c0
    faiss.omp_set_num_threads(1)
    index.hnsw.efSearch = EF_SEARCH
    plain = measure(lambda v: index.search(v.reshape(1, -1), K)[1][0], q, gt)
    curve = []
    for ef in CURVE_EF:
        index.hnsw.efSearch = ef
        curve.append({"ef": ef, **measure(lambda v: index.search(v.reshape(1, -1), K)[1][0], q, gt)})
    index.hnsw.efSearch = EF_SEARCH
    selector = faiss.IDSelectorBatch(np.flatnonzero(np.arange(len(base)) % 100 == 0))
    params = faiss.SearchParametersHNSW(sel=selector, efSearch=EF_SEARCH)
    filtered = measure(lambda v: index.search(v.reshape(1, -1), K, params=params)[1][0], q, gt_t)
    return {"engine": "faiss-cpu " + faiss.__version__ + " IndexHNSWFlat",
            "m": m, "ef_construction": ef_construction, "build_s": build_s,
            "build_cpu_s": build_cpu, "plain": plain, "tenant": filtered, "curve": curve}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["gen", "hnswlib", "faiss"])
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--rank", type=int, default=32)
    p.add_argument("--queries", type=int, default=1_000)
    p.add_argument("--out")
    p.add_argument("--data")
    p.add_argument("--m", type=int, default=M, help="graph degree (the harness's --m)")
    p.add_argument("--ef-construction", type=int, default=EF_CONSTRUCTION)
    a = p.parse_args()
    if a.mode == "gen":
        gen(a.n, a.dim, a.rank, a.queries, a.out)
    else:
        run = run_hnswlib if a.mode == "hnswlib" else run_faiss
        result = run(a.data, a.m, a.ef_construction)
        print(json.dumps(result))


if __name__ == "__main__":
    main()
