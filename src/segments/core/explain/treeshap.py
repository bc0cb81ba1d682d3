"""Exact path-dependent TreeSHAP for LightGBM, fast: per-leaf tables of Shapley values.

For one leaf with value ``v`` and unique path features ``u_1..u_m``, the path-dependent
expectation given a coalition ``S`` is ``v * prod_{k in S} o_k * prod_{k not in S} z_k``:
``z_k`` is the product of the cover ratios of the path's splits on ``u_k`` and ``o_k`` (0 or
1) says whether the row satisfies all of them. The leaf's Shapley values therefore depend on
the row only through the bits ``o``: for every leaf and every bit pattern they are computed
once per model (``2^m x m`` numbers, ``m <= depth``). Scoring a row is then, per tree, one pass
over the internal nodes (their directions packed in a 64-bit word) and a table look-up per
leaf, in compiled code over blocks of rows (tree-major, so a tree's tables stay in cache).
The result equals TreeSHAP (Lundberg et al. 2020) and LightGBM's ``pred_contrib``.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from segments.exceptions import SegmentsError

#: The most leaves a tree may have (a path's features are a 64-bit mask): an upgrade
#: model's ``num_leaves`` is validated against it before training.
MAX_LEAVES = 65


class TooManyLeavesError(SegmentsError, ValueError):
    """A tree has more leaves than exact TreeSHAP handles (:data:`MAX_LEAVES`)."""


def _walk(tree):
    """Internal nodes and leaves (value, count, path of (node, goes_left)) of one tree."""
    nodes, leaves = [], []

    def count(n):
        return n.get("leaf_count", 0) if "split_index" not in n else n["internal_count"]

    def rec(node, path):
        if "split_index" not in node:
            leaves.append((node["leaf_value"], node.get("leaf_count", 0), list(path)))
            return
        nid = len(nodes)
        is_cat = node["decision_type"] == "=="
        nodes.append(
            {
                "feature": node["split_feature"],
                "threshold": 0.0 if is_cat else float(node["threshold"]),
                "default_left": bool(node.get("default_left", False)),
                "missing": {"None": 0, "Zero": 1, "NaN": 2}[node.get("missing_type", "None")],
                "cats": [int(c) for c in str(node["threshold"]).split("||")] if is_cat else None,
                "left_frac": count(node["left_child"]) / node["internal_count"]
                if node["internal_count"]
                else 0.0,
            }
        )
        rec(node["left_child"], [*path, (nid, True)])
        rec(node["right_child"], [*path, (nid, False)])

    rec(tree, [])
    return nodes, leaves


def _leaf_tables(value, zero):
    """All 2^m patterns at once: Shapley values of one leaf (2^m x m)."""
    m = len(zero)
    if m == 0:
        return np.zeros((1, 0))
    patterns = np.arange(1 << m)
    o = ((patterns[:, None] >> np.arange(m)[None, :]) & 1).astype(float)
    w = np.array(
        [math.factorial(s) * math.factorial(m - 1 - s) / math.factorial(m) for s in range(m)]
    )
    table = np.empty((1 << m, m))
    for j in range(m):
        poly = np.zeros((1 << m, m))
        poly[:, 0] = 1.0
        for k in range(m):
            if k == j:
                continue
            shifted = np.zeros_like(poly)
            shifted[:, 1:] = poly[:, :-1] * o[:, k : k + 1]
            poly = poly * zero[k] + shifted
        table[:, j] = value * (o[:, j] - zero[j]) * (poly @ w)
    return table


def _leaf_path(
    nodes: list[dict], path: list[tuple[int, bool]]
) -> tuple[list[int], list[float], list[int], int]:
    """A leaf's root-to-leaf path as TreeSHAP needs it: the distinct features on it, the
    share of training rows following the path at each (their "zero" fractions, multiplied
    when a feature repeats), the node bitmask per feature, and the bitmask of the nodes
    where the path goes left."""
    feats: list[int] = []
    zero: list[float] = []
    masks: list[int] = []
    expect = 0
    for nid, goes_left in path:
        f = nodes[nid]["feature"]
        frac = nodes[nid]["left_frac"] if goes_left else 1 - nodes[nid]["left_frac"]
        if f in feats:
            j = feats.index(f)
            zero[j] *= frac
            masks[j] |= 1 << nid
        else:
            feats.append(f)
            zero.append(frac)
            masks.append(1 << nid)
        if goes_left:
            expect |= 1 << nid
    return feats, zero, masks, expect


class FastTreeShap:
    """Exact TreeSHAP of a LightGBM booster (binary or regression), vectorised with numba.

    Parameters
    ----------
    booster : lightgbm.Booster
        A fitted booster with trees of at most :data:`MAX_LEAVES` (65) leaves.
    num_iteration : int, optional
        Use the first ``num_iteration`` trees (the model's best iteration).

    Attributes
    ----------
    expected_value : float
        The mean raw score over the training data (the base of the contributions).
    n_features : int
    """

    def __init__(self, booster, num_iteration=None):
        dump = booster.dump_model(num_iteration=num_iteration or -1)
        self.n_features = len(dump["feature_names"])
        self.expected_value = 0.0
        feat, thr, dleft, miss, catidx = [], [], [], [], []
        cat_words = []
        tree_nodes = [0]
        tree_leaves = [0]
        leaf_expect, leaf_masks, leaf_feats, leaf_m, leaf_tab = [], [], [], [], []
        tables = []
        offset = 0
        max_nodes = 0
        for info in dump["tree_info"]:
            root = info["tree_structure"]
            if "split_index" not in root:
                self.expected_value += root["leaf_value"]
                tree_nodes.append(tree_nodes[-1])
                tree_leaves.append(tree_leaves[-1])
                continue
            nodes, leaves = _walk(root)
            if len(nodes) + 1 > MAX_LEAVES:
                raise TooManyLeavesError(
                    f"a tree has {len(nodes) + 1} leaves; exact TreeSHAP supports at most "
                    f"{MAX_LEAVES} (train with num_leaves <= {MAX_LEAVES})"
                )
            max_nodes = max(max_nodes, len(nodes))
            for n in nodes:
                feat.append(n["feature"])
                thr.append(n["threshold"])
                dleft.append(n["default_left"])
                miss.append(n["missing"])
                if n["cats"] is not None:
                    words = [0] * (max(n["cats"]) // 64 + 1)
                    for c in n["cats"]:
                        words[c // 64] |= 1 << (c % 64)
                    catidx.append(len(cat_words))
                    cat_words.append(words)
                else:
                    catidx.append(-1)
            total = root["internal_count"]
            for value, count, path in leaves:
                self.expected_value += value * count / total
                feats, zero, masks, expect = _leaf_path(nodes, path)
                table = _leaf_tables(value, np.array(zero))
                leaf_expect.append(expect)
                leaf_masks.append(masks)
                leaf_feats.append(feats)
                leaf_m.append(len(feats))
                leaf_tab.append(offset)
                tables.append(table.ravel())
                offset += table.size
            tree_nodes.append(tree_nodes[-1] + len(nodes))
            tree_leaves.append(tree_leaves[-1] + len(leaves))
        maxm = max(leaf_m, default=1) or 1
        n_leaves = len(leaf_m)
        self.arrays = dict(
            node_feature=np.array(feat, dtype=np.int64),
            node_threshold=np.array(thr, dtype=np.float64),
            node_default_left=np.array(dleft, dtype=np.bool_),
            node_missing=np.array(miss, dtype=np.int8),
            node_cat=np.array(catidx, dtype=np.int64),
            cat_bits=_pack(cat_words),
            tree_nodes=np.array(tree_nodes, dtype=np.int64),
            tree_leaves=np.array(tree_leaves, dtype=np.int64),
            leaf_expect=np.array(leaf_expect, dtype=np.uint64),
            leaf_masks=_pad([[np.uint64(x) for x in ms] for ms in leaf_masks], maxm, np.uint64),
            leaf_feats=_pad(leaf_feats, maxm, np.int64, fill=-1),
            leaf_m=np.array(leaf_m, dtype=np.int64),
            leaf_tab=np.array(leaf_tab, dtype=np.int64),
            tables=np.concatenate(tables) if tables else np.zeros(0),
        )
        self.max_nodes = max(max_nodes, 1)
        assert n_leaves == len(leaf_tab)

    def shap_values(self, X, block=256):
        """Contributions per row and feature, in raw-score units.

        Parameters
        ----------
        X : ndarray of shape (n_rows, n_features)
            Numeric values; categorical features as their integer codes (NaN or -1 for
            missing), in the booster's feature order.
        block : int, default 256
            Rows per block of the tree-major loop.

        Returns
        -------
        ndarray of shape (n_rows, n_features)
            ``contributions.sum(axis=1) + expected_value`` is the raw score.
        """
        X = np.ascontiguousarray(X, dtype=np.float64)
        out = np.zeros((X.shape[0], self.n_features))
        a = self.arrays
        _kernel(
            X,
            out,
            block,
            self.max_nodes,
            a["node_feature"],
            a["node_threshold"],
            a["node_default_left"],
            a["node_missing"],
            a["node_cat"],
            a["cat_bits"],
            a["tree_nodes"],
            a["tree_leaves"],
            a["leaf_expect"],
            a["leaf_masks"],
            a["leaf_feats"],
            a["leaf_m"],
            a["leaf_tab"],
            a["tables"],
        )
        return out


def _pack(cat_words):
    """Category sets as rows of 64-bit words."""
    width = max((len(w) for w in cat_words), default=1)
    bits = np.zeros((max(len(cat_words), 1), width), dtype=np.uint64)
    for i, words in enumerate(cat_words):
        for k, w in enumerate(words):
            bits[i, k] = np.uint64(w)
    return bits


def _pad(rows, width, dtype, fill=0):
    """Ragged rows to a padded 2-D array."""
    out = np.full((max(len(rows), 1), width), fill, dtype=dtype)
    for i, r in enumerate(rows):
        for k, v in enumerate(r):
            out[i, k] = v
    return out


@numba.njit(parallel=True, cache=True)
def _kernel(
    X,
    out,
    block,
    max_nodes,
    node_feature,
    node_threshold,
    node_default_left,
    node_missing,
    node_cat,
    cat_bits,
    tree_nodes,
    tree_leaves,
    leaf_expect,
    leaf_masks,
    leaf_feats,
    leaf_m,
    leaf_tab,
    tables,
):
    n_rows = X.shape[0]
    n_blocks = (n_rows + block - 1) // block
    n_trees = tree_nodes.shape[0] - 1
    one = np.uint64(1)
    for b in numba.prange(n_blocks):
        r0 = b * block
        r1 = min(n_rows, r0 + block)
        for t in range(n_trees):
            n0 = tree_nodes[t]
            n1 = tree_nodes[t + 1]
            l0 = tree_leaves[t]
            l1 = tree_leaves[t + 1]
            for r in range(r0, r1):
                bits = np.uint64(0)
                for i in range(n0, n1):
                    x = X[r, node_feature[i]]
                    go_left = False
                    if node_cat[i] >= 0:
                        if not (np.isnan(x) or x < 0):
                            c = int(x)
                            word = c // 64
                            if word < cat_bits.shape[1]:
                                go_left = (
                                    (cat_bits[node_cat[i], word] >> np.uint64(c % 64)) & one
                                ) == one
                    else:
                        miss = node_missing[i]
                        if np.isnan(x):
                            if miss != 0:
                                go_left = node_default_left[i]
                            else:
                                go_left = node_threshold[i] >= 0.0
                        elif miss == 1 and -1e-35 <= x <= 1e-35:
                            go_left = node_default_left[i]
                        else:
                            go_left = x <= node_threshold[i]
                    if go_left:
                        bits |= one << np.uint64(i - n0)
                for leaf in range(l0, l1):
                    m = leaf_m[leaf]
                    diff = bits ^ leaf_expect[leaf]
                    pattern = 0
                    for j in range(m):
                        if (diff & leaf_masks[leaf, j]) == np.uint64(0):
                            pattern |= 1 << j
                    base = leaf_tab[leaf] + pattern * m
                    for j in range(m):
                        out[r, leaf_feats[leaf, j]] += tables[base + j]
