"""Training batches: a dataset's items as tensors, flipped, with their paired targets and known
flows, and a resumable loader whose batch order is a pure function of (seed, step): resuming at
step N continues with exactly the batches a run without interruption would have seen."""
from __future__ import annotations

import queue
import threading
from typing import Any, Callable, Iterator

import numpy as np
import torch

from ganivid.data import FaceDataset, to_tensor
from ganivid.errors import DataError
from ganivid.priorgan import flip_landmarks


def make_batch(ds: FaceDataset, indices: np.ndarray, flips: np.ndarray) -> dict[str, torch.Tensor]:
    """Batch dict: x (B, 3, S, S), y (B, 17); with paired targets also x_t, y_t; with known
    flows flow_t, gap, c; with the crops' landmarks lm (B, 68, 2)."""
    images = np.stack([ds.image(int(i)) for i in indices])
    images[flips] = images[flips, :, ::-1]
    batch = {"x": to_tensor(images), "y": torch.from_numpy(ds.aus[indices].astype(np.float32))}
    if ds.has_pairs:
        pairs = [ds.pair(int(i)) for i in indices]
        targets = np.stack([p[0] for p in pairs])
        targets[flips] = targets[flips, :, ::-1]
        batch["x_t"] = to_tensor(targets)
        batch["y_t"] = torch.from_numpy(np.stack([p[1] for p in pairs]).astype(np.float32))
    if getattr(ds, "landmarks", None) is not None:  # a flow-prior model's GAN phase makes priors from them
        batch["lm"] = torch.from_numpy(np.stack([flip_landmarks(ds.landmarks[i], ds.image_size) if f
                                                 else ds.landmarks[i] for i, f in zip(indices, flips)]))
    if getattr(ds, "flows", None) is not None:
        flows = ds.flows[indices].astype(np.float32)  # (B, S, S, 2)
        gaps = ds.gaps[indices].astype(np.float32)
        flows[flips] = flows[flips, :, ::-1] * np.array([-1, 1], np.float32)  # mirrored: dx changes sign
        gaps[flips] = gaps[flips, :, ::-1]
        batch["flow_t"] = torch.from_numpy(np.ascontiguousarray(flows.transpose(0, 3, 1, 2)))
        batch["gap"] = torch.from_numpy(np.ascontiguousarray(gaps[:, None]))
        batch["c"] = torch.from_numpy(ds.changes[indices].astype(np.float32))
    return batch


class BatchLoader:
    """Batches for steps start_step, start_step + 1, ... prepared one ahead in a thread.

    Epoch e shuffles with numpy's generator seeded by (seed, e) and drops the last partial
    global batch; process `rank` of `world` takes its slice of each global batch.
    `make(ds, indices, flips)` builds a batch (default `make_batch`; real pairs add fields)."""

    def __init__(self, ds: FaceDataset, batch_size: int, *, seed: int, start_step: int = 0,
                 rank: int = 0, world: int = 1, flip: bool = True, prefetch: int = 2,
                 make: Callable[[FaceDataset, np.ndarray, np.ndarray], dict[str, torch.Tensor]] = make_batch) -> None:
        self.ds, self.batch_size, self.seed, self.rank, self.world, self.flip = ds, batch_size, seed, rank, world, flip
        self.make = make
        self.steps_per_epoch = len(ds) // (batch_size * world)
        if self.steps_per_epoch == 0:
            raise DataError(f"the dataset has {len(ds)} images, fewer than one batch of "
                            f"{batch_size * world}; lower train.batch_size or add images")
        self._epoch: tuple[int, np.ndarray, np.ndarray] | None = None
        self._queue: queue.Queue = queue.Queue(maxsize=prefetch)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, args=(start_step,), daemon=True)
        self._thread.start()

    def plan(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        """(indices, flips) of this process's batch at `step`."""
        epoch, offset = divmod(step, self.steps_per_epoch)
        if self._epoch is None or self._epoch[0] != epoch:
            rng = np.random.default_rng([self.seed, epoch])
            order = rng.permutation(len(self.ds))
            flips = rng.random(len(self.ds)) < 0.5 if self.flip else np.zeros(len(self.ds), bool)
            self._epoch = (epoch, order, flips)
        _, order, flips = self._epoch
        start = offset * self.batch_size * self.world + self.rank * self.batch_size
        sel = slice(start, start + self.batch_size)
        return order[sel], flips[sel]

    def _work(self, step: int) -> None:
        while not self._stop.is_set():
            try:
                item: Any = self.make(self.ds, *self.plan(step))
            except Exception as ex:  # surfaced in the training thread
                item = ex
            while not self._stop.is_set():
                try:
                    self._queue.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue
            step += 1

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        return self

    def __next__(self) -> dict[str, torch.Tensor]:
        item = self._queue.get()
        if isinstance(item, Exception):
            raise item
        return item

    def close(self) -> None:
        """Stop the prefetch thread."""
        self._stop.set()
        self._thread.join(timeout=5)
