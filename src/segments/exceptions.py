"""Exceptions and warnings raised by segments.

Every error a user can cause (bad input, bad configuration, a refused action) is a
:class:`SegmentsError`. Each subclass also inherits the built-in exception it
specialises, so ``except ValueError`` keeps working for callers that do not know
segments. The command-line interface prints one line for a ``SegmentsError`` and exits 1;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

__all__ = [
    "INTERRUPTS",
    "ConfigError",
    "DriftError",
    "Interrupted",
    "PanelValidationError",
    "PromotionConflict",
    "PromotionError",
    "RegistryError",
    "SegmentsError",
    "SegmentsWarning",
    "Violation",
    "example_list",
]

#: How many example customer ids a violation quotes.
N_EXAMPLES = 5


def example_list(ids: Iterable[object]) -> tuple[str, ...]:
    """The example ids a violation quotes: the :data:`N_EXAMPLES` smallest, as text, each
    once. Ordered by their text, never by where they were met, so a panel checked whole,
    in batches or in buckets quotes the same customers."""
    return tuple(sorted({str(x) for x in ids})[:N_EXAMPLES])


#: The sections of an experiment configuration (``scoring.psi_warn`` names a setting).
_SECTIONS = frozenset(
    {
        "panel",
        "tiers",
        "features",
        "groups",
        "upgrade",
        "registry",
        "scoring",
        "tracking",
        "levers",
        "service",
    }
)


class SegmentsError(Exception):
    """Base class of every error segments raises on purpose."""


class Interrupted(BaseException):
    """SIGTERM (what schedulers send on a timeout) or SIGINT, raised where a command is, so
    every ``finally`` runs: MLflow runs end KILLED, locks are released, work is kept to
    resume. A ``BaseException`` (like ``KeyboardInterrupt``) that no library handler
    swallows on its way up to the command line."""

    def __init__(self, signum: int) -> None:
        import signal

        super().__init__(signal.Signals(signum).name)
        self.signum = signum


#: What stops a job from outside: a signal (:class:`Interrupted`) or Ctrl-C in Python.
INTERRUPTS = (Interrupted, KeyboardInterrupt)


class SegmentsWarning(UserWarning):
    """A problem worth a user's attention that does not stop the work."""


@dataclass(frozen=True)
class Violation:
    """One broken rule of a data contract or a configuration.

    Parameters
    ----------
    column : str
        The column (or configuration key) at fault.
    problem : str
        What is wrong, phrased so that it reads after the column name.
    n_rows : int, default 0
        How many rows break the rule (0 when the rule is not about rows).
    examples : tuple of str, default ()
        Up to five example customer ids (or values) that break it.
    severity : {"error", "warning"}, default "error"
        Errors stop the work; warnings are reported and the work goes on.
    hint : str, default ""
        How to fix it.
    kind : str, default ""
        What ``column`` names when it is none of what :attr:`noun` tells apart (``"file"``).
    """

    column: str
    problem: str
    n_rows: int = 0
    examples: tuple[str, ...] = field(default_factory=tuple)
    severity: str = "error"
    hint: str = ""
    kind: str = ""

    @property
    def noun(self) -> str:
        """What ``column`` names: :attr:`kind` when given, else an option (``--out``), an
        argument (``MODEL``), a setting of the configuration (``scoring.psi_warn``) or, by
        default, a column."""
        if self.kind:
            return self.kind
        name = self.column
        if name.startswith("-"):
            return "option"
        if name.isupper():
            return "argument"
        if name.split(".", 1)[0] in _SECTIONS and "." in name and " " not in name:
            return "setting"
        return "column"

    def __str__(self) -> str:
        text = f"{self.noun} `{self.column}`: {self.problem}"
        if self.n_rows:
            text += f" ({self.n_rows:,} row{'s' if self.n_rows != 1 else ''}"
            if self.examples:
                text += "; e.g. customers " + ", ".join(self.examples)
            text += ")"
        elif self.examples:
            text += " (e.g. " + ", ".join(self.examples) + ")"
        if self.hint:
            text += f"; {self.hint}"
        return text


class _ViolationsError(SegmentsError):
    """An error that carries every violation found, so all are reported at once."""

    what = "input"

    def __init__(self, violations: Sequence[Violation] | str, *, source: str = "") -> None:
        if isinstance(violations, str):
            violations = [Violation(column="-", problem=violations)]
        self.violations: list[Violation] = [v for v in violations if v.severity == "error"]
        self.warnings: list[Violation] = [v for v in violations if v.severity != "error"]
        self.source = source
        super().__init__(self._message())

    def _message(self) -> str:
        where = f" {self.source}" if self.source else ""
        n = len(self.violations)
        head = f"{self.what}{where} has {n} problem{'s' if n != 1 else ''}"
        if n == 1:
            return f"{head}: {self.violations[0]}"
        return head + ":\n" + "\n".join(f"  - {v}" for v in self.violations)


class PanelValidationError(_ViolationsError, ValueError):
    """The customer panel breaks the data contract.

    Attributes
    ----------
    violations : list of Violation
        Every error found, in the order the checks ran.
    warnings : list of Violation
        Problems found that were configured as warnings.
    """

    what = "panel"


class ConfigError(_ViolationsError, ValueError):
    """A configuration (YAML file, ladder, column map or option) is invalid."""

    what = "configuration"


class RegistryError(SegmentsError, LookupError):
    """A registered model, version or alias that does not exist (or cannot be reached)."""


class PromotionError(SegmentsError):
    """A promotion to ``champion`` refused: every failed check is listed.

    Attributes
    ----------
    failed : list of str
        One line per failed check.
    report : PromotionReport or None
        The checks and comparison (set by :func:`segments.mlops.promotion.promote`).
    """

    def __init__(self, name: str, version: str, failed: Sequence[str]) -> None:
        self.failed = list(failed)
        self.report = None
        n = len(self.failed)
        super().__init__(
            f"promotion of {name} version {version} refused: {n} check"
            f"{'s' if n != 1 else ''} failed:\n" + "\n".join(f"  - {f}" for f in self.failed)
        )


class PromotionConflict(PromotionError):
    """A promotion refused because another change of the same model got there first.

    Either another process holds the registry lock of the model, or the champion moved
    between the checks and the alias change. The message is one line naming the other
    change; ``failed`` and ``report`` are as for :class:`PromotionError`.
    """

    def __init__(self, name: str, version: str, failed: Sequence[str], message: str) -> None:
        super().__init__(name, version, failed)
        self.args = (message,)


class DriftError(SegmentsError):
    """Scoring finished and wrote its output, but a PSI passed the alert threshold and the
    job was configured to fail on drift (``scoring.fail_on_drift``)."""
