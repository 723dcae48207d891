"""Every wait of a run, for its mean, 95th percentile and largest, in memory that does not
grow with the run.

A run's summary gives numpy's figures over every task's wait (``numpy.mean``,
``numpy.percentile(..., 95)``, ``numpy.max``), and the percentile needs every
value.  :class:`Waits` keeps up to ``keep`` of them in memory (an ``array`` the
run appends to as its tasks end); beyond that, :meth:`Waits.settle` moves them
to an unlinked temporary file, 8 bytes a wait, and the figures are then taken
from the file a block at a time:

- the mean is numpy's pairwise sum, taken in the same blocks in the same order
  (numpy halves a sum of more than 128 values at a multiple of 8 and adds the
  halves; a block of at most :data:`BLOCK` values is summed by numpy itself),
  divided by the count, so it is numpy's to the bit;
- the percentile is numpy's ``linear`` method over the two order statistics it
  interpolates between, each found by counting passes over the file (a radix
  selection on the bits of the values, 16 at a time) until the candidates fit
  in memory, then ``numpy.partition``;
- a NaN anywhere makes every figure NaN, as in numpy.

Standard library only at import (numpy is imported when figures are taken):
the writer process loads this file by its path.
"""

from __future__ import annotations

import math
import os
import tempfile
from array import array
from collections.abc import Callable
from typing import IO, Any

__all__ = ["BLOCK", "KEEP", "Waits"]

KEEP = 1 << 20  # waits kept in memory (8 MB) before they go to the file
BLOCK = 1 << 16  # waits read from the file at a time
_PAIRWISE_LEAF = 128  # numpy sums at most this many values without halving them
_RADIX_BITS = 16


class Waits:
    """A run's waits, in the order its tasks ended (see the module's text).

    :param keep: waits kept in memory (default :data:`KEEP`); :meth:`settle` moves them to
        the file beyond this.
    :param spill_dir: where the file is made (default: the system's temporary directory);
        it is unlinked at once, so nothing is left behind.
    :param block: waits read from the file at a time (default :data:`BLOCK`).
    """

    def __init__(self, keep: int | None = None, spill_dir: str | None = None,
                 block: int | None = None) -> None:
        keep = KEEP if keep is None else keep
        block = BLOCK if block is None else block
        if keep < 1 or block < _PAIRWISE_LEAF:
            raise ValueError(f"keep must be at least 1 and block at least {_PAIRWISE_LEAF}")
        self.keep = keep
        self.block = block
        self.spill_dir = spill_dir
        self.values = array("d")  # the waits not yet in the file: appended to directly, never replaced
        self._file: IO[bytes] | None = None
        self._spilled = 0

    def __len__(self) -> int:
        return self._spilled + len(self.values)

    @property
    def spilled(self) -> int:
        """How many waits are in the file."""
        return self._spilled

    def append(self, wait_s: float) -> None:
        """Add one wait (a run's hot loops append to :attr:`values` and :meth:`settle` after)."""
        self.values.append(wait_s)
        if len(self.values) >= self.keep:
            self._spill()

    def settle(self) -> None:
        """Move the waits in memory to the file if there are ``keep`` or more."""
        if len(self.values) >= self.keep:
            self._spill()

    def _spill(self) -> None:
        if self._file is None:
            self._file = tempfile.TemporaryFile(prefix="rpiaas-waits-", dir=self.spill_dir)  # noqa: SIM115 (closed by close())
        self._file.seek(0, os.SEEK_END)
        self.values.tofile(self._file)
        self._file.flush()
        self._spilled += len(self.values)
        del self.values[:]

    def tobytes(self) -> bytes:
        """Every wait, in order, as the bytes of an ``array("d")``."""
        head = b""
        if self._file is not None:
            self._file.seek(0)
            head = self._file.read(self._spilled * 8)
        return head + self.values.tobytes()

    def frombytes(self, data: bytes) -> None:
        """Add the waits of :meth:`tobytes`, after those already here."""
        self.values.frombytes(data)
        self.settle()

    def clear(self) -> None:
        """Forget every wait (and the file)."""
        self.close()
        del self.values[:]

    def close(self) -> None:
        """Close the file; the waits in it are gone."""
        if self._file is not None:
            self._file.close()
            self._file = None
            self._spilled = 0

    def figures(self) -> tuple[float, float, float] | None:
        """numpy's mean, 95th percentile and largest wait, or ``None`` when there is none."""
        if not len(self):
            return None
        import numpy as np

        if self._file is None:
            w = np.frombuffer(self.values, dtype=np.float64)
            largest = float(w.max())
            if math.isnan(largest):
                return math.nan, math.nan, math.nan
            # numpy.percentile itself would import numpy.ma (20 ms) for its np.unique
            return float(w.mean()), _linear_percentile(len(w), 95, lambda k: float(np.partition(w, k)[k])), largest
        if self.values:
            self._spill()
        return _FileFigures(self._file, self._spilled, self.block, self.keep).figures()


