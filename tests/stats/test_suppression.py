"""Consistent suppression: no hidden small count is determined by what a caller sees.

The audit below plays the attacker with linear algebra: every published number is known,
every relation between tables (rows, parent = children + rest, totals) is an equation, and
a hidden value is recovered exactly when its unit vector lies in the row space of the
equations over the unknowns.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from smartunion.stats.suppression import (
    OrgTree,
    subtree_totals,
    suppress_dimension,
    suppress_orgs,
)

CATS = ("M", "F", "X")
K = 10


def _determined(equations: list[dict[object, float]], unknown: object) -> bool:
    names = sorted({n for eq in equations for n in eq} | {unknown}, key=repr)
    if not equations:
        return False
    index = {n: i for i, n in enumerate(names)}
    a = np.zeros((len(equations), len(names)))
    for r, eq in enumerate(equations):
        for n, coef in eq.items():
            a[r, index[n]] = coef
    unit = np.zeros((1, len(names)))
    unit[0, index[unknown]] = 1.0
    return bool(np.linalg.matrix_rank(np.vstack([a, unit])) == np.linalg.matrix_rank(a))


def audit(tree: OrgTree, own_by: dict[int, dict[str, int]], k: int = K) -> list[str]:
    """Exactly recoverable small values (empty: the attack fails)."""
    orgs = suppress_orgs(tree, k)
    cells = suppress_dimension(tree, orgs, own_by, CATS, k)
    totals = subtree_totals(tree)
    order = tree.top_down()
    published = [o for o in order if orgs.published(o)]
    problems = []
    # Organisation relation: N(p) = own(p) + Σ N(c); unknowns are hidden totals and own cells.
    eqs: list[dict[object, float]] = []
    for p in published:
        eq: dict[object, float] = {}
        const = -totals[p]
        if p in orgs.own_hidden:
            eq[("own", p)] = 1.0
        else:
            const += tree.own.get(p, 0)
        for c in tree.children.get(p, ()):
            if orgs.published(c):
                const += totals[c]
            else:
                eq[("N", c)] = 1.0
        if eq:
            eqs.append(eq)
    for p in published:
        for c in tree.children.get(p, ()):
            if not orgs.published(c) and 0 < totals[c] < k and _determined(eqs, ("N", c)):
                problems.append(f"total of {c} = {totals[c]}")
        if p in orgs.own_hidden and _determined(eqs, ("own", p)):
            problems.append(f"own of {p}")
    # Dimension relations; the rest g(p, v) is always unknown.
    counts: dict[int, dict[str, int]] = {}
    for o in reversed(order):
        counts[o] = {v: own_by.get(o, {}).get(v, 0) for v in CATS}
        for c in tree.children.get(o, ()):
            for v in CATS:
                counts[o][v] += counts[c][v]
    deqs: list[dict[object, float]] = []

    def term(o: int, v: str) -> tuple[dict[object, float], float]:
        shown = cells[o][v]
        return ({}, float(shown)) if shown is not None else ({("c", o, v): 1.0}, 0.0)

    for o in published:
        eq = {}
        for v in CATS:
            t, _ = term(o, v)
            eq.update(t)
        if eq:
            deqs.append(eq)
        kids = [c for c in tree.children.get(o, ()) if orgs.published(c)]
        rest_size = totals[o] - sum(totals[c] for c in kids)
        g_row = {}
        for v in CATS:
            eq = {("g", o, v): 1.0}
            t, _ = term(o, v)
            for n in t:
                eq[n] = eq.get(n, 0.0) - 1.0
            for c in kids:
                t, _ = term(c, v)
                eq.update(t)
            deqs.append(eq)
            g_row[("g", o, v)] = 1.0
        if rest_size >= 0:
            deqs.append(g_row)
    for o in published:
        kids = [c for c in tree.children.get(o, ()) if orgs.published(c)]
        for v in CATS:
            n = counts[o][v]
            if cells[o][v] is None and 0 < n < k and _determined(deqs, ("c", o, v)):
                problems.append(f"cell {o}/{v} = {n}")
            g = counts[o][v] - sum(counts[c][v] for c in kids)
            if kids and 0 < g < k and _determined(deqs, ("g", o, v)):
                problems.append(f"rest {o}/{v} = {g}")
    return problems


def _tree_strategy() -> st.SearchStrategy[tuple[OrgTree, dict[int, dict[str, int]]]]:
    @st.composite
    def build(draw: st.DrawFn) -> tuple[OrgTree, dict[int, dict[str, int]]]:
        n = draw(st.integers(min_value=2, max_value=9))
        parents = [draw(st.integers(min_value=0, max_value=i - 1)) for i in range(1, n)]
        children: dict[int, list[int]] = {}
        for child, parent in enumerate(parents, start=1):
            children.setdefault(parent, []).append(child)
        own_by = {
            o: {v: draw(st.sampled_from([0, 0, 1, 2, 4, 7, 12, 25, 40])) for v in CATS}
            for o in range(n)
        }
        own = {o: sum(own_by[o].values()) for o in range(n)}
        return OrgTree(root=0, children=children, own=own), own_by

    return build()


@settings(max_examples=300, deadline=None)
@given(_tree_strategy())
def test_no_small_value_is_recoverable_from_everything_published(
    case: tuple[OrgTree, dict[int, dict[str, int]]],
) -> None:
    tree, own_by = case
    assert audit(tree, own_by) == []
