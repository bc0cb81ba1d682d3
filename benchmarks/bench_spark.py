"""Benchmark the Spark engine: ``local[1]`` against ``local[2]``, and the local engine.

Models are trained once on a 20,000-customer synthetic bank and promoted (as in
``bench_scoring.py``); the bank of ``--customers`` is then scored for its last month, each
run in a fresh process (session start included), ``--repeats`` times each:

* the local engine (one worker per core), the baseline in the same run;
* the Spark engine on ``local[1]`` and on ``local[2]``.

Each run checks its output (one row per active customer, the documented schema), and the
last Spark output must equal the local output row for row, so a broken run cannot look
fast. Peak memory is the whole process tree's (the Spark JVM and its Python workers are
children of the job).

Usage::

    python benchmarks/bench_spark.py --customers 1000000 --repeats 3
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import bank, bench_args, command, machine, run_step, size_label, write_section
from bench_scoring import _prepare, _score_code
from segments.core.config.sections import ScoringConfig

MASTERS = ("local[1]", "local[2]")


def _equal_outputs(local: Path, spark: Path) -> int:
    """Rows compared; raise unless the two outputs are equal row for row (but the time
    each run stamps)."""
    import pandas as pd

    from segments.jobs.score import read_output

    a, b = (read_output(p).drop(columns=["scored_at", "run_id"]) for p in (local, spark))
    pd.testing.assert_frame_equal(a, b)
    return len(a)


def main() -> None:
    args, work = bench_args(__doc__, "spark")
    work = work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    n, batch = args.customers, ScoringConfig.batch_customers
    exp = _prepare(work)
    panel = bank(work, n, args.months) / "panel.parquet"
    rows = [("local engine (baseline)", run_step(
        _score_code(work, exp, panel, work / "local", "local", batch, track=False), args.repeats
    ))]  # fmt: skip
    for master in MASTERS:
        code = _score_code(work, exp, panel, work / f"spark_{master[6]}", "spark", batch, master)
        rows.append((f"Spark {master}", run_step(code, args.repeats)))
    compared = _equal_outputs(work / "local", work / "spark_2")
    one = rows[1][1]["median"]
    lines = [
        f"## Spark engine (`local[1]` vs `local[2]`, {n:,} customers x {args.months} months)",
        "",
        f"Machine: {machine()}.",
        "",
        f"Command: `{command()}`",
        "",
        "The last month scored (tiers, groups, p_upgrade, band ranks, 3 reason codes) from "
        "models loaded by alias; each run in a fresh process, session start included. "
        f"Median of {args.repeats} (min / max). Peak memory is the whole process tree's "
        "(job, Spark JVM, Python workers), sampled every 50 ms. The `local[2]` output "
        f"equals the local engine's row for row ({compared:,} rows compared).",
        "",
        "| engine | median s | min / max s | customers/s | vs. Spark local[1] | peak MiB "
        "| stage times (s), last run |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in rows:
        active = r["extra"].get("rows", n)
        tree = max(r["tree_peak_mib"], r["peak_mib"])
        t = r["extra"].get("timings", {})
        stages = ", ".join(f"{k.removesuffix('_s')} {v:.1f}" for k, v in t.items())
        lines.append(
            f"| {name} | {r['median']:.1f} | {r['min']:.1f} / {r['max']:.1f} | "
            f"{active / r['median']:,.0f} | {one / r['median']:.2f}x | {tree:,.0f} | {stages} |"
        )
    write_section("spark", "\n".join(lines), size_label(n))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
