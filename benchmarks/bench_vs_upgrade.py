"""Benchmark the upgrade model against PyCaret 3's ``compare_models`` on the same split.

Each step runs in a fresh process, ``--repeats`` times (median, min / max, peak resident
memory), on the synthetic bank:

* segments, end to end: ``train_upgrade(panel, load_config(--config))`` on a
  validated panel (labels and features for every as-of month, the out-of-time split, the
  LightGBM model with early stopping and Platt calibration on the validation months, both
  baselines, evaluation, exact SHAP reason codes for the test rows, the call list);
* segments, the model alone: ``UpgradeModel(...).fit`` on the training rows (validation rows
  as ``eval_set``) and ``predict_proba`` on the test rows, from the rows ``train_upgrade``
  built (saved to Parquet by the first step): the like-for-like row for PyCaret;
* PyCaret 3 (its own venv, see ``_pycaret.py``): ``setup(train + validation rows,
  target="label", test_data=<the same out-of-time test rows>, session_id=0)``,
  ``compare_models(sort="AUC")`` (PyCaret's default sort is Accuracy; everything else is
  the default: ``turbo=True``, 10-fold stratified cross-validation, no model excluded,
  ``n_jobs=-1``), ``predict_model`` of the best model on the test rows. Same 49 features,
  same rows, same test months. Its timer starts from the rows in memory: labels and
  features are given to it for free. Above ``--pycaret-max`` training rows PyCaret is not
  run and the table says so;
* PyCaret 3, one model: the same ``setup`` + ``create_model("lightgbm")`` (its defaults,
  cross-validated, then fitted on every training row) + ``predict_model``: PyCaret's
  like-for-like single gradient-boosted model.

Peak memory for the PyCaret steps is the process tree's (joblib workers included).

AUC is the out-of-time ROC AUC on the test months, computed with scikit-learn from each
system's probabilities. The script asserts that every system scored the same test rows,
that PyCaret trained on the same number of rows as segments' training + validation rows,
that the model alone reproduces ``train_upgrade``'s AUC (within 0.005) and that every AUC is
at least 0.75 (the rule of thumb reaches about 0.88), so a broken run cannot look fast.

Usage::

    python benchmarks/bench_vs_upgrade.py --customers 100000 --months 24 --repeats 5

Options beyond ``bench_args``'s (``--customers`` default 100000, ``--months``,
``--workdir``): ``--repeats`` (default 5), ``--no-write`` (print only),
``--pycaret-python PATH`` (default ``build/pycaret-venv/bin/python``, made from
``benchmarks/pycaret-requirements.txt`` if missing), ``--config``
(``experiments/demo.yaml``), ``--fold`` (PyCaret's folds, default its own 10),
``--pycaret-max`` (training rows, default 400000).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _pycaret import ensure_pycaret, parse, pycaret_parser, run_pycaret_step
from _report import ROOT, bank, bench_args, command, machine, run_step, size_label, write_section

E2E_CODE = """
import json
from sklearn.metrics import roc_auc_score
from segments import load_config, read_panel, train_upgrade, validate_panel
panel = validate_panel(read_panel({panel!r}))
cfg = load_config({config!r})
t = time.perf_counter()
r = train_upgrade(panel, cfg)
elapsed = time.perf_counter() - t
c = r.comparison()
part = {{m: 'embargo' for m in r.split['refit']}}
part.update({{m: k for k in ('train', 'valid', 'test') for m in r.split[k]}})
d = r.data[[*r.model.features_, 'label', 'as_of']].copy()
d['part'] = d['as_of'].map(part)
d = d[d['part'].notna()]
d.to_parquet({rows!r})
json.dump({{'features': r.model.features_, 'split': r.split}}, open({meta!r}, 'w'))
auc = float(roc_auc_score(r.test['label'], r.test['p_model']))
assert abs(auc - c.loc['roc_auc', 'model']) < 1e-9, (auc, c.loc['roc_auc', 'model'])
extra = {{'auc': {{k: float(c.loc['roc_auc', k]) for k in c.columns}},
         'rows': {{k: int(v) for k, v in d['part'].value_counts().items()}},
         'n_test': len(r.test), 'best_iteration': int(r.model.best_iteration_),
         'kind': r.model.kind_, 'blend': r.model.blend_weight_,
         'ece': {{str(k): float(v) for k, v in
                 r.by_month[r.by_month['model'] == 'model'].set_index('as_of')['ece'].items()}},
         'features': len(r.model.features_), 'split': r.split}}
"""

FIT_CODE = """
import json
import pandas as pd
from sklearn.metrics import roc_auc_score
from segments import load_config
from segments.core.upgrade.model import UpgradeModel
d = pd.read_parquet({rows!r})
meta = json.load(open({meta!r}))
cfg = load_config({config!r})
train, valid, test = (d[d['part'] == k] for k in ('train', 'valid', 'test'))
refit = d[d['part'] != 'test']
t = time.perf_counter()
m = UpgradeModel(meta['features'], **dict(cfg.upgrade.model)).fit(
    train, train['label'], eval_set=(valid, valid['label']),
    refit_on=(refit, refit['label']))
