"""Aligning a predicted sequence with the real one (Needleman-Wunsch, vectorised with numpy).

Global alignment with zero gap cost that maximises the summed similarity of
matched pairs (a weighted longest common subsequence). A row of the dynamic
programme is one numpy expression: with free gaps,
D[i, j] = max_{k <= j} max(D[i-1, k], D[i-1, k-1] + S[i, k]), a running maximum.
The score is that maximum divided by the longer sequence's length, so it lies in
[0, 1], equals 1 only for a perfect prediction, and is monotone: raising any one
similarity never lowers it, and one missed step costs one step, not the rest.
`matching` gives the matched pairs of a best alignment, whose similarities sum
to that maximum (what `rewards.diff` shows).

The score takes the similarity matrix a row at a time, so no matrix need be
held: time is O(rows * columns) numpy work and memory O(columns), with both
sequences cut at `MAX_LENGTH` (25 million cells at most). `matching` keeps the
whole table (it is for showing one alignment, not for scoring).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

MAX_LENGTH = 5000  # longer sequences are cut (the score's denominator keeps the full length)


def alignment_score(similarity: Iterable[np.ndarray], predicted_length: int, actual_length: int) -> float:
    """Best total similarity of an order-preserving matching, over max(lengths).

    `similarity` is the matrix (predicted x actual), or its rows one at a time."""
    longest = max(predicted_length, actual_length)
    if longest == 0:
        return 1.0
    previous: np.ndarray | None = None
    for row in similarity:
        if previous is None:
            previous = np.zeros(len(row) + 1)
        candidate = np.maximum(previous[1:], previous[:-1] + row)
        current = np.empty(len(row) + 1)
        current[0] = 0.0
        np.maximum.accumulate(candidate, out=current[1:])
        previous = current
    return float(previous[-1]) / longest if previous is not None else 0.0


def matching(similarity: np.ndarray) -> list[tuple[int, int]]:
    """The pairs (predicted index, actual index) of a best alignment, both increasing; their
    similarities sum to the maximum `alignment_score` divides. Where several alignments are
    best, a pair is preferred to leaving both steps out. Keeps the whole table
    (8 bytes per cell: 200 MB at MAX_LENGTH squared)."""
    rows, cols = similarity.shape if similarity.ndim == 2 else (0, 0)
    if not rows or not cols:
        return []
    table = np.zeros((rows + 1, cols + 1))
    for i in range(rows):  # row i + 1 as `alignment_score` computes it
        candidate = np.maximum(table[i, 1:], table[i, :-1] + similarity[i])
        np.maximum.accumulate(candidate, out=table[i + 1, 1:])
    pairs = []
    i, j = rows, cols
    while i > 0 and j > 0:
        gain = similarity[i - 1, j - 1]
        if gain > 0 and table[i, j] == table[i - 1, j - 1] + gain:
            pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif table[i, j] == table[i - 1, j]:
            i -= 1
        else:
            j -= 1
    return pairs[::-1]


def line_similarity(predicted: list[int], actual: list[int]) -> Iterator[np.ndarray]:
    """The rows of the similarity of two line sequences (1 where the lines are equal)."""
    a = np.asarray(actual[:MAX_LENGTH], dtype=np.int64)
    for line in predicted[:MAX_LENGTH]:
        if -(2**63) <= line < 2**63:
            yield (a == line).astype(np.float64)
        else:  # no line has that number (and numpy < 2 would overflow on it)
            yield np.zeros(len(a))
