"""Benchmark the checks every command runs before any work, against reading the input.

``segments.core.data.panel.inspect_panel(path, months=True)`` is what ``score`` does before it
spools anything: the file's kind, its schema (all parts of a folder), the contract's
columns, the row count and the distinct months; for a CSV also one pass over its bytes for
UTF-8. The baseline, measured in the same run on the same files, is reading the whole
input into Arrow (``pyarrow.parquet.read_table`` / ``pyarrow.csv.read_csv``), the least any
job that reads the panel pays. Each step runs in a fresh process, ``--repeats`` times.

Usage::

    python benchmarks/bench_checks.py --customers 100000 --repeats 3
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import bank, bench_args, command, machine, run_step, size_label, write_section


def _inputs(folder: Path) -> dict[str, Path]:
    """The bank's panel as a Parquet file, a folder of 8 parts, a CSV and a CSV.gz."""
    import pyarrow.csv as pv
    import pyarrow.parquet as pq

    panel = folder / "panel.parquet"
    out = {
        "Parquet file": panel,
        "Parquet folder (8 parts)": folder / "parts",
        "CSV": folder / "panel.csv",
        "CSV.gz": folder / "panel.csv.gz",
    }
    if not out["Parquet folder (8 parts)"].exists():
        table = pq.read_table(panel)
        parts = folder / "parts.tmp"
        parts.mkdir(exist_ok=True)
        step = -(-table.num_rows // 8)
        for i in range(8):
            pq.write_table(table.slice(i * step, step), parts / f"part-{i}.parquet")
        parts.rename(out["Parquet folder (8 parts)"])
    if not out["CSV"].exists():
        table = pq.read_table(panel)
        pv.write_csv(table, folder / "panel.csv.tmp")
        (folder / "panel.csv.tmp").rename(out["CSV"])
    if not out["CSV.gz"].exists():
        import pyarrow as pa

        with pa.CompressedOutputStream(str(folder / "panel.csv.gz.tmp"), "gzip") as sink:
            sink.write(out["CSV"].read_bytes())
        (folder / "panel.csv.gz.tmp").rename(out["CSV.gz"])
    return out


def _read_code(kind: str, path: Path) -> str:
    if kind.startswith("Parquet"):
        if path.is_dir():
            return (
                "import pyarrow.dataset as ds\n"
                f"t = time.perf_counter(); n = ds.dataset({str(path)!r}).to_table().num_rows\n"
                "elapsed = time.perf_counter() - t\nextra = {'rows': n}\n"
            )
        return (
            "import pyarrow.parquet as pq\n"
            f"t = time.perf_counter(); n = pq.read_table({str(path)!r}).num_rows\n"
            "elapsed = time.perf_counter() - t\nextra = {'rows': n}\n"
        )
    return (
        "import pyarrow.csv as pv\n"
        f"t = time.perf_counter(); n = pv.read_csv({str(path)!r}).num_rows\n"
        "elapsed = time.perf_counter() - t\nextra = {'rows': n}\n"
    )


def _check_code(path: Path) -> str:
    return (
        "from segments.core.data.panel import inspect_panel\n"
        f"t = time.perf_counter(); found = inspect_panel({str(path)!r}, months=True)\n"
        "elapsed = time.perf_counter() - t\n"
        "extra = {'rows': found.rows, 'months': len(found.months)}\n"
    )


def main() -> None:
    args, work = bench_args(__doc__, "checks", customers=100_000)
    folder = bank(work, args.customers, args.months)
    rows = []
    for kind, path in _inputs(folder).items():
        check = run_step(_check_code(path), args.repeats)
        read = run_step(_read_code(kind, path), args.repeats)
        if check["extra"]["rows"] != read["extra"]["rows"]:
            raise SystemExit(
                f"{kind}: the checks counted {check['extra']['rows']} rows, the "
                f"read {read['extra']['rows']}"
            )
        if check["extra"]["months"] != args.months:
            raise SystemExit(f"{kind}: {check['extra']['months']} months, not {args.months}")
        size_mb = (
            sum(p.stat().st_size for p in ([path] if path.is_file() else path.glob("*.parquet")))
            / 1e6
        )
        rows.append(
            f"| {kind} | {size_mb:,.0f} MB | {check['median']:.2f} s "
            f"({check['min']:.2f}–{check['max']:.2f}) | {read['median']:.2f} s "
            f"({read['min']:.2f}–{read['max']:.2f}) | "
            f"{check['median'] / read['median']:.2f}x | {check['peak_mib']:,.0f} / "
            f"{read['peak_mib']:,.0f} MiB |"
        )
        print(rows[-1], flush=True)
    body = (
        f"Checks before any work (`inspect_panel(path, months=True)`: kind, schema of every "
        f"part, contract columns, rows, months, UTF-8 for CSV) against reading the whole "
        f"input into Arrow, on {args.customers:,} customers x {args.months} months; median "
        f"of {args.repeats} fresh processes (min–max).\n\n"
        "| input | size | checks | read into Arrow (baseline) | checks / read | peak "
        "memory checks / read |\n|---|---|---|---|---|---|\n"
        + "\n".join(rows)
        + f"\n\n{machine()}\n\nCommand: `{command()}`\n"
    )
    write_section("checks", body, size_label(args.customers))


if __name__ == "__main__":
    main()
