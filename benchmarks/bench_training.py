"""Benchmark training at scale: ``segments train groups`` + ``segments train upgrade`` end to end.

Each command runs as a user runs it (the CLI, in a fresh process, ``--repeats`` times) on a
synthetic bank's Parquet panel, with the packaged default configuration: the panel is
validated and its features, tiers and labelled rows built in batches of whole customers on
every core; the groups (k on evidence, stability, profiles, names, surrogate, migration) and
the upgrade model (LightGBM, both baselines, out-of-time evaluation, exact SHAP reason codes
for every test row, call list) are fitted on stratified samples above ``groups.fit_size``
and ``upgrade.fit_size``; everything is logged to a real MLflow store (SQLite) and
registered. Peak memory is the machine's: the job and its worker processes, sampled every
50 ms.

The baseline, measured in the same run (``--baseline-repeats``, 0 to skip), is the
in-memory path a notebook takes: the whole panel read and validated into one frame, then
the same trainings on the frame (the same code per customer), fitted on everyone
(``fit_size: null``).

Checks before any figure is written: the groups recover the planted personas (adjusted Rand
index >= 0.85 against ``truth.parquet``), and the upgrade model beats the rule of thumb out
of time (ROC AUC).

Usage::

    python benchmarks/bench_training.py --customers 1000000 --months 24 --repeats 3 \\
        --workdir build/bench/training
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import bank, bench_args, command, machine, run_step, size_label, write_section

#: Runs both trainings through the CLI, timing each; the store is the workdir's.
NEW = """
import os
os.environ["MLFLOW_TRACKING_URI"] = "sqlite:///{store}"
from segments.cli import app
from segments.mlops.tracking import mlflow_module
times = {{}}
for kind, more in (("groups", ["--reference", {truth!r}]), ("upgrade", [])):
    t = time.perf_counter()
    try:
        app(["train", kind, "--panel", {panel!r}, "--config", {config!r}, *more],
            standalone_mode=False)
    except SystemExit as exc:
        if exc.code:
            raise
    times[kind] = time.perf_counter() - t
elapsed = sum(times.values())
client = mlflow_module().MlflowClient()
exp = client.get_experiment_by_name("bench_training")
runs = client.search_runs([exp.experiment_id], order_by=["attributes.start_time DESC"],
                          max_results=2)
got = {{r.data.tags["segments.model_kind"]: r for r in runs}}
extra = {{"times": times,
          "groups": {{k: v for k, v in got["groups"].data.params.items() if "fit_" in k}},
          "upgrade": {{k: v for k, v in got["upgrade"].data.params.items() if "fit_" in k}},
          "n_groups": got["groups"].data.metrics["n_groups"],
          "ari": got["groups"].data.metrics["reference_ari"],
          "groups_run": got["groups"].info.run_id,
          "upgrade_run": got["upgrade"].info.run_id,
          "auc": got["upgrade"].data.metrics.get("model.roc_auc"),
          "auc_rule": got["upgrade"].data.metrics.get("rule_of_thumb.roc_auc")}}
"""

#: The in-memory path: the whole panel in one frame, fitted on everyone.
OLD = """
import os
os.environ["MLFLOW_TRACKING_URI"] = "sqlite:///{store}"
from segments import load_config, log_groups, log_upgrade, read_panel, train_groups
from segments import train_upgrade, validate_panel
cfg = load_config({config!r}, overrides={{"groups": {{"fit_size": None}},
                                        "upgrade": {{"fit_size": None}}}})
