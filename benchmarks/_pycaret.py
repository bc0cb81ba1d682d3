"""Helpers for the comparisons with PyCaret: its own virtualenv and the extra options.

PyCaret 3.3 needs older pandas, NumPy, SciPy and scikit-learn than ``segments`` does, so it
lives in a separate virtualenv made from ``benchmarks/pycaret-requirements.txt`` (exact pins)
the first time a comparison runs; its steps run with that venv's interpreter and exchange
data with this one through Parquet and ``.npy`` files.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from _report import ROOT, run_step

REQUIREMENTS = Path(__file__).resolve().parent / "pycaret-requirements.txt"
DEFAULT_PYTHON = ROOT / "build" / "pycaret-venv" / "bin" / "python"

#: Code run inside a PyCaret step: the peak resident memory of the process *and* its
#: children (joblib workers) as ``tree_peak_mib()``, from the tree sampler every step runs
#: (:data:`_report.TREE_SAMPLER`, the highest RSS sum so far).
TREE_PEAK = """
def tree_peak_mib():
    _tree_peak[0] = max(_tree_peak[0], _tree_rss())
    return _tree_peak[0]
"""


def pycaret_parser(doc: str) -> argparse.ArgumentParser:
    """The PyCaret comparisons' own options (add more, then :func:`parse`).

    Options: ``--repeats`` (default 5, passed on), ``--pycaret-repeats`` (PyCaret's own
    steps; default: ``--repeats``, fewer when PyCaret takes minutes per run at large
    sizes: the table shows each row's count), ``--no-write`` (print, leave BENCHMARKS.md
    alone), ``--pycaret-python PATH`` (the PyCaret venv's interpreter; the venv is made
    there from the requirements file if it is missing).
    """
    parser = argparse.ArgumentParser(description=doc.split("\n")[0], add_help=False)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--pycaret-repeats", type=int, default=None)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--pycaret-python", type=Path, default=DEFAULT_PYTHON)
    return parser


def parse(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """Parse this script's own options; hand the rest (and ``--repeats``) to ``bench_args``."""
    own, rest = parser.parse_known_args()
    if own.pycaret_repeats is None:
        own.pycaret_repeats = own.repeats
    sys.argv = [sys.argv[0], *rest, "--repeats", str(own.repeats)]
    return own


def ensure_pycaret(python: Path, work: Path) -> str:
    """Make the PyCaret venv at ``python``'s location if needed; return PyCaret's version.

    PyCaret logs to ``logs.log`` in the working folder from the moment it is imported; this
    sends its log to ``work / "pycaret-logs.log"`` instead (for the steps run afterwards).
    """
    os.environ["PYCARET_CUSTOM_LOGGING_PATH"] = str(Path(work).absolute() / "pycaret-logs.log")
    python = Path(python).absolute()
    check = [str(python), "-c", "import pycaret, psutil, pyarrow; print(pycaret.__version__)"]
    if python.exists():
        proc = subprocess.run(check, capture_output=True, text=True, check=False)
        if proc.returncode == 0:
            return proc.stdout.strip()
    else:
        venv = python.parent.parent
        print(f"creating the PyCaret venv in {venv} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "-r", str(REQUIREMENTS)], check=True
    )
    return subprocess.run(check, capture_output=True, text=True, check=True).stdout.strip()


def run_pycaret_step(code: str, repeats: int, python: Path) -> dict:
    """:func:`_report.run_step` for a PyCaret step: ``code`` runs after :data:`TREE_PEAK`
    and must put ``tree_peak_mib()`` in ``extra``; the peak reported is the process tree's
    (joblib workers included), the largest over the runs."""
    r = run_step(TREE_PEAK + code, repeats, python=python)
    r["peak_mib"] = max(r["peak_mib"], max(e["tree_peak_mib"] for e in r["extras"]))
    return r
