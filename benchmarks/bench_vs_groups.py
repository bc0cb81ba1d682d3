"""Benchmark strategic groups against plain scikit-learn and PyCaret 3 clustering.

Three ways to split the synthetic bank's customers into groups, each step in a fresh
process, ``--repeats`` times (median, min / max, peak resident memory):

* segments: read + validate + ``build_features`` (timed apart), then
  ``StrategicGroups(random_state=0).fit`` (auto k in 3..10 on evidence, 50k-customer
  selection sample, bootstrap stability, final fit on every customer);
* plain scikit-learn, what a data scientist writes: ``DEFAULT_GROUP_FEATURES`` with NaN
  filled by 0, ``StandardScaler``, ``KMeans(k, n_init=10)`` for k in 3..10, each scored
  with ``silhouette_score`` on *every* row (O(n²): above ``--silhouette-max`` rows it is
  scored on a random sample of that many rows instead, and the table says so), the best k
  kept;
* PyCaret 3 (its own venv, see ``_pycaret.py``): ``setup(data, session_id=0,
  normalize=True)`` + ``create_model("kmeans")`` + ``assign_model``, once with PyCaret's
  default 4 clusters and once with ``--pycaret-k`` (default 7, the number of planted
  personas: PyCaret is told the answer). ``create_model`` scores the silhouette on every
  row, O(n²); above ``--pycaret-max`` rows PyCaret is not run and the table says so.

The scikit-learn and PyCaret timers start from the feature table in memory: feature
engineering is given to them for free. Quality is measured the same way for all, after
the timed runs: the silhouette on one random sample (``--sample`` rows, seed 0) of one
space (the group features, NaN -> 0, standardised over all customers), and the adjusted
Rand index against the planted personas. The script asserts that every method labels
every customer with the k it claims and recovers the personas better than chance (the
groups: ARI >= 0.85), so a broken run cannot look fast.

Usage::

    python benchmarks/bench_vs_groups.py --customers 100000 --months 24 --repeats 5

Options beyond ``bench_args``'s (``--customers`` default 100000, ``--months``,
``--workdir``): ``--repeats`` (default 5), ``--no-write`` (print only),
``--pycaret-python PATH`` (default ``build/pycaret-venv/bin/python``, made from
``benchmarks/pycaret-requirements.txt`` if missing), ``--silhouette-max`` (100000),
``--pycaret-max`` (200000), ``--pycaret-k`` (7), ``--sample`` (5000).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _pycaret import ensure_pycaret, parse, pycaret_parser, run_pycaret_step
from _report import bank, bench_args, command, machine, run_step, size_label, write_section

SK_CODE = """
import numpy as np, pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler
from segments.core.groups.model import DEFAULT_GROUP_FEATURES
X = pd.read_parquet({feats!r})
t = time.perf_counter()
A = StandardScaler().fit_transform(X[list(DEFAULT_GROUP_FEATURES)].fillna(0))
scores, fits = {{}}, {{}}
for k in range(3, 11):
    fits[k] = KMeans(k, n_init=10, random_state=0).fit_predict(A)
    scores[k] = float(silhouette_score(A, fits[k], sample_size={sample}, random_state=0))
best = max(scores, key=scores.get)
labels = fits[best]
elapsed = time.perf_counter() - t
np.save({out!r}, labels)
extra = {{'k': int(best), 'rows': len(labels), 'scores': scores}}
"""

PC_CODE = """
import warnings
warnings.filterwarnings('ignore')
import numpy as np, pandas as pd, pycaret
from pycaret.clustering import setup, create_model, assign_model
D = pd.read_parquet({feats!r})
t = time.perf_counter()
setup(data=D, session_id=0, normalize=True, verbose=False, html=False)
model = create_model('kmeans', verbose=False{kwargs})
out = assign_model(model)
elapsed = time.perf_counter() - t
assert out.index.equals(D.index)
labels = out['Cluster'].str.replace('Cluster ', '').astype(int).to_numpy()
np.save({out_path!r}, labels)
extra = {{'k': int(model.n_clusters), 'rows': len(labels), 'pycaret': pycaret.__version__,
         'tree_peak_mib': tree_peak_mib()}}