times = {{}}
t = time.perf_counter()
panel = validate_panel(read_panel({panel!r}))
times["read+validate"] = time.perf_counter() - t
t = time.perf_counter()
log_groups(train_groups(panel, cfg))
times["groups"] = time.perf_counter() - t
t = time.perf_counter()
log_upgrade(train_upgrade(panel, cfg))
times["upgrade"] = time.perf_counter() - t
elapsed = sum(times.values())
extra = {{"times": times}}
"""


def _check(result: dict) -> None:
    """The planted personas recovered and the model above the rule of thumb, else stop."""
    extra = result["extra"]
    if extra["ari"] < 0.85:
        raise SystemExit(f"the groups do not recover the planted personas: {extra}")
    if not (extra["auc"] and extra["auc_rule"] and extra["auc"] > extra["auc_rule"]):
        raise SystemExit(f"the upgrade model does not beat the rule of thumb: {extra}")


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--baseline-repeats", type=int, default=1)
    known, rest = parser.parse_known_args()
    sys.argv = [sys.argv[0], *rest]
    args, work = bench_args(__doc__, "training")
    n, m = args.customers, args.months
    folder = bank(work, n, m)
    panel, truth = folder / "panel.parquet", folder / "truth.parquet"
    config = work / "bench_training.yaml"
    config.write_text("name: bench_training\n")
    store = work / "mlflow.db"
    new = run_step(
        NEW.format(store=store, panel=str(panel), truth=str(truth), config=str(config)),
        args.repeats,
    )
    _check(new)
    old = None
    if known.baseline_repeats:
        old = run_step(
            OLD.format(store=store, panel=str(panel), config=str(config)),
            known.baseline_repeats,
        )
    _write(new, old, n, m)


def _peak(result: dict) -> float:
    """Peak memory of all processes: the sampled process tree, or the job process's own
    maximum when the sampling missed its spike."""
    return max(result["tree_peak_mib"], result["peak_mib"])


def _write(new: dict, old: dict | None, n: int, m: int) -> None:
    e = new["extra"]
    g, u = e["groups"], e["upgrade"]
    times = [x["times"] for x in new["extras"]]
    med = {k: sorted(t[k] for t in times)[len(times) // 2] for k in times[0]}
    rows = [
        "| path | runs | seconds: median (min / max) | groups s | upgrade s | peak MiB "
        "(all processes) | job process MiB |",
        "|---|---|---|---|---|---|---|",
        f"| segments (batched, stratified fit samples) | {new['n']} | {new['median']:.1f} "
        f"({new['min']:.1f} / {new['max']:.1f}) | {med['groups']:.1f} | {med['upgrade']:.1f} | "
        f"{_peak(new):,.0f} | {new['peak_mib']:,.0f} |",
    ]
    ratio = ""
    if old is not None:
        ot = old["extra"]["times"]
        rows.append(
            f"| in memory: the whole panel in one frame, fit on everyone | {old['n']} | "
            f"{old['median']:.1f} ({old['min']:.1f} / {old['max']:.1f}) | "
            f"{ot['groups']:.1f} | {ot['upgrade']:.1f} | {_peak(old):,.0f} | "
            f"{old['peak_mib']:,.0f} |"
        )
        ratio = (
            f"\n\nThe batched path takes {new['median'] / old['median']:.2f}x the time of the "
            f"in-memory path (its read + validate of the whole panel: "
            f"{ot['read+validate']:.1f} s), "
            f"at {_peak(new) / _peak(old):.2f}x its peak memory."
        )
    body = (
        f"Machine: {machine()}.\n\nCommand: `{command()}`\n\n"
        f"`segments train groups` then `segments train upgrade` on a {n:,}-customer x {m}-"
        "month synthetic panel (Parquet), default configuration, logged to a SQLite MLflow "
        "store and registered; each in a fresh process. Groups fitted on "
        f"{int(g['groups.fit_rows']):,} of {int(g['groups.fit_of']):,} customers "
        f"(stratified by {g['groups.fit_strata'] or 'nothing: everyone'}), "
        f"{int(e['n_groups'])} groups; the upgrade model on {int(u['upgrade.fit_rows']):,} of "
        f"{int(u['upgrade.fit_of']):,} training rows (stratified by "
        f"{u['upgrade.fit_strata'] or 'nothing: every row'}), out-of-time ROC AUC "
        f"{e['auc']:.4f} against the rule of thumb's {e['auc_rule']:.4f}"
        + f"; groups against the planted personas: adjusted Rand index {e['ari']:.3f}.\n\n"
        + "\n".join(rows)
        + ratio
        + "\n"
    )
    write_section("training", body, size_label(n))


if __name__ == "__main__":
    main()
