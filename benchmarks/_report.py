"""Shared helpers for benchmark scripts: timing in subprocesses, machine facts, BENCHMARKS.md."""

from __future__ import annotations

import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS_MD = ROOT / "BENCHMARKS.md"


#: Python expression, evaluated in a child, for its own peak resident memory in MiB: the
#: high-water mark of its address space (``VmHWM``). Not ``ru_maxrss``: Linux carries the
#: launching process's high-water mark over into a child across ``fork``/``exec``, so a
#: child started by a large parent would report the parent's peak.
PEAK_MIB = (
    "int(next(x for x in open('/proc/self/status') if x.startswith('VmHWM')).split()[1]) / 1024"
    " if __import__('os').path.exists('/proc/self/status') else "
    "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024"
)

#: Code run first in every step: a thread that samples, every 50 ms, the resident memory
#: of the step's process and all its descendants (worker processes) added up, and keeps the
#: highest sum in ``_tree_peak[0]`` (MiB). A sample can miss a peak between two samples;
#: each process's own high-water mark bounds it from above (``child_peak_mib`` is the
#: largest child's). The sum of RSS counts the pages processes share (the libraries' code,
#: mapped once) in each of them; ``_tree_peak[1]`` is the highest sum of PSS (each shared
#: page divided among the processes mapping it): the memory the machine spends on them.
TREE_SAMPLER = """
import os as _os, threading as _threading
_tree_peak = [0.0, 0.0]
def _tree(field="VmRSS", file="status"):
    todo, total = [_os.getpid()], 0
    while todo:
        pid = todo.pop()
        try:
            for line in open(f"/proc/{pid}/{file}"):
                if line.startswith(field + ":"):
                    total += int(line.split()[1])
                    break
            for task in _os.listdir(f"/proc/{pid}/task"):
                todo += [int(c) for c in open(f"/proc/{pid}/task/{task}/children").read().split()]
        except OSError:
            pass
    return total / 1024
def _tree_rss():
    return _tree()
def _tree_pss():
    return _tree("Pss", "smaps_rollup")
def _sample_tree():
    while True:
        _tree_peak[0] = max(_tree_peak[0], _tree_rss())
        _tree_peak[1] = max(_tree_peak[1], _tree_pss())
        time.sleep(0.05)
if _os.path.exists("/proc/self/status"):
    _threading.Thread(target=_sample_tree, daemon=True).start()
"""

#: The command line as given, before any script rewrites ``sys.argv``.
ARGV = list(sys.argv)


def command() -> str:
    """The command that ran this benchmark, as one copy-pasteable line."""
    script = Path(ARGV[0]).resolve()
    if script.is_relative_to(ROOT):
        script = script.relative_to(ROOT)
    return shlex.join(["python", str(script), *ARGV[1:]])


def bank(work: Path, customers: int, months: int, seed: int = 0) -> Path:
    """The synthetic bank for these options under ``work`` (``bank_<customers>x<months>``),
    written in a subprocess if missing, and checked to be the one asked for."""
    folder = Path(work) / f"bank_{customers}x{months}"
    meta = folder / "_bank.json"
    if not (folder / "panel.parquet").exists():
        subprocess.run(
            [
                sys.executable,
                "-c",
                "from segments import write_bank\n"
                f"write_bank({str(folder)!r}, {customers}, {months}, seed={seed})",
            ],
            check=True,
            cwd=ROOT,
        )
    if not meta.exists():
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        n = pq.ParquetFile(folder / "truth.parquet").metadata.num_rows
        got = len(pc.unique(pq.read_table(folder / "panel.parquet", columns=["month"]).column(0)))
        meta.write_text(json.dumps({"customers": n, "months": got, "seed": seed}))
    info = json.loads(meta.read_text())
    want = {"customers": customers, "months": months, "seed": seed}
    if info != want:
        raise RuntimeError(f"{folder} holds a bank {info}, not {want}: remove it")
    return folder


