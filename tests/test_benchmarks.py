"""The benchmark scaffolding: size labels, BENCHMARKS.md sections keyed by size, run_step."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import _report


@pytest.mark.parametrize(
    ("sizes", "label"),
    [
        ((20_000,), "20k"),
        ((100_000, 1_000_000), "100k+1M"),
        ((10_000_000,), "10M"),
        ((2_500,), "2500"),
        ((1_234,), "1234"),
    ],
)
def test_size_label(sizes, label):
    assert _report.size_label(*sizes) == label


def test_sections_are_keyed_by_size(tmp_path, monkeypatch):
    md = tmp_path / "BENCHMARKS.md"
    monkeypatch.setattr(_report, "BENCHMARKS_MD", md)
    _report.write_section("scoring", "## scoring 1M\nfirst", "1M")
    _report.write_section("vs-groups", "## vs 20k", "20k")
    _report.write_section("scoring", "## scoring 20k", "20k")
    _report.write_section("scoring", "## scoring 1M\nsecond", "1M")
    text = md.read_text()
    assert text.startswith("# Benchmarks")
    # The 1M section was replaced in place, the 20k one went after it (before the next
    # script's section), and nothing else was touched.
    assert "first" not in text and text.count("second") == 1
    order = [
        text.index(s)
        for s in (
            "<!-- bench:scoring@1M -->",
            "<!-- bench:scoring@20k -->",
            "<!-- bench:vs-groups@20k -->",
        )
    ]
    assert order == sorted(order)
    assert text.count("<!-- bench:") == 3 and text.count("<!-- /bench:") == 3
    assert not list(tmp_path.glob("*.tmp"))


def test_run_step_reports_median_min_max_and_extra():
    code = "import os\nelapsed = float(len(os.environ.get('X', 'ab')))\nextra = {'n': 3}\n"
    res = _report.run_step(code, repeats=3)
    peak = res.pop("peak_mib")
    tree, child = res.pop("tree_peak_mib"), res.pop("child_peak_mib")
    pss = res.pop("tree_pss_mib")
    assert res == {
        "median": 2.0,
        "min": 2.0,
        "max": 2.0,
        "extra": {"n": 3},
        "extras": [{"n": 3}] * 3,
        "n": 3,
    }
    # The child's own high-water mark (VmHWM): a bare interpreter, tens of MiB.
    assert 1 < peak < 200
    assert 1 < tree < 200 and child == 0  # no process of its own
    assert 1 < pss <= tree  # shared library pages count in part


def test_the_tree_peak_counts_the_worker_processes_memory():
    """A step whose subprocess holds 300 MiB for a second: the job's own peak misses it,
    the sampled peak of the process tree and the largest child's peak do not."""
    hold = "import time; b = b'x' * (300 * 2**20); time.sleep(1)"
    code = (
        f"import subprocess, sys\nsubprocess.run([sys.executable, '-c', {hold!r}])\nelapsed = 1.0\n"
    )
    res = _report.run_step(code, repeats=1)
    assert res["peak_mib"] < 200
    assert res["tree_peak_mib"] > res["peak_mib"] + 250
    assert res["child_peak_mib"] > 300


def test_the_tree_pss_counts_pages_shared_by_processes_once():
    """A forked child shares its parent's 300 MiB (copy on write, untouched): the sum of
    RSS counts them twice, the sum of PSS once."""
    code = (
        "import os, time\nb = b'x' * (300 * 2**20)\npid = os.fork()\n"
        "if pid == 0:\n    time.sleep(1.5)\n    os._exit(0)\n"
        "time.sleep(1.5)\nos.waitpid(pid, 0)\nelapsed = 1.0\n"
    )
    res = _report.run_step(code, repeats=1)
    assert res["tree_peak_mib"] > 600
    assert 300 < res["tree_pss_mib"] < 400


def test_run_step_raises_with_the_child_error():
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        _report.run_step("elapsed = 1 / 0\n", repeats=1)
