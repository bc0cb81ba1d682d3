"""SHAP scatters draw at most PLOT_POINTS rows, and say so."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from segments.mlops import plots


def _phi(n: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(1)
    values = pd.DataFrame({"aum": rng.random(n), "age": rng.integers(20, 80, n)})
    return values * 0.1 - 0.05, values


@pytest.mark.parametrize("n", [300, plots.PLOT_POINTS * 3])
def test_scatters_draw_every_row_or_a_sample_of_plot_points(n):
    import matplotlib.pyplot as plt

    phi, values = _phi(n)
    drawn = min(n, plots.PLOT_POINTS)
    fig = plots.beeswarm(phi, values)
    points = [c.get_offsets().shape[0] for c in fig.axes[0].collections]
    assert points == [drawn, drawn]
    assert ("a random" in fig.axes[0].get_xlabel()) == (n > plots.PLOT_POINTS)
    fig = plots.dependence(phi, values, "aum")
    assert fig.axes[0].collections[0].get_offsets().shape[0] == drawn
    plt.close("all")


def test_lift_is_each_deciles_rate_over_the_overall_rate():
    import matplotlib.pyplot as plt

    y = np.array([1] * 10 + [0] * 90)  # the 10 positives score highest: decile 1 holds them
    s = -np.arange(100.0)
    random = np.random.default_rng(0).permutation(100).astype(float)
    fig = plots.lift({"perfect": (y, s), "random": (y, random)})
    perfect, _ = (line.get_ydata() for line in fig.axes[0].get_lines()[:2])
    np.testing.assert_allclose(perfect, [10.0] + [0.0] * 9)
    assert fig.axes[0].get_lines()[1].get_ydata().max() < 10.0
    plt.close("all")


def test_shap_bar_shows_the_top_features_largest_first():
    import matplotlib.pyplot as plt

    imp = pd.DataFrame({"mean_abs_shap": [0.5, 0.3, 0.2, 0.1]}, index=["a", "b", "c", "d"])
    fig = plots.shap_bar(imp, top=3)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["c", "b", "a"]  # barh draws bottom-up: the largest on top
    assert [p.get_width() for p in ax.patches] == [0.2, 0.3, 0.5]
    plt.close("all")


@pytest.mark.parametrize("center", [True, False])
def test_heatmap_numbers_are_white_on_dark_cells_and_black_on_light_ones(center):
    import matplotlib.pyplot as plt

    frame = pd.DataFrame([[20.2, 0.1], [-19.8 if center else 10.0, 1.0]], columns=["a", "b"])
    fig = plots.heatmap(frame, "t", fmt="{:.1f}", center=center)
    ink = {t.get_text(): t.get_color() for t in fig.axes[0].texts}
    assert ink["20.2"] == "white" and ink["0.1"] == "black" and ink["1.0"] == "black"
    if center:
        assert ink["-19.8"] == "white"  # the darkest blue
    plt.close("all")
