"""Run every benchmark at one size, one after another, and record how long each took.

This is what ``make bench`` runs. Each script writes its own section of BENCHMARKS.md; this
one adds a section ``make-bench@<size>`` with the wall time of every script and the total,
so the claim that the whole set fits the time budget is itself measured.

Usage::

    python benchmarks/run_all.py --customers 20000 --repeats 5 --slow-repeats 3 \\
        --workdir build/bench
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import ROOT, command, machine, size_label, write_section


def plan(n: int, repeats: int, slow: int, work: Path) -> list[list[str]]:
    """The scripts and their options, in run order."""
    r = ["--repeats", str(repeats)]
    return [
        ["bench_foundation.py", "--customers", str(n), *r, "--workdir", str(work / "foundation")],
        ["bench_checks.py", "--customers", str(n), *r, "--workdir", str(work / "foundation")],
        ["bench_engines.py", "--customers", str(n), *r, "--workdir", str(work / "engines")],
        ["bench_groups.py", "--customers", str(n), *r, "--workdir", str(work / "groups")],
        ["bench_explain.py", "--customers", str(n), "--rows", str(n), *r],
        [
            "bench_scoring.py",
            "--sizes",
            str(n),
            *r,
            "--workdir",
            str(work / "scoring"),
        ],
        [
            "bench_spark.py",
            "--customers",
            str(n),
            "--repeats",
            str(slow),
            "--workdir",
            str(work / "scoring"),
        ],
        ["bench_vs_scoring.py", "--customers", str(n), *r, "--workdir", str(work / "scoring")],
        ["bench_vs_groups.py", "--customers", str(n), *r, "--workdir", str(work / "vs")],
        [
            "bench_vs_upgrade.py",
            "--customers",
            str(n),
            *r,
            "--pycaret-repeats",
            str(slow),
            "--fold",
            "3",
            "--workdir",
            str(work / "vs"),
        ],
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--slow-repeats",
        type=int,
        default=3,
        help="runs of PyCaret compare_models and of each Spark master",
    )
    parser.add_argument("--workdir", type=Path, default=ROOT / "build" / "bench")
    parser.add_argument("--budget-min", type=float, default=30.0)
    args = parser.parse_args()
    here = Path(__file__).resolve().parent
    times: list[tuple[str, float]] = []
    start = time.perf_counter()
    for script, *opts in plan(args.customers, args.repeats, args.slow_repeats, args.workdir):
        print(f"== {script} {' '.join(opts)}", flush=True)
        t = time.perf_counter()
        subprocess.run([sys.executable, str(here / script), *opts], check=True, cwd=ROOT)
        times.append((f"`{script} {' '.join(opts)}`", time.perf_counter() - t))
    total = time.perf_counter() - start
    verdict = "within" if total <= args.budget_min * 60 else "OVER"
    lines = [
        f"## `make bench`: every script at {args.customers:,} customers",
        "",
        f"Machine: {machine()}.",
        "",
        f"Command: `{command()}` (what `make bench` runs)",
        "",
        f"Total wall time {total / 60:.1f} min, {verdict} the {args.budget_min:.0f}-minute "
        "budget (the PyCaret venv already built; building it once adds about a minute). "
        "One run of each script, in this order:",
        "",
        "| script and options | wall time (min) |",
        "|---|---|",
        *(f"| {name} | {sec / 60:.1f} |" for name, sec in times),
        f"| total | {total / 60:.1f} |",
    ]
    write_section("make-bench", "\n".join(lines), size_label(args.customers))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
