"""Suggestions ("did you mean …?") for a misspelt directive or section name.

The distance is Damerau's (optimal string alignment: insert, delete, substitute, swap two
neighbours), counted without regard to case, so ``ExecStrat``, ``execstart`` and
``ExecStar`` all find ``ExecStart``. A suggestion is made only when it is clearly the one
meant: at most one edit for short names, two for names of six letters or more.
"""

from __future__ import annotations

from collections.abc import Iterable


def distance(a: str, b: str) -> int:
    """Optimal string alignment distance between ``a`` and ``b`` (case-sensitive)."""
    if a == b:
        return 0
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = ca != cb
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[-1]


def closest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate ``word`` most likely misspells, or None when none is close enough."""
    low = word.lower()
    limit = 2 if len(word) >= 6 else 1
    best: tuple[int, str] | None = None
    for c in candidates:
        if abs(len(c) - len(word)) > limit:
            continue
        d = distance(low, c.lower())
        if d <= limit and (best is None or (d, c) < best):
            best = (d, c)
    return best[1] if best is not None else None
