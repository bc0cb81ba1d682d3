"""The clustering algorithms :class:`~segments.core.groups.model.StrategicGroups` can use.

Adding an algorithm is adding one entry to :data:`ALGORITHMS`: how to make it for k
clusters, whether it gives a BIC (k is then chosen by the lowest BIC), and where its fitted
centres are. The ``algorithm`` parameter and ``groups.algorithm`` in the configuration
accept every name here, and nothing else. See ``docs/architecture.md``, "Add an algorithm".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from numbers import Integral
from typing import Any

import numpy as np
from sklearn.cluster import BisectingKMeans, KMeans, MiniBatchKMeans
from sklearn.mixture import GaussianMixture

__all__ = ["ALGORITHMS", "Algorithm", "check_k_range"]


def _centres(model: Any) -> np.ndarray:
    return model.cluster_centers_


@dataclass(frozen=True)
class Algorithm:
    """A clustering algorithm :class:`StrategicGroups` can use.

    Parameters
    ----------
    make : callable
        ``make(k, n_init, seed)`` returns an unfitted clusterer with ``fit`` and
        ``predict`` (and ``predict_proba`` for soft membership).
    gives_bic : bool, default False
        The fitted clusterer has ``bic(X)``; k is then chosen by the lowest BIC.
    centres : callable, default ``model.cluster_centers_``
        The fitted clusterer's centres, one row per cluster.
    """

    make: Callable[[int, int, int], Any]
    gives_bic: bool = False
    centres: Callable[[Any], np.ndarray] = _centres


#: The clustering algorithms by name (the ``algorithm`` parameter, ``groups.algorithm`` in
#: the configuration). Adding one is adding an entry here.
ALGORITHMS: dict[str, Algorithm] = {
    "kmeans": Algorithm(lambda k, n_init, seed: KMeans(k, n_init=n_init, random_state=seed)),
    "minibatch_kmeans": Algorithm(
        lambda k, n_init, seed: MiniBatchKMeans(
            k, n_init=n_init, batch_size=4096, random_state=seed
        )
    ),
    "gmm": Algorithm(
        lambda k, n_init, seed: GaussianMixture(
            k, covariance_type="diag", n_init=max(1, n_init // 3), random_state=seed
        ),
        gives_bic=True,
        centres=lambda model: model.means_,
    ),
    "bisecting_kmeans": Algorithm(
        lambda k, n_init, seed: BisectingKMeans(k, n_init=max(1, n_init // 2), random_state=seed)
    ),
}


def check_k_range(k_range: Any) -> str | None:
    """What is wrong with a ``k_range`` (``(min, max)``, ``2 <= min <= max``), or None."""
    ok = (
        isinstance(k_range, list | tuple)
        and len(k_range) == 2
        and all(isinstance(k, Integral) and not isinstance(k, bool) for k in k_range)
        and 2 <= k_range[0] <= k_range[1]
    )
    return None if ok else f"is {k_range!r}; expected (min, max) with 2 <= min <= max"