"""


def main() -> None:
    parser = pycaret_parser(__doc__)
    parser.add_argument("--silhouette-max", type=int, default=100_000)
    parser.add_argument("--pycaret-max", type=int, default=200_000)
    parser.add_argument("--pycaret-k", type=int, default=7)
    parser.add_argument("--sample", type=int, default=5_000)
    opts = parse(parser)
    args, work = bench_args(__doc__, "vs-groups", customers=100_000)
    n, m = args.customers, args.months
    folder = bank(work, n, m)
    panel, truth = folder / "panel.parquet", folder / "truth.parquet"
    feats, group_feats = work / "features.pq", work / "group_features.pq"

    features = run_step(
        "from segments import read_panel, validate_panel, build_features\n"
        "t = time.perf_counter()\n"
        f"X = build_features(validate_panel(read_panel({str(panel)!r})))\n"
        "elapsed = time.perf_counter() - t\n"
        f"X.to_parquet({str(feats)!r})\n"
        "extra = {'customers': len(X), 'features': X.shape[1]}\n",
        args.repeats,
    )
    rows = features["extra"]["customers"]
    fit = run_step(
        "import numpy as np, pandas as pd\nfrom segments import StrategicGroups\n"
        f"X = pd.read_parquet({str(feats)!r})\n"
        "t = time.perf_counter()\n"
        "g = StrategicGroups(random_state=0).fit(X)\n"
        "elapsed = time.perf_counter() - t\n"
        f"np.save({str(work / 'labels_segments.npy')!r}, g.labels_)\n"
        "extra = {'k': int(g.n_groups_), 'rows': len(g.labels_),\n"
        "         'jaccard_min': min(g.stability_['jaccard'].values())}\n",
        args.repeats,
    )
    full_sil = rows <= opts.silhouette_max
    sk = run_step(
        SK_CODE.format(
            feats=str(feats),
            out=str(work / "labels_sklearn.npy"),
            sample=None if full_sil else opts.silhouette_max,
        ),
        args.repeats,
    )

    import numpy as np
    import pandas as pd
    from sklearn.metrics import adjusted_rand_score, silhouette_score
    from sklearn.preprocessing import StandardScaler

    from segments.core.groups.model import DEFAULT_GROUP_FEATURES

    X = pd.read_parquet(feats)
    X[list(DEFAULT_GROUP_FEATURES)].to_parquet(group_feats)
    pycaret_runs: dict[str, dict | None] = {"default": None, "k": None}
    version = "not run"
    if rows <= opts.pycaret_max:
        version = ensure_pycaret(opts.pycaret_python, work)
        for key, kwargs in (("default", ""), ("k", f", num_clusters={opts.pycaret_k}")):
            pycaret_runs[key] = run_pycaret_step(
                PC_CODE.format(
                    feats=str(group_feats),
                    kwargs=kwargs,
                    out_path=str(work / f"labels_pycaret_{key}.npy"),
                ),
                opts.pycaret_repeats,
                opts.pycaret_python,
            )

    # Quality, the same way for every method.
    A = StandardScaler().fit_transform(X[list(DEFAULT_GROUP_FEATURES)].fillna(0))
    rng = np.random.default_rng(0)
    sample = np.sort(rng.choice(len(X), min(opts.sample, len(X)), replace=False))
    persona = pd.read_parquet(truth).set_index("customer_id")["persona"].reindex(X.index)
    assert persona.notna().all()

    def quality(name: str, r: dict, k_range: tuple[int, int], min_ari: float) -> None:
        labels = np.load(work / f"labels_{name}.npy")
        k = r["extra"]["k"]
        assert r["extra"]["rows"] == len(labels) == len(X), (name, len(labels), len(X))
        assert k_range[0] <= k <= k_range[1], (name, k)
        assert len(np.unique(labels)) == k, (name, np.unique(labels), k)
        r["sil"] = float(silhouette_score(A[sample], labels[sample]))
        r["ari"] = float(adjusted_rand_score(persona, labels))
        assert min_ari <= r["ari"] <= 1, (name, r["ari"])

    quality("segments", fit, (3, 10), 0.85)
    quality("sklearn", sk, (3, 10), 0.2)
    if pycaret_runs["default"] is not None:
        quality("pycaret_default", pycaret_runs["default"], (4, 4), 0.2)
        quality("pycaret_k", pycaret_runs["k"], (opts.pycaret_k, opts.pycaret_k), 0.2)

    def line(name: str, r: dict | None, note: str, ratio: bool = True) -> str:
        if r is None:
            return f"| {name} | - | - | - | - | - | - | - | - | {note} |"
        rel = f"{r['median'] / fit['median']:.2f}x" if ratio else "-"
        k = r["extra"].get("k", "-")
        sil = f"{r['sil']:.3f}" if "sil" in r else "-"
        ari = f"{r['ari']:.3f}" if "ari" in r else "-"
        return (
            f"| {name} | {r['n']} | {r['median']:.1f} | {r['min']:.1f} / {r['max']:.1f} | "
            f"{r['peak_mib']:,.0f} | {k} | {sil} | {ari} | {rel} | {note} |"
        )

    sil_mode = (
        "silhouette on every row"
        if full_sil
        else f"silhouette on a {opts.silhouette_max:,}-row random sample (every row "
        f"is O(n²); limit `--silhouette-max`)"
    )
    scores = ", ".join(f"{k}: {v:.3f}" for k, v in sk["extra"]["scores"].items())
    total = {
        "median": features["median"] + fit["median"],
        "min": features["min"] + fit["min"],
        "max": features["max"] + fit["max"],
        "peak_mib": max(features["peak_mib"], fit["peak_mib"]),
        "extra": {},
        "n": fit["n"],
    }
    skipped = (
        f"not run: `create_model` scores the silhouette on all {rows:,} rows, O(n²) "
        f"(limit `--pycaret-max` {opts.pycaret_max:,})"
    )
    pc_rows = []
    for key, title in (
        ("default", "PyCaret kmeans, default 4 clusters"),
        ("k", f"PyCaret kmeans, num_clusters={opts.pycaret_k}"),
    ):
        r = pycaret_runs[key]
        note = (
            skipped
            if r is None
            else (
                "setup (normalize) + create_model + assign_model"
                + ("; told the planted k" if key == "k" else "")
            )
        )
        pc_rows.append(line(title, r, note))
    body = "\n".join(
        [
            f"## Strategic groups vs. scikit-learn and PyCaret ({n:,} customers x {m} months)",
            "",
            f"Machine: {machine()}; PyCaret {version} in its own venv "
            "(`benchmarks/pycaret-requirements.txt`).",
            "",
            f"Command: `{command()}`",
            "",
            f"{rows:,} active customers in the last month, {len(DEFAULT_GROUP_FEATURES)} group "
            "features. Times in seconds: median (min / max) of the row's runs, each in a "
            "fresh process; peak MiB is the process's own maximum resident set (VmHWM; for "
            "PyCaret, the process tree with its joblib workers, sampled every 0.2 s). "
            "scikit-learn and PyCaret start from the feature table in memory (feature "
            "engineering not timed). Silhouette: the same "
            f"{len(sample):,}-customer random sample (seed 0) for every method, in one space "
            "(group features, NaN -> 0, standardised: the space the scikit-learn path clusters "
            "in; PyCaret imputes means, segments transforms its features its own way); ARI "
            "against the planted personas. PyCaret runs in its own venv, with the older "
            "scikit-learn, numpy and pandas pinned in `benchmarks/pycaret-requirements.txt` "
            "(the Machine line gives this venv's).",
            "",
            "| method | runs | median s | min / max s | peak MiB | k | silhouette | ARI | "
            "time ÷ segments fit | note |",
            "|---|---|---|---|---|---|---|---|---|---|",
            line(
                "segments: read + validate + build_features",
                features,
                "feature table for every method",
                ratio=False,
            ),
            line(
                "segments: StrategicGroups().fit (auto k, stability)",
                fit,
                f"k chosen on evidence; min group Jaccard {fit['extra']['jaccard_min']:.3f}",
            ),
            line(
                "segments: features + fit",
                total,
                "sum of the two rows above (median, min and max each summed)",
            ),
            line(
                "scikit-learn: StandardScaler + KMeans(n_init=10), k = 3..10",
                sk,
                f"best k by {sil_mode}; scores {scores}",
            ),
            *pc_rows,
        ]
    )
    if not opts.no_write:
        write_section("vs-groups", body, size_label(n))
    print(body)


if __name__ == "__main__":
    main()