def run_step(code: str, repeats: int, python: str | Path | None = None) -> dict:
    """Run ``code`` in a fresh interpreter ``repeats`` times.

    The code must set ``elapsed`` (seconds) and may set ``extra`` (a dict). Peak resident
    memory is the child's own high-water mark (:data:`PEAK_MIB`), so each step's peak is
    its own. ``python`` is the interpreter to run (default: this one, ``sys.executable``),
    e.g. another tool's venv. Each run's ``extra`` is kept in ``extras``.
    """
    wrapper = (
        "import json, resource, time\n"
        f"{TREE_SAMPLER}\n"
        "extra = {}\n"
        f"{code}\n"
        f"peak = ({PEAK_MIB})\n"
        "_tree_peak[0] = max(_tree_peak[0], _tree_rss())\n"
        "_tree_peak[1] = max(_tree_peak[1], _tree_pss())\n"
        "children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024\n"
        "print('RESULT ' + json.dumps({'elapsed': elapsed, 'peak_mib': peak,\n"
        "      'tree_peak_mib': _tree_peak[0], 'tree_pss_mib': _tree_peak[1],\n"
        "      'child_peak_mib': children, 'extra': extra}))\n"
    )
    runs = []
    for _ in range(repeats):
        proc = subprocess.run(
            [str(python or sys.executable), "-c", wrapper],
            capture_output=True,
            text=True,
            check=False,
            cwd=ROOT,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"benchmark step failed:\n{proc.stderr}")
        line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
        runs.append(json.loads(line[len("RESULT ") :]))
    times = [r["elapsed"] for r in runs]
    return {
        "median": statistics.median(times),
        "min": min(times),
        "max": max(times),
        "peak_mib": max(r["peak_mib"] for r in runs),
        "tree_peak_mib": max(r["tree_peak_mib"] for r in runs),
        "tree_pss_mib": max(r["tree_pss_mib"] for r in runs),
        "child_peak_mib": max(r["child_peak_mib"] for r in runs),
        "extra": runs[-1]["extra"],
        "extras": [r["extra"] for r in runs],
        "n": len(times),
    }


def bench_args(doc: str, prefix: str, customers: int = 1_000_000):
    """The common options (--customers, --months, --repeats, --workdir), parsed, and the
    working folder (a new temporary one unless given)."""
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--customers", type=int, default=customers)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix=f"segments-bench-{prefix}-"))
    return args, work


def machine() -> str:
    """One paragraph on the machine and the versions that produced the figures."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(
            next(
                x
                for x in Path("/proc/meminfo").read_text().splitlines()
                if x.startswith("MemTotal")
            ).split()[1]
        )
        mem = f", {kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, StopIteration):
        pass
    versions = ", ".join(
        f"{p} {metadata.version(p)}"
        for p in (
            "segments",
            "numpy",
            "pandas",
            "pyarrow",
            "scikit-learn",
            "lightgbm",
            "shap",
            "mlflow",
            "pyspark",
        )
        if _installed(p)
    )
    sha = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "src"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    ).stdout.strip()
    commit = f" (commit {sha}{', src modified' if dirty else ''})" if sha else ""
    return (
        f"{os.cpu_count()} cores ({cpu}){mem}; Python {platform.python_version()} on "
        f"{platform.system()}; {versions}{commit}"
    )


def _installed(name: str) -> bool:
    try:
        metadata.version(name)
    except metadata.PackageNotFoundError:
        return False
    return True


def size_label(*sizes: int) -> str:
    """A short label for benchmark sizes: ``20000`` -> ``20k``, ``(100000, 1000000)`` ->
    ``100k+1M``."""

    def one(n: int) -> str:
        for div, unit in ((1_000_000, "M"), (1_000, "k")):
            if n >= div and n % div == 0:
                return f"{n // div}{unit}"
        return str(n)

    return "+".join(one(n) for n in sizes)


def write_section(name: str, body: str, size: str) -> None:
    """Replace this script's section for this size in BENCHMARKS.md (between markers),
    keeping the rest.

    Sections are keyed by ``name@size`` so that a run at one size (``make bench`` at 20k)
    does not replace the figures measured at another (1M). A new size goes after the
    script's other sizes; a new script goes at the end.
    """
    key = f"{name}@{size}"
    start, end = f"<!-- bench:{key} -->", f"<!-- /bench:{key} -->"
    text = (
        BENCHMARKS_MD.read_text()
        if BENCHMARKS_MD.exists()
        else (
            "# Benchmarks\n\nFigures measured by the scripts in `benchmarks/`; each section says "
            "the machine and the command that produced it. Medians over repeated runs, each in a "
            "fresh process; peak memory is the process's maximum resident set.\n"
        )
    )
    block = f"{start}\n{body.rstrip()}\n{end}"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        _, tail = rest.split(end, 1)
        text = head + block + tail
    else:
        siblings = list(re.finditer(rf"<!-- /bench:{re.escape(name)}@[^ ]+ -->", text))
        if siblings:
            cut = siblings[-1].end()
            text = text[:cut] + "\n\n" + block + text[cut:]
        else:
            text = text.rstrip() + "\n\n" + block + "\n"
    tmp = BENCHMARKS_MD.with_suffix(".md.tmp")
    tmp.write_text(text)
    tmp.replace(BENCHMARKS_MD)
