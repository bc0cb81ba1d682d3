"""Point-in-time features: hand-computed values, no leakage, a complete catalogue, and
features declared once (docs/features.md)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from segments import FEATURE_CATALOGUE, build_features, catalogue_frame, validate_panel
from segments.core import features
from segments.core.explain.reasons import reason_sentence
from segments.core.features import feature_spec, is_log_scale
from segments.exceptions import ConfigError, PanelValidationError

DOC = Path(__file__).resolve().parents[2] / "docs" / "features.md"


def tiny() -> pd.DataFrame:
    months = [str(m) for m in pd.period_range("2024-01", periods=8, freq="M")]
    aum = [100.0, 100.0, 100.0, 100.0, 100.0, 200.0, 300.0, 400.0]
    rows = {
        "customer_id": ["A"] * 8 + ["B"] * 2,
        "month": months + months[-2:],
        "aum": [*aum, 50.0, 50.0],
        "dep_demand": [a / 2 for a in aum] + [50.0, 50.0],
        "wealth_products": [0.0] * 5 + [100.0, 150.0, 200.0] + [0.0, 0.0],
        "funds": [a / 2 for a in aum[:5]] + [0.0, 0.0, 0.0] + [0.0, 0.0],
        "payroll_inflow": [1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0],
        "txn_count": [5, 0, 0, 3, 0, 0, 0, 0, 1, 1],
        "app_logins": [2] * 8 + [0, 0],
        "branch_visits": [0] * 8 + [1, 1],
        "rm_contacts": [0] * 8 + [1, 1],
        "card_spend": [10.0] * 8 + [0.0, 0.0],
        "card_limit": [100.0] * 8 + [0.0, 0.0],
        "age": [30] * 8 + [70, 70],
    }
    return validate_panel(pd.DataFrame(rows))


def test_hand_computed_features():
    X = build_features(tiny(), "2024-08", windows=(3, 6))
    a, b = X.loc["A"], X.loc["B"]
    assert a["aum"] == 400.0
    assert a["aum_avg_3m"] == pytest.approx(300.0)
    assert a["aum_avg_6m"] == pytest.approx((100 * 3 + 200 + 300 + 400) / 6)
    assert a["aum_growth_3m"] == pytest.approx(401 / 101 - 1)  # vs 2024-05
    assert a["aum_growth_6m"] == pytest.approx(401 / 101 - 1)  # vs 2024-02
    assert a["wealth_share"] == pytest.approx(0.5)
    assert a["fund_share"] == pytest.approx(0.0)
    assert a["investment_share"] == pytest.approx(0.5)
    assert a["wealth_share_change_6m"] == pytest.approx(0.5)  # 0 in 2024-02
    assert a["payroll_regularity_6m"] == pytest.approx(5 / 6)  # Mar..Aug: 1,1,0,1,1,1
    assert a["months_since_txn"] == 4  # last transactions in 2024-04
    assert a["digital_share_6m"] == pytest.approx(1.0)
    assert a["card_utilisation_3m"] == pytest.approx(0.1)
    assert a["age"] == 30 and a["age_band"] == "30-44"
    # B has two months: no 3-month growth, a slope needs 3 points.
    assert np.isnan(b["aum_growth_3m"]) and np.isnan(b["aum_slope_6m"])
    assert b["months_observed"] == 2
    assert b["digital_share_6m"] == pytest.approx(0.0)
    assert b["card_utilisation_3m"] == 0.0  # no card
    assert b["age_band"] == "60+"
    # The slope of log AUM over the last 6 months, by hand.
    y = np.log1p([100, 100, 100, 200, 300, 400])
    assert a["aum_slope_6m"] == pytest.approx(np.polyfit(np.arange(6), y, 1)[0])


def test_no_leakage_from_months_after_as_of(small_panel):
    as_of = pd.Period("2025-03", "M")
    X = build_features(small_panel, as_of)
    later = small_panel["month"] > as_of
    altered = small_panel.copy()
    rng = np.random.default_rng(0)
    for col in altered.select_dtypes("number").columns:
        altered.loc[later, col] = rng.uniform(0, 1e6, later.sum()).astype(altered[col].dtype)
    pd.testing.assert_frame_equal(X, build_features(altered, as_of))
    # ... and dropping those months altogether changes nothing either.
    pd.testing.assert_frame_equal(X, build_features(small_panel[~later], as_of))


def test_changing_the_as_of_month_itself_does_change_features(small_panel):
    as_of = pd.Period("2025-03", "M")
    X = build_features(small_panel, as_of)
    altered = small_panel.copy()
    altered.loc[altered["month"] == as_of, "aum"] *= 2
    assert not X["aum"].equals(build_features(altered, as_of)["aum"])


def test_active_only_and_missing_columns():
    X = build_features(tiny(), "2024-06")
    assert list(X.index) == ["A"]  # B has no row in 2024-06
    Y = build_features(tiny(), "2024-06", active_only=False)
    assert list(Y.index) == ["A"]  # B is not seen at all by 2024-06
    minimal = validate_panel(
        pd.DataFrame(
            {"customer_id": ["A", "A"], "month": ["2024-01", "2024-02"], "aum": [1.0, 2.0]}
        )
    )
    M = build_features(minimal)
    assert "wealth_share" not in M.columns and "aum_avg_3m" in M.columns


def test_every_feature_is_in_the_catalogue_with_both_languages(small_panel):
    X = build_features(small_panel)
    catalogue = catalogue_frame()
    assert set(X.columns) <= set(catalogue["name"])
    for name in X.columns:
        spec = FEATURE_CATALOGUE[name]
        assert spec.en and spec.zh and spec.unit and spec.family
        if spec.window > 1 and spec.unit not in ("category", "months"):
            assert any(tok in name for tok in ("_3m", "_6m", "_12m")), name
    assert feature_spec("aum_avg_9m", windows=(3, 9)).window == 9
    with pytest.raises(ConfigError):
        feature_spec("no_such_feature")


def test_bad_windows_and_unvalidated_panel():
    with pytest.raises(ConfigError, match=r"features\.windows"):
        build_features(tiny(), windows=(1,))
    with pytest.raises(PanelValidationError, match="validate_panel"):
        build_features(pd.DataFrame({"customer_id": ["A"], "month": ["2024-01"], "aum": [1.0]}))
    with pytest.raises(PanelValidationError, match="no rows at or before 2023-01"):
        build_features(tiny(), "2023-01")


def doc_example() -> str:
    """The worked example of docs/features.md: the Python block declaring the new feature."""
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    found = [b for b in blocks if '"salary_months_share_12m"' in b]
    assert len(found) == 1, "docs/features.md should hold one block declaring the example"
    return found[0]


@contextmanager
def declared(code: str) -> Iterator[None]:
    """Run declarations as catalogue.py would, and remove whatever they added afterwards."""
    before = {d.name for d in features.declarations()}
    namespace = {name: getattr(features, name) for name in features.__all__} | {"np": np}
    try:
        exec(code, namespace)
        yield
    finally:
        for d in features.declarations():
            if d.name not in before:
                features.unregister(d.name)


def test_a_declared_feature_is_built_described_and_then_removed():
    name = "salary_months_share_12m"
    plain, catalogue = build_features(tiny(), "2024-08", windows=(3, 6)), catalogue_frame()
    wide = build_features(tiny(), "2024-08", windows=(3, 6, 12))
    with declared(doc_example()):
        from segments.core.features.registry import not_built

        # Not built with windows up to 6: its own window (12) is longer; nothing is added.
        short = build_features(tiny(), "2024-08", windows=(3, 6))
        assert name in not_built((3, 6)) and name not in short.columns
        pd.testing.assert_frame_equal(short, plain)
        X = build_features(tiny(), "2024-08", windows=(3, 6, 12))
        # Built last (after the packaged features).
        assert X.attrs["windows"] == [3, 6, 12]
        assert list(X.columns) == [*wide.columns, name]
        pd.testing.assert_frame_equal(X.drop(columns=name), wide)
        assert X.loc["A", name] == pytest.approx(6 / 8)  # payroll 1,0,1,1,0,1,1,1
        assert X.loc["B", name] == 0.0
        # ... described wherever the catalogue is read ...
        row = catalogue_frame().set_index("name").loc[name]
        assert (row["family"], row["unit"], row["window"]) == ("flows", "share", 12)
        assert row["sources"] == ("payroll_inflow",)
        assert FEATURE_CATALOGUE[name].zh == "近12个月有代发工资入账的月份占比"
        assert feature_spec(name, windows=(3, 6, 12)).window == 12
        assert not is_log_scale(name)
        assert reason_sentence(name, 0.75, 0.2) == (
            "Share of the last 12 months with a salary inflow is 75%, "
            "which raises the chance of reaching the next tier"
        )
        # ... and not built without its source column.
        assert name not in build_features(tiny().drop(columns="payroll_inflow")).columns
    assert name not in FEATURE_CATALOGUE
    pd.testing.assert_frame_equal(catalogue_frame(), catalogue)
    pd.testing.assert_frame_equal(build_features(tiny(), "2024-08", windows=(3, 6)), plain)


PER_WINDOW_MAX = """
@feature("aum_max_{w}m", "aum_level", "money", en="highest AUM over the last {w} months",
         zh="近{w}个月最高资产", sources=("aum",), window=PER_WINDOW)
