"""Reason codes on a points ladder: the tier features in points, and what each component adds.

On an AUM ladder the catalogue's sentences hold ("money still needed to reach the next tier
is 12,000"). On a points or growth ladder (:mod:`segments.core.tiers.points`) the gap is in
points, and a component's points say what the customer could do: "Products: 36 points now
(of 96); 2 more products would add 24 points". :class:`LadderPhrases` rewrites the reasons
of those features; every other reason keeps its catalogue sentence.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["LadderPhrases", "component_reason"]

#: The tier features' labels on a points ladder (en, zh).
_TIER_LABELS = {
    "gap_ratio": ("Points as a share of the next tier's threshold", "积分达到下一等级门槛的比例"),
    "gap_to_next": ("Points still needed to reach the next tier", "距下一等级门槛的积分差"),
}


def _num(v: float) -> str:
    """A number as a person writes it: 12,000 or 2 or 2.5."""
    return f"{v:,.0f}" if float(v).is_integer() or abs(v) >= 100 else f"{v:,.1f}"


def component_reason(
    component: Any, points_now: float, gap: float, lang: str, *, growth: bool
) -> str:
    """One component's reason: its points now and what more of its column would add.

    Parameters
    ----------
    component : Component
    points_now : float
        The customer's points from the component (a growth ladder: the balance it earned).
    gap : float
        Points still needed to reach the next tier.
    lang : {"en", "zh"}
    growth : bool
        A growth ladder: the cap is a month's and the month's points so far are not known,
        so the sentence says "in a month earn up to".

    Examples
    --------
    >>> from segments.core.tiers.points import Component
    >>> c = Component("products", "n_products", points=12, cap=96, unit="products")
    >>> component_reason(c, 36.0, 20.0, "en", growth=False)
    'Products: 36 points now (of 96); 2 more products would add 24 points'
    """
    label = component.name.replace("_", " ")
    label = label[0].upper() + label[1:]
    label_zh = component.label_zh or component.name
    unit = component.unit or component.column.replace("_", " ")
    unit_zh = component.unit_zh or component.column
    more = component.more(0.0 if growth else points_now, gap)
    if lang == "en":
        of = "" if component.cap is None or growth else f" (of {_num(component.cap)})"
        head = f"{label}: {_num(points_now)} points now{of}"
        if more is None:
            return head + ("; the most it gives" if component.points > 0 else "")
        if growth:  # the month's cap may be partly used already: "up to"
            return (
                f"{head}; {_num(more[0])} more {unit} in a month earn up to {_num(more[1])} points"
            )
        return f"{head}; {_num(more[0])} more {unit} would add {_num(more[1])} points"
    of = "" if component.cap is None or growth else f"(上限{_num(component.cap)}分)"
    head = f"{label_zh}当前{_num(points_now)}分{of}"
    if more is None:
        return head + "，已达上限" if component.points > 0 else head
    if growth:
        return f"{head}；每月再增加{_num(more[0])}{unit_zh}最多可加{_num(more[1])}分"
    return f"{head}；再增加{_num(more[0])}{unit_zh}可加{_num(more[1])}分"


class LadderPhrases:
    """The reasons of a points or growth ladder's features (nothing on an AUM ladder).

    Parameters
    ----------
    ladder : Ladder or None
    """

    def __init__(self, ladder: Any | None) -> None:
        points = ladder is not None and getattr(ladder, "kind", "aum") != "aum"
        self.growth = points and ladder.kind == "growth"
        self.components = {c.feature: c for c in ladder.components} if points else {}
        self.points = points

    def __bool__(self) -> bool:
        return self.points

    def label(self, name: str) -> tuple[str, str] | None:
        """A feature's label on this ladder (en, zh) where the catalogue's would mislead:
        the tier features in points, and each component's points; None elsewhere (and on
        an AUM ladder)."""
        if not self.points:
            return None
        if name in _TIER_LABELS:
            return _TIER_LABELS[name]
        c = self.components.get(name)
        if c is None:
            return None
        what = c.name.replace("_", " ")
        return (f"points from {what} ({c.column})", f"{c.label_zh or c.name}积分")

    def rewrite(
        self,
        names: Sequence[Any],
        values: Sequence[Any],
        raises: Sequence[bool],
        gaps: np.ndarray,
        texts: dict[str, list[Any]],
        sentences: dict[str, list[Any]],
    ) -> None:
        """Rewrite the tier features' and components' reasons of one reason slot, in place.

        Parameters
        ----------
        names : sequence
            The slot's feature per customer (None: no reason).
        values : sequence
            The feature's value per customer.
        raises : sequence of bool
            Whether the reason raises the chance.
        gaps : ndarray
            Points still needed to reach the next tier, per customer (NaN: unknown).
        texts, sentences : dict of list
            The value texts and the sentences, by language (``en``, ``zh``); rewritten.
        """
        for j, name in enumerate(names):
            if name in self.components:
                pts = float(values[j]) if values[j] is not None else np.nan
                if np.isnan(pts):
                    continue
                gap = float(gaps[j]) if not np.isnan(gaps[j]) else 0.0
                for lang in ("en", "zh"):
                    sentences[lang][j] = component_reason(
                        self.components[name], pts, gap, lang, growth=self.growth
                    )
                texts["en"][j] = f"{_num(pts)} points"
                texts["zh"][j] = f"{_num(pts)}分"
            elif name in _TIER_LABELS and values[j] is not None:
                v = float(values[j])
                if np.isnan(v):
                    continue
                shown = {"en": f"{_num(v)} points", "zh": f"{_num(v)}分"}
                if name == "gap_ratio":
                    shown = {"en": f"{v:.0%}", "zh": f"{v:.0%}"}
                for lang, (up, down) in zip(
                    ("en", "zh"), (("raises", "lowers"), ("提升", "降低")), strict=True
                ):
                    text = _TIER_LABELS[name][0 if lang == "en" else 1]
                    verb = up if raises[j] else down
                    sentences[lang][j] = (
                        f"{text} is {shown['en']}, which {verb} the chance of reaching the "
                        "next tier"
                        if lang == "en"
                        else f"{text}为{shown['zh']}，{verb}升级可能"
                    )
                texts["en"][j], texts["zh"][j] = shown["en"], shown["zh"]
