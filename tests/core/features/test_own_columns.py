"""A bank's own panel columns declared as features (``features.columns``): the names and
values built, the checks at load time, validation, and registration that does not leak."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
import yaml

from segments import build_features, load_config, validate_panel
from segments.core.config.sections import FeaturesConfig
from segments.core.explain.reasons import reason_sentence
from segments.core.features import (
    FEATURE_CATALOGUE,
    OwnColumn,
    active_columns,
    catalogue_frame,
    declarations,
    describe,
    feature,
    is_log_scale,
    own_features,
    unregister,
)
from segments.exceptions import ConfigError, PanelValidationError
from segments.jobs.features import features_from_file

pytestmark = pytest.mark.filterwarnings("ignore:.*has gaps:UserWarning")

CARD = {
    "column": "card_bal",
    "kind": "numeric",
    "unit": "money",
    "aggregations": ["last", "mean", "min", "max", "trend", "share_above"],
    "above": 100,
    "en": "credit card balance",
    "zh": "信用卡余额",
}
GRADE = {
    "column": "risk_grade",
    "kind": "ordinal",
    "order": ["A", "B", "C", "D"],
    "aggregations": ["last", "worst", "months_in"],
    "state": "D",
    "en": "internal risk grade",
    "zh": "内部风险等级",
}
CHANNEL = {
    "column": "channel",
    "kind": "categorical",
    "aggregations": ["last", "months_in"],
    "state": ["app", "web"],
    "en": "main channel",
    "zh": "主要渠道",
}
SPECS = [CARD, GRADE, CHANNEL]


def _columns(*specs: dict, windows=(2, 3)) -> tuple[OwnColumn, ...]:
    return FeaturesConfig(windows=windows, columns=list(specs)).columns


def _panel() -> pd.DataFrame:
    """Two customers over four months (2024-01..04); B misses 2024-02."""
    return pd.DataFrame(
        {
            "customer_id": ["A"] * 4 + ["B"] * 3,
            "month": ["2024-01", "2024-02", "2024-03", "2024-04", "2024-01", "2024-03", "2024-04"],
            "aum": [10_000.0] * 7,
            "card_bal": [50.0, 200.0, -20.0, 300.0, 1_000.0, 1_000.0, 400.0],
            "risk_grade": ["A", "D", "B", "C", "B", "D", "D"],
            "channel": ["app", "branch", "web", "branch", "web", None, "app"],
        }
    )


def test_names_values_and_texts_of_every_aggregation():
    """Hand-computed values on a 3-month window (as of 2024-04), with a missing month."""
    with own_features(_columns(*SPECS)):
        X = build_features(validate_panel(_panel()), "2024-04", windows=(2, 3))
        spec = FEATURE_CATALOGUE["card_bal_mean_3m"]
        texts = (spec.en, spec.zh, spec.unit, spec.family, spec.sources)
        worst = FEATURE_CATALOGUE["risk_grade_worst_3m"]
    a, b = X.loc["A"], X.loc["B"]
    # A: months 04, 03, 02 -> 300, -20, 200; B: 04, 03 -> 400, 1000 (02 missing).
    assert a["card_bal_last"] == 300.0
    assert a["card_bal_mean_3m"] == pytest.approx(160.0)
    assert (a["card_bal_min_3m"], a["card_bal_max_3m"]) == (-20.0, 300.0)
    assert a["card_bal_share_above_3m"] == pytest.approx(2 / 3)
    assert b["card_bal_share_above_3m"] == 1.0  # of the two months present
    # Slope over t = -2, -1, 0 of (200, -20, 300): 50 a month, relative to |160| + 1.
    assert a["card_bal_trend_3m"] == pytest.approx(50.0 / 161.0)
    # B: t = -1, 0 of (1000, 400): -600 a month, relative to 700 + 1.
    assert b["card_bal_trend_3m"] == pytest.approx(-600.0 / 701.0)
    assert b["card_bal_trend_2m"] == pytest.approx(-600.0 / 701.0)
    # Ordinal: A's grades 04 C, 03 B, 02 D -> worst D (3); B's 04 D, 03 D.
    assert a["risk_grade_last"] == "C" and list(X["risk_grade_last"].cat.categories) == list("ABCD")
    assert (a["risk_grade_worst_3m"], a["risk_grade_worst_2m"]) == (3.0, 2.0)
    assert (a["risk_grade_months_in_D_3m"], b["risk_grade_months_in_D_3m"]) == (1.0, 2.0)
    # Categorical: A's channels 04 branch, 03 web, 02 branch; B's 04 app, 03 missing.
    assert (a["channel_last"], b["channel_last"]) == ("branch", "app")
    assert a["channel_months_in_app_web_3m"] == 1.0
    assert b["channel_months_in_app_web_3m"] == 1.0
    assert texts == (
        "credit card balance, average over the last 3 months",
        "信用卡余额(近3个月均值)",
        "money",
        "own",
        ("card_bal",),
    )
    assert worst.unit == "count" and "position in A, B, C, D; 0 = best" in worst.en
    own = [c for c in X.columns if c.startswith(("card_bal", "risk_grade", "channel"))]
    assert own == [
        "card_bal_last",
        *[
            f"card_bal_{a}_{w}m"
            for w in (2, 3)
            for a in ("mean", "min", "max", "trend", "share_above")
        ],
        "risk_grade_last",
        *[f"risk_grade_{a}_{w}m" for w in (2, 3) for a in ("worst", "months_in_D")],
        "channel_last",
        *[f"channel_months_in_app_web_{w}m" for w in (2, 3)],
    ]


def test_registration_does_not_leak_and_an_identical_declaration_is_a_no_op():
    """Nested identical blocks add nothing; on exit (an error too) the catalogue is as it
    was; another definition under a taken name is a named ConfigError."""
    before = dict(FEATURE_CATALOGUE)
    n = len(declarations())
    cols = _columns(*SPECS)
    with pytest.raises(RuntimeError), own_features(cols):
        with own_features(_columns(CARD)):  # a job inside a job
            assert active_columns() == cols
        assert "card_bal_mean_3m" in FEATURE_CATALOGUE  # the inner block removed nothing
        changed = _columns({**CARD, "above": 0})
        taken = r"card_bal_share_above_.*another definition"
        with pytest.raises(ConfigError, match=taken), own_features(changed):
            pass
        raise RuntimeError("a job failing half way")
    assert before == FEATURE_CATALOGUE and len(declarations()) == n
    assert active_columns() == ()
    assert not is_log_scale("card_bal_mean_3m")


def test_specs_travel_to_another_process_as_they_are():
    """What a worker receives (pickled specs) declares the very same features."""
    cols = _columns(*SPECS)
    again = pickle.loads(pickle.dumps(cols))
    assert again == cols
    assert [d for c in again for d in c.declarations()] == [
        d for c in cols for d in c.declarations()
    ]
    assert OwnColumn.from_mapping(cols[1].as_dict()) == cols[1]  # as logged, read back


def test_a_spawned_worker_builds_them(tmp_path):
    """features_from_file in two spawned worker processes (which register the specs they
    receive) gives what build_features gives on the whole panel."""
    from segments import make_bank

    raw, _ = make_bank(400, 8, seed=5)
    rng = np.random.default_rng(0)
    raw["card_bal"] = rng.normal(500, 300, len(raw)).round(2)
    raw["risk_grade"] = rng.choice(list("ABCD"), len(raw))
    raw["channel"] = rng.choice(["app", "web", "branch"], len(raw))
    path = tmp_path / "panel.parquet"
    raw.to_parquet(path)
    cols = _columns(*SPECS)
    got = features_from_file(
        path, "2024-08", windows=(2, 3), columns=cols, batch_customers=150, workers=2
    )
    with own_features(cols):
        want = build_features(validate_panel(raw), "2024-08", windows=(2, 3))
    assert "risk_grade_worst_3m" in got and "channel_last" in got
    pd.testing.assert_frame_equal(got, want[got.columns], check_categorical=False)
    assert FEATURE_CATALOGUE.get("card_bal_last") is None


def test_validation_types_them_and_names_what_is_wrong():
    """Numeric -> float (negative allowed), categorical/ordinal -> category; text in a
    numeric column, a state outside the order and a missing column are named errors with
    their counts and examples."""
    with own_features(_columns(*SPECS)):
        panel = validate_panel(_panel())
        assert panel["card_bal"].dtype == "float64"
        assert list(panel["risk_grade"].cat.categories) == list("ABCD")
        assert isinstance(panel["channel"].dtype, pd.CategoricalDtype)
        bad = _panel().astype({"card_bal": object})
        bad.loc[[1, 5], "card_bal"] = "n/a"
        bad.loc[6, "risk_grade"] = "E"
        with pytest.raises(PanelValidationError) as err:
            validate_panel(bad)
        with pytest.raises(PanelValidationError, match="`channel`: is declared in features"):
            validate_panel(_panel().drop(columns="channel"))
    text = str(err.value)
    assert "`card_bal`: has non-numeric values ('n/a'); it must be a number" in text
    assert "(2 rows; e.g. customers A, B)" in text
    assert "`risk_grade`: has values outside its order ('E')" in text
    assert "(1 row; e.g. customers B)" in text
    undeclared = validate_panel(_panel())["risk_grade"]  # carried as read, unused
    assert not isinstance(undeclared.dtype, pd.CategoricalDtype)


def _config_error(tmp_path, columns, **more) -> str:
    path = tmp_path / "exp.yaml"
    path.write_text(
        yaml.safe_dump({"features": {"windows": [3, 6], "columns": columns}, **more}),
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as err:
        load_config(path)
    return str(err.value)


@pytest.mark.parametrize(
    ("change", "setting", "says"),
    [
        ({"kind": "text"}, "[0].kind", "expected one of ('numeric', 'categorical', 'ordinal')"),
        ({"aggregations": ["last", "median"]}, "[0].aggregations", "expected a list of distinct"),
        ({"unit": "euros"}, "[0].unit", "is 'euros'; expected one of"),
        ({"en": None}, "[0].en", "is missing; expected text"),
        ({"zh": ""}, "[0].zh", "is ''; expected text"),
        ({"above": None}, "[0].above", "share_above needs the number"),
        ({"colour": "red"}, "[0].colour", "is not a known option"),
        ({"column": "loan_balance"}, "[0].column", "a contract column"),
        ({"column": "card bal"}, "[0].column", "cannot start a feature name"),
    ],
)
def test_a_bad_numeric_declaration_is_named(tmp_path, change, setting, says):
    spec = {k: v for k, v in {**CARD, **change}.items() if v is not None}
    text = _config_error(tmp_path, [spec])
    assert f"setting `features.columns{setting}`" in text and says in text, text


@pytest.mark.parametrize(
    ("change", "setting", "says"),
    [
        ({"order": None}, "[0].order", "an ordinal column needs its distinct states"),
        ({"state": None}, "[0].state", "months_in needs the state(s) to count"),
        ({"state": "E"}, "[0].state", "not in the order"),
        ({"aggregations": ["last", "mean"]}, "[0].aggregations", "for a ordinal column"),
        ({"unit": "money"}, "[0].unit", "expected one of ('category',)"),
    ],
)
def test_a_bad_ordinal_declaration_is_named(tmp_path, change, setting, says):
    spec = {k: v for k, v in {**GRADE, **change}.items() if v is not None}
    text = _config_error(tmp_path, [spec])
    assert f"setting `features.columns{setting}`" in text and says in text, text


def test_clashes_are_named(tmp_path):
    """A column declared twice, one the column map renames, a name a packaged feature has."""
    text = _config_error(tmp_path, [CARD, GRADE, CARD])
    assert "`features.columns[2].column`: declares `card_bal` again (first at " in text
    assert "features.columns[0])" in text
    text = _config_error(tmp_path, [CARD, GRADE], panel={"column_map": {"risk_grade": "region"}})
    assert "`features.columns[1].column`: is `risk_grade`, which panel.column_map maps" in text

    @feature("card_bal_last", "credit", "money", en="packaged", zh="内置", sources=("aum",))
    def _packaged(h, w):
        return h.now("aum")

    try:
        text = _config_error(tmp_path, [CARD])
    finally:
        unregister("card_bal_last")
    assert "`features.columns[0].column`: gives the feature `card_bal_last`, the name of a " in text


def test_the_loaded_config_logs_them_with_their_defaults(tmp_path):
    path = tmp_path / "exp.yaml"
    minimal = {"column": "score", "en": "behaviour score", "zh": "行为评分"}
    path.write_text(yaml.safe_dump({"features": {"columns": [minimal]}}), encoding="utf-8")
    cfg = load_config(path)
    (col,) = cfg.features.columns
    assert (col.kind, col.unit, col.aggregations, col.family) == (
        "numeric",
        "count",
        ("last", "mean"),
        "own",
    )
    assert cfg.raw["features"]["columns"] == [col.as_dict()]
    assert load_config().features.columns == ()


def test_reason_texts_and_catalogue_for_any_window():
    """Reason sentences and the catalogue read an own feature's text at windows outside
    the default ones (2 months) too, in both languages."""
    with own_features(_columns(CARD)):
        frame = catalogue_frame((2, 3)).set_index("name")
        en = reason_sentence("card_bal_mean_2m", 1234.5, 0.3)
        zh = reason_sentence("card_bal_share_above_2m", 0.5, -0.2, lang="zh")
        assert describe("card_bal_trend_2m").unit == "ratio"
    assert frame.loc["card_bal_max_2m", "zh"] == "信用卡余额(近2个月最高)"
    assert en == (
        "Credit card balance, average over the last 2 months is 1,234, which raises the "
        "chance of reaching the next tier"
    )
    assert zh == "信用卡余额(近2个月高于100的月份占比)为50%，降低升级可能"
    assert describe("card_bal_mean_2m") is None
