"""Benchmark the groups' selection sample: time, chosen k and agreement with the personas.

``StrategicGroups`` chooses k (and measures stability) on a random sample of
``selection_size`` customers, then fits on everyone. For each bank size and each
selection size, one ``StrategicGroups(selection_size=s).fit`` on the bank's features (in a
fresh process, ``--repeats`` times): the median time, the k chosen and the adjusted Rand
index against the planted personas. The largest selection size is the baseline.

Usage::

    python benchmarks/bench_selection.py --sizes 30000 100000 --selection 50000 20000 10000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import bank, command, machine, run_step, size_label, write_section


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[30_000, 100_000])
    parser.add_argument("--selection", type=int, nargs="+", default=[50_000, 20_000, 10_000])
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    work = (args.workdir or Path(tempfile.mkdtemp(prefix="segments-bench-sel-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in args.sizes:
        folder = bank(work, n, args.months, seed=4)
        feats = work / f"features_{n}.parquet"
        run_step(
            "from segments import read_panel, validate_panel, build_features\n"
            f"X = build_features(validate_panel(read_panel({str(folder / 'panel.parquet')!r})))\n"
            f"X.to_parquet({str(feats)!r})\nelapsed = 0.0\n",
            1,
        )
        results = {}
        for s in sorted(args.selection, reverse=True):
            results[s] = run_step(
                "import pandas as pd\nfrom sklearn.metrics import adjusted_rand_score\n"
                "from segments import StrategicGroups\n"
                f"X = pd.read_parquet({str(feats)!r})\n"
                f"truth = pd.read_parquet({str(folder / 'truth.parquet')!r})"
                ".set_index('customer_id')['persona']\n"
                "t = time.perf_counter()\n"
                f"g = StrategicGroups(selection_size={s}, random_state=0).fit(X)\n"
                "elapsed = time.perf_counter() - t\n"
                "extra = {'k': int(g.n_groups_),\n"
                "         'ari': float(adjusted_rand_score(truth.reindex(X.index), g.labels_))}\n",
                args.repeats,
            )
        base = results[max(results)]
        for s, r in results.items():
            rows.append(
                f"| {n:,} | {s:,} | {r['median']:.1f} | {r['min']:.1f} / {r['max']:.1f} | "
                f"{r['median'] / base['median']:.2f}x | {r['extra']['k']} | "
                f"{r['extra']['ari']:.4f} |"
            )
    body = "\n".join(
        [
            f"## Groups: the selection sample ({', '.join(f'{n:,}' for n in args.sizes)} "
            f"customers x {args.months} months)",
            "",
            f"Machine: {machine()}.",
            "",
            f"Command: `{command()}`",
            "",
            "`StrategicGroups(selection_size=s).fit` on the bank's features (k chosen in 3..10 "
            "with 5 bootstrap refits on the sample, final fit on every customer); median of "
            f"{args.repeats} (min / max), each in a fresh process; the ratio is to the largest "
            "sample in the same run; ARI against the planted personas.",
            "",
            "| customers | selection_size | median s | min / max s | vs. largest | k | ARI |",
            "|---|---|---|---|---|---|---|",
            *rows,
        ]
    )
    write_section("selection", body, size_label(*args.sizes))
    print(body)


if __name__ == "__main__":
    main()
