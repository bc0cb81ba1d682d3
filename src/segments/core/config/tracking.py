"""The ``tracking`` section: what a run may write about customers into MLflow.

A bank's MLflow is read by many people who must not see customer rows, so by default
every artifact is an aggregate. ``log_samples: true`` logs samples of the call list and the
reason codes, their ids pseudonymised by a keyed hash (HMAC-SHA256 with the key in the
environment variable :data:`ID_KEY_ENV`, never in YAML) unless ``hash_ids: false``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from segments.core.config.checks import is_pos_int
from segments.exceptions import ConfigError, Violation

__all__ = ["ID_KEY_ENV", "TrackingConfig"]

#: The environment variable holding the key that pseudonymises customer ids.
ID_KEY_ENV = "SEGMENTS_ID_KEY"


@dataclass(frozen=True)
class TrackingConfig:
    """What training runs log about customers.

    Parameters
    ----------
    log_samples : bool, default False
        Log customer-level samples (the call list, reason codes) as run artifacts. False:
        aggregates only.
    sample_rows : int, default 1000
        Rows in each sample when ``log_samples`` is true.
    hash_ids : bool, default True
        Pseudonymise the ids in samples with HMAC-SHA256 keyed by ``SEGMENTS_ID_KEY``
        (required then); False logs the bank's ids as they are.
    min_cell : int, default 10
        The fewest customers an aggregate row may describe: a branch's cell with fewer is
        pooled with the band's other small branches, and a statistic of fewer customers
        than this is left blank (the mean of one customer's scores is that customer's).
    """

    log_samples: bool = False
    sample_rows: int = 1000
    hash_ids: bool = True
    min_cell: int = 10

    def __post_init__(self) -> None:
        problems = [
            Violation(f"tracking.{key}", f"is {getattr(self, key)!r}; expected true or false")
            for key in ("log_samples", "hash_ids")
            if not isinstance(getattr(self, key), bool)
        ]
        for key in ("sample_rows", "min_cell"):
            value = getattr(self, key)
            if not is_pos_int(value):
                problems.append(
                    Violation(f"tracking.{key}", f"is {value!r}; expected a whole number >= 1")
                )
        if problems:
            raise ConfigError(problems)

    def id_key(self) -> bytes | None:
        """The key that pseudonymises ids in samples (None when no sample is logged or ids
        are logged as they are).

        Raises
        ------
        ConfigError
            Samples with hashed ids are asked for and ``SEGMENTS_ID_KEY`` is not set.
        """
        if not (self.log_samples and self.hash_ids):
            return None
        key = os.environ.get(ID_KEY_ENV, "")
        if not key:
            raise ConfigError(
                [
                    Violation(
                        "tracking.hash_ids",
                        f"is true with tracking.log_samples, but {ID_KEY_ENV} is not set",
                        hint=f"export {ID_KEY_ENV}=<a secret of your bank's> (the same key "
                        "gives the same pseudonym across runs), or set hash_ids: false",
                    )
                ]
            )
        return key.encode()