def _linear_percentile(n: int, q: float, kth: Callable[[int], float]) -> float:
    """numpy's ``linear`` ``q``-th percentile of ``n`` values (no NaN among them), from
    ``kth(rank)``, the value of 0-based ``rank`` among the sorted values."""
    virtual = (n - 1) * (q / 100)
    if virtual >= n - 1:
        return kth(n - 1)
    previous = math.floor(virtual)
    gamma = virtual - previous
    a, b = kth(previous), kth(previous + 1)
    diff = b - a
    return b - diff * (1 - gamma) if gamma >= 0.5 else a + diff * gamma


class _FileFigures:
    """The figures of ``n`` waits in ``file`` (raw doubles), read ``block`` at a time."""

    def __init__(self, file: IO[bytes], n: int, block: int, keep: int) -> None:
        import numpy as np

        self.np = np
        self.fd = file.fileno()
        self.n = n
        self.block = block
        self.keep = keep

    def _read(self, start: int, count: int) -> Any:
        data = os.pread(self.fd, count * 8, start * 8)
        if len(data) != count * 8:
            raise OSError(f"the file of waits is short: {len(data)} bytes at {start * 8}, "
                          f"{count * 8} wanted")
        return self.np.frombuffer(data, dtype=self.np.float64)

    def _blocks(self) -> Any:
        for start in range(0, self.n, self.block):
            yield self._read(start, min(self.block, self.n - start))

    def figures(self) -> tuple[float, float, float]:
        largest = -math.inf
        for values in self._blocks():
            m = float(values.max())
            if math.isnan(m):
                return math.nan, math.nan, math.nan
            largest = max(largest, m)
        mean = self._sum(0, self.n) / self.n
        return mean, self._percentile(95), largest

    def _sum(self, start: int, count: int) -> float:
        """numpy's pairwise sum of ``count`` values from ``start``."""
        if count <= self.block:
            return float(self.np.add.reduce(self._read(start, count)))
        half = count // 2
        half -= half % 8
        return self._sum(start, half) + self._sum(start + half, count - half)

    def _percentile(self, q: float) -> float:
        """numpy's ``linear`` percentile (no NaN among the values)."""
        return _linear_percentile(self.n, q, self._kth)

    def _keys(self, values: Any) -> Any:
        """The values' bits as unsigned integers in the values' order (-0.0 as 0.0)."""
        np = self.np
        bits = (values + 0.0).view(np.uint64)
        return np.where(bits >> np.uint64(63), ~bits, bits | np.uint64(1 << 63))

    def _value(self, key: int) -> float:
        np = self.np
        bits = key & ~(1 << 63) if key >> 63 else ~key & ((1 << 64) - 1)
        return float(np.array([bits], dtype=np.uint64).view(np.float64)[0])

    def _kth(self, rank: int) -> float:
        """The value of 0-based ``rank`` among the sorted values."""
        np = self.np
        known, prefix = 0, 0  # the top ``known`` bits of the key sought
        while True:
            shift = np.uint64(64 - known - _RADIX_BITS)
            counts = np.zeros(1 << _RADIX_BITS, dtype=np.int64)
            for values in self._blocks():
                keys = self._keys(values)
                if known:
                    keys = keys[(keys >> np.uint64(64 - known)) == np.uint64(prefix)]
                counts += np.bincount((keys >> shift) & np.uint64((1 << _RADIX_BITS) - 1),
                                      minlength=1 << _RADIX_BITS)
            below = np.cumsum(counts)
            digit = int(np.searchsorted(below, rank, side="right"))
            if digit:
                rank -= int(below[digit - 1])
            prefix, known = (prefix << _RADIX_BITS) | digit, known + _RADIX_BITS
            if known == 64:
                return self._value(prefix)
            if counts[digit] <= self.keep:
                group = [keys[(keys >> np.uint64(64 - known)) == np.uint64(prefix)]
                         for keys in map(self._keys, self._blocks())]
                chosen = np.partition(np.concatenate(group), rank)[rank]
                return self._value(int(chosen))
