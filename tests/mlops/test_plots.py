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