p = m.predict_proba(test)[:, 1]
elapsed = time.perf_counter() - t
extra = {{'auc': float(roc_auc_score(test['label'], p)), 'n_test': len(test),
         'best_iteration': int(m.best_iteration_)}}
"""

#: A PyCaret step: the same rows and setup, then ``{fit}`` (which sets ``model``, ``board``
#: and ``more``, extra figures), then predictions on the out-of-time test rows.
PC_CODE = """
import json, warnings
warnings.filterwarnings('ignore')
import pandas as pd, pycaret
from pycaret.classification import (compare_models, create_model, get_config, predict_model,
                                    pull, setup)
from sklearn.metrics import roc_auc_score
d = pd.read_parquet({rows!r})
features = json.load(open({meta!r}))['features']
fit_rows = d[d['part'] != 'test'][[*features, 'label']]
test = d[d['part'] == 'test'][[*features, 'label']]
t = time.perf_counter()
setup(data=fit_rows, target='label', test_data=test, session_id=0, verbose=False,
      html=False{setup_kwargs})
{fit}
n_fit = len(get_config('X_train'))
pred = predict_model(model, data=test.drop(columns='label'), raw_score=True, verbose=False)
elapsed = time.perf_counter() - t
assert pred.index.equals(test.index)
extra = {{'auc': float(roc_auc_score(test['label'], pred['prediction_score_1'])),
         'n_test': len(pred), 'n_fit': n_fit, 'pycaret': pycaret.__version__,
         'tree_peak_mib': tree_peak_mib(), **more}}
