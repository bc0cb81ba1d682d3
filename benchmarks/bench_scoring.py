"""Benchmark batch scoring: local throughput and peak memory by bank size (Spark: bench_spark.py).

Models are trained once on a 20,000-customer synthetic bank (default config, tracked in a
SQLite store in the working folder) and promoted; banks of each size are then scored for
their last month, each run in a fresh process (its own peak memory), ``--repeats`` times:

* local engine, ``--batch-customers`` per batch, at every ``--sizes`` (customers);
* baseline in the same run: reading the whole panel into pandas (``pd.read_parquet``), the
  first step of the naive "load everything, then score" job, up to ``--max-baseline``
  customers (beyond, it does not fit: that is the point of streaming).

The Spark engine is measured by ``bench_spark.py``.

Each run checks its output (one row per active customer, the documented schema), so a
broken run cannot look fast.

Usage::

    python benchmarks/bench_scoring.py --sizes 100000 1000000 10000000 --repeats 3
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import PEAK_MIB, ROOT, bank, command, machine, run_step, size_label, write_section
from segments.core.config.sections import ScoringConfig

TRAIN = 20_000


def _prepare(work: Path) -> Path:
    """Train and promote the models once per version of ``src/``; return the experiment
    file."""
    import shutil
    import subprocess

    exp = work / "bench_scoring.yaml"
    marker = work / "models_src_tree.txt"
    tree = subprocess.run(
        ["git", "rev-parse", "HEAD:src"], capture_output=True, text=True, cwd=ROOT, check=False
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "src"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    ).stdout.strip()
    fresh = bool(tree) and not dirty and marker.exists() and marker.read_text() == tree
    if (work / "mlflow.db").exists() and exp.exists() and fresh:
        return exp
    (work / "mlflow.db").unlink(missing_ok=True)
    shutil.rmtree(work / "mlruns", ignore_errors=True)
    exp.write_text("name: bench_scoring\n")
    code = (
        "import os\n"
        f"os.chdir({str(work)!r})\n"
        f"os.environ['MLFLOW_TRACKING_URI'] = 'sqlite:///{work / 'mlflow.db'}'\n"
        "from segments import make_bank, validate_panel, load_config, train_groups, "
        "train_upgrade, log_groups, log_upgrade\n"
        "from segments.mlops.promotion import promote\n"
        f"raw, _ = make_bank({TRAIN}, 24, seed=1)\n"
        "panel = validate_panel(raw)\n"
        f"cfg = load_config({str(exp)!r})\n"
        "for r in (log_groups(train_groups(panel, cfg), panel),\n"
        "          log_upgrade(train_upgrade(panel, cfg), panel)):\n"
        "    promote(r.registered_model, r.model_version, config=cfg)\n"
        "elapsed = 0.0\n"
    )
    run_step(code, 1)
    marker.write_text(tree)
    return exp


def _score_code(
    work: Path,
    exp: Path,
    panel: Path,
    out: Path,
    engine: str,
    batch: int,
    master: str = "",
    workers: int | None = None,
    track: bool = True,
) -> str:
    # What `segments score` runs: the job and, with ``track``, its MLflow scoring run.
    job = (
        "prepare_scoring(panel, month, out, scorer, overwrite=True).with_options("
        f"batch_customers={batch}, options={{'workers': {workers!r}}})"
    )
    local = f"run_scoring({job}, cfg)" if track else f"execute({job})"
    call = (
        local
        if engine == "local"
        else f"score_spark(panel, month, out, scorer, master={master!r}, overwrite=True)"
    )
    return (
        "import os\n"
        f"os.chdir({str(work)!r})\n"
        f"os.environ['MLFLOW_TRACKING_URI'] = 'sqlite:///{work / 'mlflow.db'}'\n"
        "from segments import load_config\n"
        "from segments.jobs.score import load_scorer, last_month, validate_output\n"
        "from segments.jobs.score import execute, prepare_scoring, run_scoring\n"
        "from segments.engines.spark import score_spark\n"
        "import pyarrow.parquet as pq, pyarrow.compute as pc\n"
        f"panel, out = {str(panel)!r}, {str(out)!r}\n"
        f"cfg = load_config({str(exp)!r})\n"
        "scorer = load_scorer(cfg)\n"
        "month = last_month(panel)\n"
        "t = time.perf_counter()\n"
        f"res = {call}\n"
        "elapsed = time.perf_counter() - t\n"
        # The job's peaks, taken before the checks below read anything.
        f"job_peak, job_tree = ({PEAK_MIB}), max(_tree_peak[0], _tree_rss())\n"
        "job_pss = max(_tree_peak[1], _tree_pss())\n"
        "job_child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024\n"
        "m = validate_output(out)\n"
        "active = 0\n"
        "for b in pq.ParquetFile(panel).iter_batches(columns=['month']):\n"
        "    months = b.column(0)\n"
        "    same = pc.equal(pc.strftime(months, format='%Y-%m'), month)\n"
        "    active += int(pc.sum(same).as_py() or 0)\n"
        "assert m['rows'] == active, (m['rows'], active)\n"
        "extra = {'rows': m['rows'], 'scored_upgrade': m['scored_upgrade'],\n"
        "         'job_peak': job_peak, 'job_tree': job_tree, 'job_child': job_child,\n"
        "         'job_pss': job_pss,\n"
        "         'batches': m['batches'], 'timings': m['timings_s'], 'engine': m['engine']}\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-customers", type=int, default=ScoringConfig.batch_customers)
    parser.add_argument("--workers", type=int, default=None, help="default: one per core")
    parser.add_argument("--max-baseline", type=int, default=1_000_000)
    parser.add_argument("--no-spark", action="store_true", help="ignored: see bench_spark.py")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="segments-bench-scoring-"))
    work = work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    exp = _prepare(work)
    rows = []
    for n in args.sizes:
        panel = bank(work, n, args.months) / "panel.parquet"
        if n <= args.max_baseline:
            base = run_step(
                "import pandas as pd\nt = time.perf_counter()\n"
                f"df = pd.read_parquet({str(panel)!r})\n"
                "elapsed = time.perf_counter() - t\n"
                "extra = {'rows': int((df['month'] == df['month'].max()).sum()),\n"
                "         'panel_rows': len(df)}\n",
                args.repeats,
            )
            rows.append((n, "baseline: pd.read_parquet of the whole panel", base, None))
        local = run_step(
            _score_code(
                work,
                exp,
                panel,
                work / f"out_{n}",
                "local",
                args.batch_customers,
                workers=args.workers,
            ),
            args.repeats,
        )
        rows.append(
            (
                n,
                f"segments score, {local['extra'].get('engine', 'local')}, "
                f"{args.batch_customers:,} per batch",
                local,
                base if n <= args.max_baseline else None,
            )
        )

    lines = [
        f"## Batch scoring ({', '.join(f'{n:,}' for n in args.sizes)} customers x "
        f"{args.months} months)",
        "",
        f"Machine: {machine()}.",
        "",
        f"Command: `{command()}`",
        "",
        f"Models trained on a {TRAIN:,}-customer bank (default config), promoted, loaded by "
        "alias. The last month of each bank is scored: tiers, groups, upgrade probability, "
        "band ranks, expected gain, 3 reason codes in English and Chinese, drift counts, "
        "and the job's MLflow scoring run (what `segments score` runs). "
        f"Median of {args.repeats} (min / max), each in a fresh process. Peak memory is the "
        "machine's: the resident memory of the job and its worker processes added up, "
        "sampled every 50 ms (the highest of the runs); PSS is the same sum with each "
        "shared page (the libraries' code each process maps) counted once, divided among the "
        "processes: what the machine spends. The next column gives the job "
        "process's own maximum (VmHWM) and the largest child process's (the workers). "
        "customers/s counts the customers active in the scored month, for the baseline "
        "too. Each run's output is checked (one row per active customer, documented "
        "schema). Stage times are the last run's.",
        "",
        "| customers | step | median s | min / max s | customers/s | peak MiB (all processes) "
        "| peak PSS MiB (all processes) | job / largest child process MiB | peak vs. baseline "
        "| scored (near-tier) | stage times (s) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for n, step, r, base in rows:
        extra = r["extra"]
        if "job_peak" in extra:  # the job's own peaks, before the step's checks
            r = {
                **r,
                "peak_mib": max(e["job_peak"] for e in r["extras"]),
                "tree_peak_mib": max(e["job_tree"] for e in r["extras"]),
                "tree_pss_mib": max(e["job_pss"] for e in r["extras"]),
                "child_peak_mib": max(e["job_child"] for e in r["extras"]),
            }
        active = extra.get("rows", n)
        tree = max(r["tree_peak_mib"], r["peak_mib"])
        ratio = f"{tree / base['peak_mib']:.2f}x" if base else "-"
        own = f"{r['peak_mib']:,.0f} / {r['child_peak_mib']:,.0f}"
        t = extra.get("timings", {})
        stages = (
            ", ".join(
                f"{k.removesuffix('_s')} {v:.0f}" for k, v in t.items() if k != "digest_and_plan_s"
            )
            if t
            else "-"
        )
        lines.append(
            f"| {n:,} | {step} | {r['median']:.1f} | {r['min']:.1f} / {r['max']:.1f} | "
            f"{active / r['median']:,.0f} | {tree:,.0f} | {r['tree_pss_mib']:,.0f} | {own} | "
            f"{ratio} | "
            f"{format(extra['scored_upgrade'], ',') if 'scored_upgrade' in extra else '-'} | "
            f"{stages} |"
        )
    write_section("scoring", "\n".join(lines), size_label(*args.sizes))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
