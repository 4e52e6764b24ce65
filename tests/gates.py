"""Real generators behind thread gates, for tests of concurrent inference."""
from __future__ import annotations

import threading

import torch


class Gate(torch.nn.Module):
    """The real generator behind a gate: its first call waits until the test opens it."""

    def __init__(self, generator: torch.nn.Module, fail: bool = False):
        super().__init__()
        self.generator, self.fail = generator, fail
        self.entered, self.open = threading.Event(), threading.Event()

    def forward(self, x, aus):
        if not self.entered.is_set():
            self.entered.set()
            assert self.open.wait(10)
            if self.fail:
                raise RuntimeError("generator broke")
        return self.generator(x, aus)


class Rendezvous(torch.nn.Module):
    """The real generator; its first `workers` calls wait for each other (proof that they run at
    once), and call number `fail_at` raises."""

    def __init__(self, generator: torch.nn.Module, workers: int, fail_at: int = 0):
        super().__init__()
        self.generator, self.fail_at = generator, fail_at
        self.barrier = threading.Barrier(workers, timeout=10)
        self.calls, self.threads, self.lock = 0, set(), threading.Lock()

    def forward(self, x, aus):
        with self.lock:
            self.calls += 1
            call = self.calls
            self.threads.add(threading.current_thread().name)
        if call <= self.barrier.parties:
            self.barrier.wait()
        if call == self.fail_at:
            raise RuntimeError("generator broke")
        return self.generator(x, aus)
