"""Choosing how many CPU threads PyTorch trains with, by timing real training steps."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from mnist_kit.torch_models import count_params

__all__ = ["ThreadTuner", "thread_choices", "SMALL_STEP_WORK"]

SMALL_STEP_WORK = 20_000_000  # parameters x batch size below which one CPU thread is fastest


def thread_choices(model: nn.Module, batch_size: int, available: int) -> list[int]:
    """Thread counts worth trying: all cores for big steps; for small ones, 1, 2 and all.

    Splitting a small step (this MLP at batch 32) over threads saves little compute and costs
    hand-offs; whether it pays depends on how busy the machine is, so `ThreadTuner` measures.
    """
    has_conv = any(isinstance(m, nn.Conv2d) for m in model.modules())
    if has_conv or count_params(model) * batch_size > SMALL_STEP_WORK:
        return [available]
    return sorted({1, min(2, available), available})


def _idle_cores() -> int:
    """Cores this process may use that other work is not already taking (1-minute load average).

    Counts this process itself as running: on an idle 2-core machine training here, the load
    is about 1 and both cores count as ours. Where the load is unknown (Windows), all cores.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return cores
    return max(1, min(cores, int(cores - load + 1.5)))


class ThreadTuner:
    """Picks the CPU thread count by timing real training steps with each candidate.

    No count is tried that needs more cores than the load average leaves idle (`_idle_cores`).
    The others take turns in blocks of `block` steps for up to `rounds` rounds (so a burst of
    other work on the machine hits each alike); the first step of a block pays for the switch
    and is not counted. A candidate 1.5x slower than the best after a round drops out at once
    (when the cores are busy, extra threads stall every step), and more threads must be at
    least 10% faster to win. The choice is measured again after `retune_every` steps, then
    after twice as many each time it stands, as the machine's load changes. No step is
    wasted: every one trains the model.
    """

    def __init__(
        self, candidates: Sequence[int], block: int = 8, rounds: int = 3, retune_every: int = 500
    ):
        self.all = sorted(set(candidates))
        self.block, self.rounds, self.retune_every = block, rounds, retune_every
        self.chosen: int | None = None
        self.history: list[int] = []  # every choice made, in order
        self._start_tuning()

    def _start_tuning(self) -> None:
        free = _idle_cores()
        self.active = [c for c in self.all if c <= free] or self.all[:1]
        self.times: dict[int, list[float]] = {c: [] for c in self.all}
        self._turn, self._within, self._round = 0, 0, 0
        self._tuning = len(self.active) > 1
        self._until_retune = self.retune_every
        torch.set_num_threads(self.active[0])
        if not self._tuning:
            self._choose(self.active[0])

    def _choose(self, count: int) -> None:
        if self.chosen is not None:
            same = count == self.chosen
            self.retune_every = self.retune_every * 2 if same else self.retune_every
        self.chosen = count
        self.history.append(count)
        torch.set_num_threads(count)
        self._tuning = False
        self._until_retune = self.retune_every

    def before_step(self) -> None:
        self._started = time.perf_counter()

    def after_step(self) -> None:
        if not self._tuning:
            if len(self.all) > 1:
                self._until_retune -= 1
                if self._until_retune <= 0:
                    self._start_tuning()
            return
        if self._within:  # the block's first step paid for the switch
            self.times[self.active[self._turn]].append(time.perf_counter() - self._started)
        self._within += 1
        if self._within < self.block:
            return
        self._within, self._turn = 0, self._turn + 1
        if self._turn == len(self.active):  # a round is complete
            self._turn, self._round = 0, self._round + 1
            means = {c: float(np.mean(self.times[c])) for c in self.active}
            fastest = min(means.values())
            self.active = [c for c in self.active if means[c] <= 1.5 * fastest]
            if self._round == self.rounds or len(self.active) == 1:
                best = self.active[0]
                for count in self.active[1:]:
                    if means[count] < 0.9 * means[best]:
                        best = count
                self._choose(best)
                return
        torch.set_num_threads(self.active[self._turn])
