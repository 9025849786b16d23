"""Decimation: a series of any length reduced to what a plot of a given width can show.

- :class:`DecimatedSeries` holds an append-only series in at most ``capacity`` buckets
  that keep each stretch's min and max, merged pairwise when full -- so appending is
  O(1) amortised and drawing costs O(plot width), never O(iterations). A one-step spike
  survives every merge because the bucket keeps its max.
- :func:`buckets_of` / :func:`reduce_buckets` / :func:`bucket_points` turn points or
  buckets into at most one bucket per column and back into points to draw.
- :func:`envelope` does the same for a fixed series held as numpy arrays (a baseline run
  read from disk), clipped to an iteration range.

Pure Python and numpy; no Textual.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

import numpy as np


@dataclass
class Bucket:
    """A stretch of consecutive points reduced to its extremes and its last value."""

    x0: float
    x1: float
    lo: float
    lo_x: float
    hi: float
    hi_x: float
    last: float
    n: int = 1

    @classmethod
    def point(cls, x: float, y: float) -> "Bucket":
        return cls(x, x, y, x, y, x, y, 1)

    def absorb(self, other: "Bucket") -> None:
        """Merge a later bucket into this one."""
        self.x1 = other.x1
        if other.lo < self.lo:
            self.lo, self.lo_x = other.lo, other.lo_x
        if other.hi > self.hi:
            self.hi, self.hi_x = other.hi, other.hi_x
        self.last = other.last
        self.n += other.n

    def copy(self) -> "Bucket":
        return Bucket(self.x0, self.x1, self.lo, self.lo_x, self.hi, self.hi_x, self.last, self.n)


def reduce_buckets(buckets: list[Bucket], max_buckets: int) -> list[Bucket]:
    """Merge neighbours until at most ``max_buckets`` remain (O(len(buckets)))."""
    max_buckets = max(1, max_buckets)
    if len(buckets) <= max_buckets:
        return buckets
    group = math.ceil(len(buckets) / max_buckets)
    merged: list[Bucket] = []
    # Built-in min/max over each group rather than absorb() pair by pair: this runs on
    # every redraw. Both keep the earliest extreme on ties, as absorb does.
    for start in range(0, len(buckets), group):
        chunk = buckets[start : start + group]
        first, last = chunk[0], chunk[-1]
        low = min(chunk, key=_lo)
        high = max(chunk, key=_hi)
        merged.append(Bucket(first.x0, last.x1, low.lo, low.lo_x, high.hi, high.hi_x, last.last, sum(b.n for b in chunk)))
    return merged


def _lo(bucket: Bucket) -> float:
    return bucket.lo


def _hi(bucket: Bucket) -> float:
    return bucket.hi


def buckets_of(xs: list[float], ys: list[float], max_buckets: int) -> list[Bucket]:
    """Consecutive points straight into at most ``max_buckets`` buckets (O(len(xs)))."""
    n = len(xs)
    group = max(1, math.ceil(n / max(1, max_buckets)))
    out: list[Bucket] = []
    for start in range(0, n, group):
        end = min(n, start + group)
        segment = ys[start:end]
        lo = start + segment.index(min(segment))
        hi = start + segment.index(max(segment))
        out.append(Bucket(xs[start], xs[end - 1], ys[lo], xs[lo], ys[hi], xs[hi], ys[end - 1], end - start))
    return out


def bucket_points(buckets: Iterable[Bucket], envelope: bool) -> tuple[list[float], list[float]]:
    """Points to draw: min and max of each bucket in the order they happened, or the last value."""
    xs: list[float] = []
    ys: list[float] = []
    for bucket in buckets:
        if not envelope or bucket.n == 1 or bucket.lo == bucket.hi:
            xs.append(bucket.x1 if not envelope else bucket.hi_x)
            ys.append(bucket.last if not envelope else bucket.hi)
            continue
        first, second = ((bucket.lo_x, bucket.lo), (bucket.hi_x, bucket.hi))
        if second[0] < first[0]:
            first, second = second, first
        xs.extend((first[0], second[0]))
        ys.extend((first[1], second[1]))
    return xs, ys


class DecimatedSeries:
    """An append-only series held in at most ``capacity`` buckets.

    Each bucket covers ``span`` points; when the buckets overflow, neighbours are merged
    pairwise and ``span`` doubles. Memory and drawing cost stay bounded by ``capacity``.
    """

    def __init__(self, capacity: int = 512):
        if capacity < 2:
            raise ValueError("capacity must be >= 2")
        self.capacity = capacity
        self.span = 1
        self.count = 0
        self._buckets: list[Bucket] = []

    def __len__(self) -> int:
        return len(self._buckets)

    def append(self, x: float, y: float) -> None:
        self.count += 1
        point = Bucket.point(x, y)
        if self._buckets and self._buckets[-1].n < self.span:
            self._buckets[-1].absorb(point)
            return
        self._buckets.append(point)
        if len(self._buckets) > self.capacity:
            self._buckets = reduce_buckets(self._buckets, math.ceil(len(self._buckets) / 2))
            self.span *= 2

    def buckets(self, max_buckets: int) -> list[Bucket]:
        return reduce_buckets(self._buckets, max_buckets)

    @property
    def last(self) -> float | None:
        return self._buckets[-1].last if self._buckets else None


def envelope(xs: np.ndarray, ys: np.ndarray, first: float, last: float, max_buckets: int) -> tuple[np.ndarray, np.ndarray]:
    """Points of the sorted series (``xs``, ``ys``) with ``first <= x <= last``, at most
    ``max_buckets`` buckets of (min, max) in the order they happened.

    Costs O(log n) to find the range plus O(points in it) with numpy, so a baseline of a
    long run redraws as cheaply as the live curves do.
    """
    start = int(np.searchsorted(xs, first, side="left"))
    stop = int(np.searchsorted(xs, last, side="right"))
    x, y = xs[start:stop], ys[start:stop]
    n = x.size
    max_buckets = max(1, max_buckets)
    if n <= 2 * max_buckets:
        return x, y
    group = math.ceil(n / max_buckets)
    starts = np.arange(0, n, group)
    ends = np.minimum(starts + group, n) - 1
    low = np.minimum.reduceat(y, starts)
    high = np.maximum.reduceat(y, starts)
    # Min at the bucket's start and max at its end (or the other way round when the
    # stretch falls): a shape close enough to the true order for a faint background curve.
    falling = y[ends] < y[starts]
    first_y = np.where(falling, high, low)
    second_y = np.where(falling, low, high)
    out_x = np.empty(2 * starts.size)
    out_y = np.empty(2 * starts.size)
    out_x[0::2], out_x[1::2] = x[starts], x[ends]
    out_y[0::2], out_y[1::2] = first_y, second_y
    return out_x, out_y