"""

COMPARE_FIT = """model = compare_models(sort='AUC', verbose=False)
board = pull()
more = {'best': str(board['Model'].iloc[0]), 'cv_auc': float(board['AUC'].iloc[0]),
        'n_models': len(board),
        'board': [[str(r['Model']), float(r['AUC']), float(r['TT (Sec)'])]
                  for _, r in board.iterrows()]}"""

LGBM_FIT = """model = create_model('lightgbm', verbose=False)
board = pull()
more = {'cv_auc': float(board.loc['Mean', 'AUC'])}"""


def main() -> None:
    parser = pycaret_parser(__doc__)
    parser.add_argument("--config", default=str(ROOT / "experiments" / "demo.yaml"))
    parser.add_argument("--fold", type=int, default=None)
    parser.add_argument("--pycaret-max", type=int, default=400_000)
    opts = parse(parser)
    args, work = bench_args(__doc__, "vs-upgrade", customers=100_000)
    n, m = args.customers, args.months
    panel = bank(work, n, m) / "panel.parquet"
    rows, meta = work / "upgrade_rows.pq", work / "upgrade_meta.json"
    paths = {"panel": str(panel), "config": str(opts.config), "rows": str(rows), "meta": str(meta)}

    e2e = run_step(E2E_CODE.format(**paths), args.repeats)
    fit = run_step(FIT_CODE.format(**paths), args.repeats)
    ex = e2e["extra"]
    n_fit = sum(v for k, v in ex["rows"].items() if k != "test")  # train + embargo + valid
    pc, pc_lgbm, version = None, None, "not run"
    if n_fit <= opts.pycaret_max:
        version = ensure_pycaret(opts.pycaret_python, work)
        setup_kwargs = "" if opts.fold is None else f", fold={opts.fold}"
        pc, pc_lgbm = (
            run_pycaret_step(
                PC_CODE.format(**paths, setup_kwargs=setup_kwargs, fit=fit),
                opts.pycaret_repeats,
                opts.pycaret_python,
            )
            for fit in (COMPARE_FIT, LGBM_FIT)
        )

    # Sanity: the same test rows everywhere, the model alone is train_upgrade's model, and
    # nothing scores like a coin.
    assert fit["extra"]["n_test"] == ex["n_test"] == ex["rows"]["test"]
    assert abs(fit["extra"]["auc"] - ex["auc"]["model"]) < 0.005, (fit["extra"], ex["auc"])
    aucs = [*ex["auc"].values(), fit["extra"]["auc"]]
    for r in (pc, pc_lgbm):
        if r is not None:
            assert r["extra"]["n_test"] == ex["n_test"], (r["extra"]["n_test"], ex["n_test"])
            assert r["extra"]["n_fit"] == n_fit, (r["extra"]["n_fit"], n_fit)
            aucs.append(r["extra"]["auc"])
    assert min(aucs) >= 0.75, aucs

    def line(name: str, r: dict | None, auc: float | None, note: str) -> str:
        a = "-" if auc is None else f"{auc:.4f}"
        if r is None:
            return f"| {name} | - | - | - | - | {a} | - | {note} |"
        return (
            f"| {name} | {r['n']} | {r['median']:.1f} | {r['min']:.1f} / {r['max']:.1f} | "
            f"{r['peak_mib']:,.0f} | {a} | {r['median'] / fit['median']:.2f}x | {note} |"
        )

    if pc is None:
        skipped = f"not run: {n_fit:,} training rows (limit `--pycaret-max` {opts.pycaret_max:,})"
        pc_line = line(
            "PyCaret: setup + compare_models(sort='AUC') + predict_model", None, None, skipped
        )
        lgbm_line = line(
            "PyCaret: setup + create_model('lightgbm') + predict_model", None, None, skipped
        )
    else:
        px = pc["extra"]
        top = "; ".join(f"{b[0]} {b[1]:.4f} ({b[2]:.1f} s)" for b in px["board"][:5])
        folds = opts.fold or 10
        pc_line = line(
            "PyCaret: setup + compare_models(sort='AUC') + predict_model",
            pc,
            px["auc"],
            f"best: {px['best']} (CV AUC {px['cv_auc']:.4f}) of {px['n_models']} models, "
            f"{folds}-fold CV on train + embargo + validation rows; top 5 by CV AUC (mean fit s): "
            f"{top}",
        )
        lx = pc_lgbm["extra"]
        lgbm_line = line(
            "PyCaret: setup + create_model('lightgbm') + predict_model",
            pc_lgbm,
            lx["auc"],
            f"the like-for-like single model: PyCaret's LightGBM defaults, {folds}-fold CV "
            f"(CV AUC {lx['cv_auc']:.4f}), then a fit on train + embargo + validation rows",
        )
    split = ex["split"]
    chosen = set(split["train"]) | set(split["valid"])
    embargo = [mo for mo in split["refit"] if mo not in chosen]
    winner = ex["kind"] if ex["kind"] != "blend" else f"blend ({ex['blend']:.2f} trees)"
    ece = ", ".join(f"{k} {v:.3f}" for k, v in ex["ece"].items())
    lr, gbm = ex["auc"]["logistic"], ex["auc"]["model"]
    gbm_vs_lr = (
        f" At this size the logistic regression baseline ({lr:.4f}) is above the "
        f"gradient-boosted model ({gbm:.4f}) out of time."
        if lr > gbm
        else ""
    )
    body = "\n".join(
        [
            f"## Upgrade model vs. PyCaret ({n:,} customers x {m} months)",
            "",
            f"Machine: {machine()}; PyCaret {version} in its own venv "
            "(`benchmarks/pycaret-requirements.txt`).",
            "",
            f"Command: `{command()}`",
            "",
            f"Config `{Path(opts.config).name}`. Out-of-time split by as-of month: train "
            f"{split['train'][0]}..{split['train'][-1]} ({ex['rows']['train']:,} rows), "
            f"embargo {', '.join(embargo) or 'none'} ({ex['rows'].get('embargo', 0):,}), "
            f"validation {', '.join(split['valid'])} ({ex['rows']['valid']:,}), test "
            f"{', '.join(split['test'])} ({ex['rows']['test']:,}); {ex['features']} features. "
            "segments fits its candidates on the training months, chooses (and calibrates) on "
            "the validation months, then refits the winner on train + embargo + validation "
            "months and predicts the test months; PyCaret is given those same refit rows and "
            "cross-validates and fits on them, with its default stratified folds, so one "
            "customer's months fall in both training and validation folds (its CV AUC runs "
            "above the out-of-time AUC). The logistic baseline is fitted on the same refit "
            "rows. AUC: ROC AUC on the test months; ECE per test month is the expected "
            "calibration error of segments' probabilities in that month. Times in seconds: "
            "median (min / max) of the row's runs, each in a fresh "
            "process; peak MiB is the process's own maximum resident set (VmHWM; for PyCaret, "
            "the process tree with its joblib workers, sampled every 0.2 s). "
            "compare_models fits 14 model types with cross-validation and "
            "`UpgradeModel` a few candidates and two refits: the last column says how long "
            "each took, not that the same "
            f"work was done faster.{gbm_vs_lr}",
            "",
            "| system | runs | median s | min / max s | peak MiB | OOT AUC | time ÷ UpgradeModel "
            "fit | note |",
            "|---|---|---|---|---|---|---|---|",
            line(
                "segments: train_upgrade (end to end)",
                e2e,
                ex["auc"]["model"],
                "labels + features for every as-of month, model selection, the evaluated "
                "refit, both baselines, evaluation, exact SHAP reason codes for the test rows, "
                f"call list, the deployed refit on every labelled month; winner {winner}; "
                f"ECE per test month {ece}",
            ),
            line(
                "segments: UpgradeModel fit + predict",
                fit,
                fit["extra"]["auc"],
                "the same rows as PyCaret: candidates fitted on train, chosen and calibrated "
                "on validation, the winner refitted on train + embargo + validation; "
                f"{fit['extra']['best_iteration']} trees",
            ),
            line(
                "rule of thumb (inside train_upgrade)", None, ex["auc"]["rule_of_thumb"], "baseline"
            ),
            line(
                "logistic regression (inside train_upgrade)",
                None,
                ex["auc"]["logistic"],
                "baseline",
            ),
            pc_line,
            lgbm_line,
        ]
    )
    if not opts.no_write:
        write_section("vs-upgrade", body, size_label(n))
    print(body)


if __name__ == "__main__":
    main()
