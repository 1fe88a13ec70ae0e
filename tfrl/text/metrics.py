"""Diversity and repetition of generated texts: the usual signs of reward hacking.

    tfrl.text.diversity(["love love love", "O gentle night"])
    # {'distinct_1': 0.667, 'distinct_2': 0.75, 'repeat_run': 2.0, 'max_repeat_run': 3}

A policy that games a reward often collapses onto a few phrases or repeats a
rewarded word; fluent text keeps many distinct n-grams and rarely says the
same word twice in a row.

distinct-n is pooled over the whole batch (distinct n-grams / all n-grams), so
it depends on how much text there is: more or longer texts lower it, and
texts cut short at a stop string raise it. Compare it only between batches of
the same size and length.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["distinct_n", "diversity", "repeat_run", "words"]

_WORD = re.compile(r"[A-Za-z']+")


def words(text: str) -> list[str]:
    """Lower-cased words (letters and apostrophes), punctuation and newlines dropped."""
    return [w.lower() for w in _WORD.findall(text)]


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Distinct word n-grams / all word n-grams over the batch (Li et al. 2016); 0 if none."""
    grams = [tuple(ws[i : i + n]) for ws in map(words, texts) for i in range(len(ws) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def repeat_run(text: str) -> int:
    """The longest run of one word said again and again in a row ("love love love": 3)."""
    best = run = 0
    previous = None
    for w in words(text):
        run = run + 1 if w == previous else 1
        best = max(best, run)
        previous = w
    return best


def diversity(texts: Sequence[str]) -> dict[str, float]:
    """distinct-1, distinct-2, and the mean and largest `repeat_run` of `texts`."""
    runs = [repeat_run(t) for t in texts] or [0]
    return {
        "distinct_1": distinct_n(texts, 1),
        "distinct_2": distinct_n(texts, 2),
        "repeat_run": sum(runs) / len(runs),
        "max_repeat_run": max(runs),
    }