def _aum_max(h, w):
    return np.nanmax(np.where(np.isnan(h.aum[:, :w]), -np.inf, h.aum[:, :w]), axis=1)
"""


def test_per_window_declarations_give_one_column_per_window_listed_window_by_window():
    names = list(catalogue_frame()["name"])
    assert names[:7] == [
        "aum",
        *("aum_avg_3m", "aum_growth_3m", "aum_avg_6m", "aum_growth_6m"),
        *("aum_avg_12m", "aum_growth_12m"),
    ]
    with declared(PER_WINDOW_MAX):
        X = build_features(tiny(), "2024-08", windows=(3, 6))
        assert list(X.columns[-2:]) == ["aum_max_3m", "aum_max_6m"]
        assert X.loc["A", "aum_max_3m"] == 400.0 and X.loc["B", "aum_max_6m"] == 50.0
        assert feature_spec("aum_max_9m", windows=(3, 9)).en == "highest AUM over the last 9 months"
    assert "aum_max_3m" not in set(catalogue_frame()["name"])


def test_a_feature_built_from_any_of_its_sources():
    # bond_metal_share needs bonds or precious metals, not both (a missing one counts as 0).
    panel = tiny().assign(bonds=20.0)
    X = build_features(panel, "2024-08", windows=(3, 6))
    assert X.loc["A", "bond_metal_share"] == pytest.approx(20 / 400)
    assert X.loc["B", "bond_metal_share"] == pytest.approx(20 / 50)
    assert "bond_metal_share" not in build_features(tiny(), "2024-08").columns


def test_a_bad_declaration_is_refused_and_changes_nothing():
    catalogue = catalogue_frame()
    with (
        pytest.raises(ConfigError, match="declared twice"),
        declared(PER_WINDOW_MAX.replace("aum_max_{w}m", "aum_avg_{w}m")),
    ):
        pass
    with (
        pytest.raises(ConfigError, match="has unit 'euros'"),
        declared(PER_WINDOW_MAX.replace('"money"', '"euros"')),
    ):
        pass
    with pytest.raises(ConfigError, match="not a declared feature"):
        features.unregister("aum_max_{w}m")
    pd.testing.assert_frame_equal(catalogue_frame(), catalogue)


def test_log_scale_holds_for_any_window_not_only_the_default_ones():
    """Windows (3, 9): aum_avg_9m is money like aum_avg_6m and goes on a log scale in
    groups and the logistic baseline (it used to be known only at the default windows)."""
    from segments.core.features import catalogue_frame, is_log_scale

    assert is_log_scale("aum_avg_6m") and is_log_scale("aum_avg_9m")
    assert not is_log_scale("demand_deposit_share") and not is_log_scale("aum_avg_9")
    frame = catalogue_frame((3, 9)).set_index("name")
    per_window = [n for n in frame.index if n.endswith("_9m")]
    assert per_window, "windows (3, 9) make 9-month features"
    at_six = {n.replace("_9m", "_6m") for n in per_window}
    assert [is_log_scale(n) for n in per_window] == [
        is_log_scale(n.replace("_9m", "_6m")) for n in per_window
    ]
    assert any(is_log_scale(n) for n in at_six)


def test_windows_are_what_the_config_says():
    """Nothing is added to short windows: the features whose own window is longer than the
    longest window are not built, and the catalogue for those windows agrees."""
    from segments.core.features.builder import check_windows
    from segments.core.features.registry import not_built

    assert check_windows([4, 2, 3]) == (2, 3, 4)
    lost = not_built((2, 3, 4))
    assert "aum_slope_6m" in lost and not not_built((3, 6, 12))
    X = build_features(tiny(), "2024-08", windows=(2, 3, 4))
    assert not set(lost) & set(X.columns)
    assert not any(c.endswith(("_6m", "_12m")) for c in X.columns)
    assert set(X.columns) <= set(catalogue_frame((2, 3, 4))["name"])
    assert X.attrs["windows"] == [2, 3, 4]


def test_features_longer_than_the_history_are_not_built():
    from segments.core.features.builder import beyond_history

    assert beyond_history((3, 6, 12), 24, "2025-12") == ([], [])
    names, notes = beyond_history((3, 6, 12), 8, "2024-08")
    assert "aum_avg_12m" in names and "aum_vol_12m" in names  # the longest window's too
    assert not any(n.endswith(("_3m", "_6m")) for n in names)
    assert "months_observed" not in names  # all the history held: kept
    assert len(notes) == 1 and "longer than the 8 month(s) of history up to 2024-08" in notes[0]
    names, notes = beyond_history((3, 6), 5, "2024-05")
    assert "aum_slope_6m" in names and "aum_avg_6m" in names
    names, notes = beyond_history((2, 3), 5, "2024-05")
    assert names == [] and "aum_slope_6m" in notes[0]  # not built with windows up to 3
    with pytest.raises(ConfigError, match=r"--as-of.*2 month\(s\).*shortest feature window"):
        beyond_history((3, 6), 2, "2024-02")
