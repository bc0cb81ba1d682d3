"""Benchmark the foundation: synthetic bank, panel validation, tier engine.

Each step runs in a fresh process (so its peak memory is its own), ``--repeats`` times;
medians are reported with min/max, and ratios against a baseline measured in the same run:

* synth: ``write_bank`` vs. reading the written panel back (``pd.read_parquet``);
* validate: read + ``validate_panel`` vs. the read alone;
* tiers: ``assign_tiers`` (CMB, no hysteresis) vs. the few lines a data scientist writes
  (``pd.cut`` on AUM plus a groupby shift for the change), and the CCB hysteresis ladder vs.
  the plain one;
* points ladders: ``stars7`` (8 components, 3-month windows) and ``member_growth`` (4
  activities, a 12-month expiry, hysteresis) vs. the CMB ladder.

Usage::

    python benchmarks/bench_foundation.py --customers 1000000 --months 24 --repeats 3
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import bench_args, command, machine, run_step, size_label, write_section


def main() -> None:
    args, work = bench_args(__doc__, "foundation")
    bank = work / "bank"
    n, m = args.customers, args.months
    panel_path = bank / "panel.parquet"

    synth = run_step(
        "from segments import write_bank\n"
        "t = time.perf_counter()\n"
        f"write_bank({str(bank)!r}, {n}, {m}, seed=0)\n"
        "elapsed = time.perf_counter() - t\n",
        args.repeats,
    )
    read = run_step(
        "import pandas as pd\n"
        "t = time.perf_counter()\n"
        f"df = pd.read_parquet({str(panel_path)!r})\n"
        "elapsed = time.perf_counter() - t\n"
        "extra = {'rows': len(df), 'columns': df.shape[1]}\n",
        args.repeats,
    )
    validate = run_step(
        "from segments import read_panel, validate_panel\n"
        "t = time.perf_counter()\n"
        f"df = validate_panel(read_panel({str(panel_path)!r}))\n"
        "elapsed = time.perf_counter() - t\n"
        "assert df['customer_id'].nunique() == " + str(n) + "\n",
        args.repeats,
    )
    prelude = (
        "import pandas as pd, numpy as np\n"
        "from segments import read_panel, validate_panel, assign_tiers\n"
        f"panel = validate_panel(read_panel({str(panel_path)!r}))\n"
    )
    naive = run_step(
        prelude + "t = time.perf_counter()\n"
        "bins = [0, 50e3, 500e3, 5e6, 10e6, np.inf]\n"
        "rank = pd.cut(panel['aum'], bins, right=False, labels=False)\n"
        "change = rank.groupby(panel['customer_id']).diff()\n"
        "elapsed = time.perf_counter() - t\n"
        "extra = {'gold_share': float((rank == 1).mean())}\n",
        args.repeats,
    )
    tiers = run_step(
        prelude + "t = time.perf_counter()\n"
        "table = assign_tiers(panel, 'cmb')\n"
        "elapsed = time.perf_counter() - t\n"
        "extra = {'gold_share': float((table['tier_rank'] == 1).mean())}\n",
        args.repeats,
    )
    hyst = run_step(
        prelude + "t = time.perf_counter()\n"
        "table = assign_tiers(panel, 'cmb', hysteresis='ccb')\n"
        "elapsed = time.perf_counter() - t\n",
        args.repeats,
    )
    stars = run_step(
        prelude + "t = time.perf_counter()\n"
        "table = assign_tiers(panel, 'stars7')\n"
        "elapsed = time.perf_counter() - t\n",
        args.repeats,
    )
    growth = run_step(
        prelude + "t = time.perf_counter()\n"
        "table = assign_tiers(panel, 'member_growth')\n"
        "elapsed = time.perf_counter() - t\n",
        args.repeats,
    )
    # The naive baseline and ours must agree on the plain ladder, or the comparison is void.
    assert abs(naive["extra"]["gold_share"] - tiers["extra"]["gold_share"]) < 1e-12
    rows = read["extra"]["rows"]

    def line(name: str, r: dict, base: dict | None, note: str) -> str:
        ratio = f"{r['median'] / base['median']:.2f}x" if base else "-"
        return (
            f"| {name} | {r['median']:.2f} | {r['min']:.2f} / {r['max']:.2f} | "
            f"{rows / r['median']:,.0f} | {r['peak_mib']:,.0f} | {ratio} | {note} |"
        )

    body = "\n".join(
        [
            f"## Foundation: synthetic bank, validation, tiers ({n:,} customers x {m} months)",
            "",
            f"Machine: {machine()}.",
            "",
            f"Command: `{command()}`",
            "",
            f"Panel: {rows:,} customer-months x {read['extra']['columns']} columns, "
            f"{panel_path.stat().st_size / 2**20:,.0f} MiB of Parquet. Times in seconds, median "
            f"of {args.repeats} (min / max); each run in a fresh process.",
            "",
            "| step | median s | min / max s | rows/s | peak MiB | ratio | vs. baseline |",
            "|---|---|---|---|---|---|---|",
            line("synth (write_bank)", synth, read, "ratio to reading the panel back"),
            line("read panel (pd.read_parquet)", read, None, "baseline"),
            line("read_panel + validate_panel", validate, read, "ratio to the plain read"),
            line(
                "naive tiers (pd.cut + groupby diff)",
                naive,
                None,
                "baseline (no bands, gaps, status)",
            ),
            line("assign_tiers, cmb", tiers, naive, "ratio to the naive tiers"),
            line("assign_tiers, cmb + CCB hysteresis", hyst, tiers, "ratio to no hysteresis"),
            line("assign_tiers, stars7 (points, 8 components)", stars, tiers, "ratio to cmb"),
            line(
                "assign_tiers, member_growth (12-month expiry, hysteresis)",
                growth,
                tiers,
                "ratio to cmb",
            ),
            "",
            "Peak memory of the tier steps includes the validated panel held in memory.",
        ]
    )
    write_section("foundation", body, size_label(n))
    print(body)


if __name__ == "__main__":
    main()
