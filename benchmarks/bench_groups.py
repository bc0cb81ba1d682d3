"""Benchmark strategic groups at scale: features, k selection + fit, assignment.

Each step runs in a fresh process (its own peak memory), ``--repeats`` times; medians with
min/max, and ratios against baselines measured in the same run:

* features: read + validate + ``build_features`` vs. read + validate alone;
* groups: ``StrategicGroups().fit`` (default config: k in 3..10 on evidence, 50k-customer
  selection sample, 5 bootstrap refits, final fit on every customer) vs. one plain
  ``StandardScaler`` + ``KMeans(k=7, n_init=10)`` fit on the same rows (the minimum a data
  scientist runs, with k known in advance and no evidence, stability or ids);
* assign: ``predict`` on every customer.

The script checks that the groups recover the planted personas (ARI >= 0.85), so a broken
run cannot look fast.

Usage::

    python benchmarks/bench_groups.py --customers 1000000 --months 24 --repeats 3
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import bank, bench_args, command, machine, run_step, size_label, write_section


def main() -> None:
    args, work = bench_args(__doc__, "groups")
    n, m = args.customers, args.months
    folder = bank(work, n, m)
    panel, truth, feats = folder / "panel.parquet", folder / "truth.parquet", work / "features.pq"

    base = run_step(
        "from segments import read_panel, validate_panel\n"
        "t = time.perf_counter()\n"
        f"p = validate_panel(read_panel({str(panel)!r}))\n"
        "elapsed = time.perf_counter() - t\n",
        args.repeats,
    )
    features = run_step(
        "from segments import read_panel, validate_panel, build_features\n"
        "t = time.perf_counter()\n"
        f"X = build_features(validate_panel(read_panel({str(panel)!r})))\n"
        "elapsed = time.perf_counter() - t\n"
        f"X.to_parquet({str(feats)!r})\n"
        "extra = {'customers': len(X), 'features': X.shape[1]}\n",
        args.repeats,
    )
    fit = run_step(
        "import pandas as pd\nfrom sklearn.metrics import adjusted_rand_score\n"
        "from segments import StrategicGroups\n"
        f"X = pd.read_parquet({str(feats)!r})\n"
        f"truth = pd.read_parquet({str(truth)!r}).set_index('customer_id')['persona']\n"
        "t = time.perf_counter()\n"
        "g = StrategicGroups(random_state=0).fit(X)\n"
        "elapsed = time.perf_counter() - t\n"
        "ari = adjusted_rand_score(truth.reindex(X.index), g.labels_)\n"
        "assert ari >= 0.85, ari\n"
        "import pickle\n"
        f"pickle.dump(g, open({str(work / 'groups.pkl')!r}, 'wb'))\n"
        "extra = {'k': int(g.n_groups_), 'ari': float(ari),\n"
        "         'jaccard_min': min(g.stability_['jaccard'].values())}\n",
        args.repeats,
    )
    plain = run_step(
        "import numpy as np, pandas as pd\nfrom sklearn.cluster import KMeans\n"
        "from sklearn.preprocessing import StandardScaler\n"
        "from sklearn.metrics import adjusted_rand_score\n"
        "from segments.core.groups.model import DEFAULT_GROUP_FEATURES\n"
        f"X = pd.read_parquet({str(feats)!r})\n"
        f"truth = pd.read_parquet({str(truth)!r}).set_index('customer_id')['persona']\n"
        "t = time.perf_counter()\n"
        "A = StandardScaler().fit_transform(X[list(DEFAULT_GROUP_FEATURES)].fillna(0))\n"
        "labels = KMeans(7, n_init=10, random_state=0).fit_predict(A)\n"
        "elapsed = time.perf_counter() - t\n"
        "extra = {'ari': float(adjusted_rand_score(truth.reindex(X.index), labels))}\n",
        args.repeats,
    )
    assign = run_step(
        "import pickle, pandas as pd\n"
        f"X = pd.read_parquet({str(feats)!r})\n"
        f"g = pickle.load(open({str(work / 'groups.pkl')!r}, 'rb'))\n"
        "t = time.perf_counter()\n"
        "ids = g.predict(X)\n"
        "elapsed = time.perf_counter() - t\n"
        "assert (ids == g.labels_).all()\n",
        args.repeats,
    )
    customers = features["extra"]["customers"]

    def line(name: str, r: dict, ref: dict | None, note: str) -> str:
        ratio = f"{r['median'] / ref['median']:.2f}x" if ref else "-"
        return (
            f"| {name} | {r['median']:.1f} | {r['min']:.1f} / {r['max']:.1f} | "
            f"{customers / r['median']:,.0f} | {r['peak_mib']:,.0f} | {ratio} | {note} |"
        )

    fx = fit["extra"]
    body = "\n".join(
        [
            f"## Strategic groups ({n:,} customers x {m} months)",
            "",
            f"Machine: {machine()}.",
            "",
            f"Command: `{command()}`",
            "",
            f"{customers:,} active customers in the last month, "
            f"{features['extra']['features']} features. Times in seconds, median of "
            f"{args.repeats} (min / max), each run in a fresh process; rate in customers/s.",
            "",
            "| step | median s | min / max s | customers/s | peak MiB | ratio | vs. baseline |",
            "|---|---|---|---|---|---|---|",
            line("read + validate panel", base, None, "baseline for features"),
            line("read + validate + build_features", features, base, "ratio to read + validate"),
            line(
                "plain StandardScaler + KMeans(7)",
                plain,
                None,
                f"baseline for groups; ARI vs personas {plain['extra']['ari']:.3f}",
            ),
            line(
                "StrategicGroups().fit (auto k, stability)",
                fit,
                plain,
                f"chosen k = {fx['k']}, ARI vs personas {fx['ari']:.3f}, "
                f"min group Jaccard {fx['jaccard_min']:.3f}",
            ),
            line("StrategicGroups.predict", assign, None, "assignment of every customer"),
        ]
    )
    write_section("groups", body, size_label(n))
    print(body)


if __name__ == "__main__":
    main()
