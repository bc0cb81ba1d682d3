"""The registry commands: ``promote``, ``history``, ``ui``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from segments.cli.common import (
    ExperimentOption,
    app,
    err,
    handles_errors,
    out,
    print_frame,
    validated_panel,
)
from segments.core.config.experiment import load_config
from segments.core.config.presets import check_model_name


def _text(value: Any) -> str:
    """A cell for a table: '-' for None, NaN and empty."""
    return "-" if value is None or value != value or value == "" else str(value)


def _print_report(report: Any) -> None:
    checks = Table(title=f"Promotion checks: {report.name} version {report.version}")
    for c in ("check", "result", "detail"):
        checks.add_column(c)
    for r in report.checks.itertuples():
        checks.add_row(r.check, "pass" if r.passed else "FAIL", r.detail)
    out.print(checks)

    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return "-" if v != v else f"{v:,.0f}" if v.is_integer() and abs(v) >= 1 else f"{v:.4f}"
        return str(v)

    print_frame(report.logged, "Challenger vs champion: metrics logged by their training runs", fmt)
    if report.same_months is not None:
        title = (
            "On the challenger's held-out months"
            if report.kind == "upgrade"
            else "On the same customers"
        )
        print_frame(report.same_months, title, fmt)
    for note in report.notes:
        out.print(f"  note: {note}", markup=False)


@app.command()
@handles_errors
def promote(
    model: Annotated[str, typer.Argument(help="Registered model name, e.g. demo-upgrade.")],
    version: Annotated[int | None, typer.Option(help="The version to make champion.")] = None,
    challenger: Annotated[
        bool, typer.Option("--challenger", help="Promote the version aliased challenger.")
    ] = False,
    reason: Annotated[str, typer.Option(help="Why; kept in the audit log.")] = "",
    config: ExperimentOption = None,
    panel: Annotated[
        Path | None,
        typer.Option(
            help="A panel to compare challenger and champion on the same held-out months."
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="Check and compare only; change nothing.")] = False,
) -> None:
    """Move the champion alias to a version after checks; log the evidence and the change."""
    from segments.exceptions import ConfigError, PromotionConflict, PromotionError, Violation
    from segments.mlops.promotion import promote as do_promote
    from segments.mlops.registry import CHALLENGER, aliases

    check_model_name(model, "MODEL")
    if (version is None) == (not challenger):
        raise ConfigError([Violation("--version", "give either --version N or --challenger")])
    if version is None:
        version = aliases(model).get(CHALLENGER)
        if version is None:
            raise ConfigError([Violation("--challenger", f"{model} has no challenger alias")])
    cfg = load_config(config)
    frame = validated_panel(panel, cfg) if panel is not None else None
    try:
        report = do_promote(model, version, reason=reason, config=cfg, panel=frame, dry_run=dry_run)
    except PromotionError as exc:
        if exc.report is not None:
            _print_report(exc.report)
            out.print(f"evidence logged in MLflow run {exc.report.evidence_run_id}")
        if isinstance(exc, PromotionConflict):
            out.print(
                "another change of this model got there first; nothing was changed: "
                f"see segments history {model}"
            )
        raise
    _print_report(report)
    if dry_run:
        bad = report.failed
        out.print(
            "dry run: "
            + (f"{len(bad)} check(s) would fail" if bad else "every check passes")
            + "; nothing changed"
        )
        return
    out.print(
        f"{model}: champion {('v' + report.champion) if report.champion else '(none)'}"
        f" -> v{report.version}; evidence in MLflow run {report.evidence_run_id}"
    )
    out.print(f"load it with models:/{model}@champion")


def _print_audit(check: Any, console: Any) -> None:
    """The verification summary of an audit chain: OK, or each problem on a line."""
    head = (
        f"head seq {check.head_seq}, hash {check.head_hash}"
        if check.head_seq is not None
        else "no chained event yet"
    )
    if check.ok:
        console.print(f"audit chain: OK ({check.chained} chained event(s), {head})", markup=False)
    else:
        console.print(
            f"audit chain: {len(check.problems)} PROBLEM(S) ({check.chained} chained "
            f"event(s) in the registry, {head})",
            markup=False,
        )
    for p in check.problems:
        console.print(f"  {p.kind}: {p.detail}", markup=False)
    for note in check.notes:
        console.print(f"  note: {note}", markup=False)


def _refuse_broken(check: Any, verify: bool) -> None:
    """With ``--verify``, a problem in the audit chain is an error (exit 1)."""
    from segments.exceptions import RegistryError

    if verify and not check.ok:
        raise RegistryError(
            f"the audit trail of {check.name} failed verification: "
            f"{len(check.problems)} problem(s), listed above"
        )


@app.command()
@handles_errors
def history(
    model: Annotated[str, typer.Argument(help="Registered model name.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the events as JSON.")] = False,
    verify: Annotated[
        bool,
        typer.Option(
            "--verify", help="Exit 1 when the audit chain shows a problem (0 when intact)."
        ),
    ] = False,
) -> None:
    """Print the audit log of a model's alias changes (who, when, from, to, why) and verify
    its hash chain, its copies on the runs and the current aliases."""
    import pandas as pd

    from segments.mlops.audit_verify import check_audit
    from segments.mlops.registry import aliases
    from segments.mlops.registry import history as read_history

    check_model_name(model, "MODEL")
    events = read_history(model)
    check = check_audit(model)
    if as_json:
        out.print(events.to_json(orient="records", indent=2), markup=False)
        if check.problems or check.notes:  # stdout stays JSON
            _print_audit(check, err)
        _refuse_broken(check, verify)
        return
    table = Table(title=f"Alias history of {model}")
    for c in (
        "#",
        "seq",
        "when (UTC)",
        "by",
        "event",
        "alias",
        "from",
        "to",
        "reason",
        "AUC / ARI",
        "evidence run",
    ):
        table.add_column(c)
    for n, r in events.iterrows():
        m = r["metrics"] or {}
        key = m.get("model.roc_auc", m.get("stability_ari_mean"))
        table.add_row(
            str(n),
            "legacy" if pd.isna(r["seq"]) else str(r["seq"]),
            str(r["at"])[:19].replace("T", " "),
            str(r["by"]),
            str(r["event"]),
            str(r["alias"]),
            _text(r["from_version"]),
            _text(r["to_version"]),
            _text(r["reason"]),
            "-" if key is None else f"{key:.3f}",
            _text(r["evidence_run_id"]),
        )
    out.print(table)
    now = aliases(model)
    out.print(
        "aliases now: " + (", ".join(f"{a} -> v{v}" for a, v in sorted(now.items())) or "none")
    )
    _print_audit(check, out)
    _refuse_broken(check, verify)


@app.command()
@handles_errors
def ui(
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to serve on.")] = 5000,
    host: Annotated[
        str, typer.Option(help="Interface to bind; the default serves this machine only.")
    ] = "127.0.0.1",
    workers: Annotated[int, typer.Option(min=1, help="Server worker processes.")] = 1,
) -> None:
    """Start the MLflow UI on the project's tracking store; once it answers, print where
    each segments experiment's runs and the model registry open. SIGTERM or Ctrl-C stops
    the whole server."""
    import os

    from segments.cli.serve import browse_host, check_port, serve
    from segments.mlops import ui_app
    from segments.mlops.review import landing_urls
    from segments.mlops.tracking import tracking_uri

    uri = tracking_uri()
    if uri.startswith(("http://", "https://", "databricks")):
        out.print(f"the tracking store is a server: open {uri} in a browser")
        for label, url in [] if uri.startswith("databricks") else landing_urls([], uri):
            out.print(f"  {label}: {url}", markup=False)
        return
    if host not in ("127.0.0.1", "localhost", "::1"):
        err.print(f"warning: binding the UI to {host} serves it beyond this machine", markup=False)
    check_port(host, port)
    base = f"http://{browse_host(host)}:{port}"
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri]
    cmd += ["--host", host, "--port", str(port), "--workers", str(workers)]
    if ui_app.installed():  # the page that opens the UI on "Model training"
        cmd += ["--app-name", ui_app.APP_NAME]
        landing = base + ui_app.LANDING_PATH.rstrip("/")
    else:
        err.print(
            "warning: segments is installed without its MLflow app (reinstall it): the "
            "UI opens on GenAI after the first click; choose 'Model training' in its sidebar",
            markup=False,
        )
        landing = base
    pages = landing_urls(_review_experiments(uri), landing)
    out.print(f"MLflow UI for {uri}: starting on {host}:{port} (Ctrl-C stops it)", markup=False)

    def ready() -> None:
        (first, url), *rest = pages
        out.print(f"ready: {url}  ({first})", markup=False)
        for label, url in rest:
            out.print(f"  {label}: {url}", markup=False)

    code = serve(
        cmd,
        env,
        f"{base}/health",
        ready,
        on_slow=lambda s: err.print(f"still waiting for the server after {s:.0f} s"),
    )
    import signal

    # The server's code as its watchdog returns it: 128 + the signal that ended it.
    if code not in (0, 128 + signal.SIGTERM, 128 + signal.SIGINT):
        raise typer.Exit(code)
    out.print("MLflow UI stopped", markup=False)


def _review_experiments(uri: str) -> list[Any]:
    """The segments experiments of a local store, marked for review (model-training kind,
    description); none, with a warning, when the store cannot be read."""
    from segments.mlops.review import review_experiments
    from segments.mlops.tracking import mlflow_module

    try:
        return review_experiments(uri)
    except mlflow_module().exceptions.MlflowException as exc:
        err.print(f"warning: could not list the experiments of {uri}: {exc}", markup=False)
        return []
