"""Which windows each epoch and each process sees: the seeded per-epoch shuffle of the
training windows (shared between DDP processes) and the evaluation windows' split between
processes."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from torch.utils.data import Sampler

__all__ = ["EpochShuffleSampler", "process_share"]


class EpochShuffleSampler(Sampler[int]):
    """A new random order of ``n`` items each epoch that depends only on ``(seed, epoch)``.

    Lightning calls :meth:`set_epoch` before every training epoch. Because the order does not
    depend on how many epochs this process has already run, a run resumed from an epoch-end
    checkpoint sees the same batches as an uninterrupted one (a plain shuffled loader draws
    from a generator whose state a checkpoint does not keep).

    With ``replicas`` processes (DDP), process ``rank`` takes every ``replicas``-th item of the
    epoch's order, the order padded with its first items to a multiple of ``replicas`` (as
    ``torch.utils.data.DistributedSampler`` does), so every process has as many steps.
    """

    def __init__(self, n: int, seed: int = 0, epoch: int = 0, replicas: int = 1, rank: int = 0):
        self.n = int(n)
        self.seed = int(seed)
        self.epoch = int(epoch)
        self.replicas = max(int(replicas), 1)
        self.rank = int(rank)

    def set_epoch(self, epoch: int) -> None:
        """Use the order of ``epoch``."""
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[int]:
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(self.n)
        if self.replicas > 1:
            order = np.resize(order, len(self) * self.replicas)[self.rank :: self.replicas]
        return iter(order.tolist())

    def __len__(self) -> int:
        return -(-self.n // self.replicas)


def process_share(n: int, replicas: int, rank: int) -> list[int]:
    """The evaluation items of process ``rank`` of ``replicas``: one contiguous block each,
    every item in exactly one block (no padding, so no window is scored twice)."""
    bounds = np.linspace(0, n, max(replicas, 1) + 1).round().astype(int)
    return list(range(bounds[rank], bounds[rank + 1]))
