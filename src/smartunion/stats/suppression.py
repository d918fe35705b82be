"""Consistent small-cell suppression over everything one caller can see.

Suppressing each table on its own is not enough: a caller who sees a parent's total and
the counts of its children recovers a suppressed child as the difference, and the same
subtraction works on every other table (a county's gender counts minus those of its
published unions gives the gender counts of the hidden ones). Here the suppression of all
tables a caller can ask for (every organisation of their scope, by organisation and by
each dimension) is decided together, as one system of linear relations:

- *row*: an organisation's published total is the sum of the cells of each of its tables;
- *column*: a parent's cell for a category is the sum of its published children's cells
  plus the cell of the *rest* (the parent's own members and its hidden sub-organisations),
  a group that is never published but can be derived;
- *organisation*: a parent's total is its own members plus its children's totals.

Rules, applied until nothing changes:

1. An organisation with fewer than k members is hidden with its whole subtree: none of its
   tables is published, so a small union's table cannot tell what all its members have.
2. In every relation, hidden entries are either none, or at least two with a sum of at
   least k (when the relation's total is known); otherwise the smallest non-zero entry
   still published is hidden too (complementary suppression). A hidden organisation takes
   its subtree with it; a hidden cell of the *rest* means one more cell of its column is
   hidden (the rest itself is never published).

The tables of one scope are therefore consistent: every cell a caller can see comes from
the same decision, whatever order they ask in. What it does not promise is written in
docs/security.md (combinations of many relations can bound a hidden cell, and callers of
different scopes get decisions of their own); differential privacy is the mode that holds
against every combination.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

Entry = tuple[
    str, int, str
]  # ("c", org, category) a published table's cell; ("r", org, …) the rest


@dataclass(frozen=True)
class OrgTree:
    root: int
    children: Mapping[int, Sequence[int]]
    own: Mapping[int, int]  # active members attached to the organisation itself

    def top_down(self) -> list[int]:
        order, i = [self.root], 0
        while i < len(order):
            order.extend(self.children.get(order[i], ()))
            i += 1
        return order


@dataclass
class OrgSuppression:
    totals: dict[int, int]
    hidden: set[int] = field(default_factory=set)  # no table, no total, anywhere
    own_hidden: set[int] = field(default_factory=set)  # own-members cell hidden in its table

    def published(self, org: int) -> bool:
        return org not in self.hidden


def subtree_totals(tree: OrgTree) -> dict[int, int]:
    totals: dict[int, int] = {}
    for org in reversed(tree.top_down()):
        totals[org] = tree.own.get(org, 0) + sum(totals[c] for c in tree.children.get(org, ()))
    return totals


def suppress_orgs(tree: OrgTree, k: int) -> OrgSuppression:
    """Which organisations' totals (and tables) are never published, and whose own cells."""
    totals = subtree_totals(tree)
    order = tree.top_down()
    result = OrgSuppression(totals=totals)

    def hide(org: int) -> None:
        stack = [org]
        while stack:
            o = stack.pop()
            if o not in result.hidden:
                result.hidden.add(o)
                stack.extend(tree.children.get(o, ()))

    for org in order:
        if 0 < totals[org] < k:
            hide(org)
    result.own_hidden = {o for o in order if 0 < tree.own.get(o, 0) < k}
    changed = True
    while changed:
        changed = False
        for parent in order:
            if parent in result.hidden:
                continue
            kids = tree.children.get(parent, ())
            own = tree.own.get(parent, 0)
            hidden_values = [totals[c] for c in kids if c in result.hidden]
            if parent in result.own_hidden:
                hidden_values.append(own)
            if not hidden_values or (len(hidden_values) >= 2 and sum(hidden_values) >= k):
                continue
            candidates: list[tuple[int, int, int | None]] = [
                (totals[c], 1, c) for c in kids if c not in result.hidden and totals[c] > 0
            ]
            if parent not in result.own_hidden and own > 0:
                candidates.append((own, 0, None))  # the own cell first: it hides no subtree
            if candidates:
                _, _, chosen = min(candidates)
                if chosen is None:
                    result.own_hidden.add(parent)
                else:
                    hide(chosen)
            else:
                hide(parent)
            changed = True
    return result


@dataclass(frozen=True)
class _Relation:
    total: Entry | None  # None: a published organisation total (known)
    parts: tuple[Entry, ...]


def suppress_dimension(
    tree: OrgTree,
    orgs: OrgSuppression,
    own_by: Mapping[int, Mapping[str, int]],
    categories: Sequence[str],
    k: int,
) -> dict[int, dict[str, int | None]]:
    """The published cells of every published organisation's table by one dimension."""
    order = tree.top_down()
    counts: dict[int, dict[str, int]] = {}
    for org in reversed(order):
        own = own_by.get(org, {})
        cell = {v: own.get(v, 0) for v in categories}
        for child in tree.children.get(org, ()):
            for v in categories:
                cell[v] += counts[child][v]
        counts[org] = cell
    published = [o for o in order if orgs.published(o)]
    value: dict[Entry, int] = {}
    relations: list[_Relation] = []
    pinned: set[Entry] = set()  # the only non-zero cell of its row: hiding it protects nothing
    for org in published:
        row = tuple(("c", org, v) for v in categories)
        for e in row:
            value[e] = counts[org][e[2]]
        relations.append(_Relation(None, row))
        nonzero = [e for e in row if value[e]]
        if len(nonzero) == 1:
            pinned.add(nonzero[0])
    for parent in published:
        kids = [c for c in tree.children.get(parent, ()) if orgs.published(c)]
        if not kids:
            continue  # the rest is the whole organisation: its table already covers it
        rest = {v: counts[parent][v] - sum(counts[c][v] for c in kids) for v in categories}
        has_rest = any(rest.values())
        rest_row = tuple(("r", parent, v) for v in categories)
        if has_rest:
            for e in rest_row:
                value[e] = rest[e[2]]
            relations.append(_Relation(None, rest_row))
            nonzero = [e for e in rest_row if value[e]]
            if len(nonzero) == 1:
                pinned.add(nonzero[0])
        for v in categories:
            parts = [("c", c, v) for c in kids]
            if has_rest:
                parts.append(("r", parent, v))
            relations.append(_Relation(("c", parent, v), tuple(parts)))
    hidden: set[Entry] = {e for e, n in value.items() if 0 < n < k}
    by_entry: dict[Entry, list[int]] = {}
    for i, rel in enumerate(relations):
        for e in (*rel.parts, *((rel.total,) if rel.total else ())):
            by_entry.setdefault(e, []).append(i)

    def violated(rel: _Relation) -> bool:
        hd = [e for e in rel.parts if e in hidden]
        total_hidden = rel.total is not None and rel.total in hidden
        if len(hd) + total_hidden == 0:
            return False
        if len(hd) + total_hidden == 1:
            return True
        return not total_hidden and 0 < sum(value[e] for e in hd) < k

    work = list(range(len(relations)))
    queued = set(work)
    while work:
        i = work.pop()
        queued.discard(i)
        rel = relations[i]
        if not violated(rel):
            continue
        candidates = sorted(
            (value[e], e[0] != "r", e)
            for e in rel.parts
            if e not in hidden and value[e] > 0 and e not in pinned
        )
        if candidates:
            chosen: Entry | None = candidates[0][2]
        elif rel.total is not None and rel.total not in hidden and value[rel.total] > 0:
            chosen = rel.total
        else:
            fallback = [e for e in rel.parts if e not in hidden and value[e] > 0]
            chosen = min(fallback, key=lambda e: value[e]) if fallback else None
        if chosen is None:
            continue
        hidden.add(chosen)
        for j in (*by_entry.get(chosen, ()), i):
            if j not in queued:
                queued.add(j)
                work.append(j)
    return {
        org: {v: None if ("c", org, v) in hidden else counts[org][v] for v in categories}
        for org in published
    }
