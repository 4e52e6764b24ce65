"""Batched generator inference: device, precision, batch size, out-of-memory back-off, dedupe.

`Engine.edit(crops, targets)` takes aligned face crops (RGB uint8) and target AU vectors and
returns the composited crops with the generator's attention and colour masks. Identical
(crop, target) pairs are computed once: within a batch they are deduplicated, across calls a
small LRU cache keyed by a hash of the crop bytes and the target answers repeats (a still
image under a constant curve runs the generator once per distinct target)."""
from __future__ import annotations

import contextlib
import ctypes
import hashlib
import sys
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ganivid.align import CROP_SPEC
from ganivid.aus import AU_NAMES, NUM_AUS
from ganivid.data import to_images, to_tensor
from ganivid.errors import CheckpointError, ConfigError, GanividError
from ganivid.losses import composite
from ganivid.networks import warp
from ganivid.warps import prior_flow

_DEFAULT_CPU_BATCH = 8
_AUTO_CUDA_BATCH = 64  # a first guess; out-of-memory halves it until it fits
_NO_CHANGE = 1e-3  # AU change below which a "change" model is not asked for any: far below what shows


@dataclass(frozen=True)
class Edit:
    """One edited crop: composited image (n, n, 3) uint8, retention attention (n, n) float32 in
    [0, 1] (1 keeps the (warped) input pixel) and colour mask (n, n, 3) uint8; a flow generator's
    edit also has its backward flow (n, n, 2) float32 in crop pixels and the warped crop
    (n, n, 3) uint8, which paste-back applies to the frame's own pixels."""

    image: np.ndarray
    attention: np.ndarray
    color: np.ndarray
    flow: np.ndarray | None = None
    warped: np.ndarray | None = None


class _Pass:
    """One generator pass: its outputs become `Edit`s on first demand, on whichever thread asks."""

    def __init__(self, x: torch.Tensor, color: torch.Tensor, attention: torch.Tensor,
                 flow: torch.Tensor | None = None):
        # x: what A retains, the input or its warp (B, 3, n, n); flow (B, 2, n, n) or None
        self._raw: tuple[torch.Tensor, ...] | None = (x, color, attention)  # (B, 3|3|1, n, n)
        self._flow = flow
        self._edits: list[Edit] = []
        self._lock = threading.Lock()

    @torch.inference_mode()
    def edits(self) -> list[Edit]:
        with self._lock:
            if self._raw is not None:
                x, color, attention = self._raw
                if x.device.type == "cpu":  # the same pixels in one numba pass
                    from ganivid.kernels import composite_uint8

                    images, colors = composite_uint8(x.numpy(), color.numpy(), attention.numpy())
                else:
                    out = composite(color, attention, x)  # A retains the input (GANIMATION.md)
                    images, colors = to_images(out), to_images(color)
                att = attention[:, 0].cpu().numpy()
                if self._flow is None:
                    self._edits = [Edit(images[i], att[i], colors[i]) for i in range(len(x))]
                else:
                    flows, warped = self._flow.permute(0, 2, 3, 1).float().cpu().numpy(), to_images(x)
                    self._edits = [Edit(images[i], att[i], colors[i], flows[i], warped[i]) for i in range(len(x))]
                self._raw = None
        return self._edits


class _Unchanged:
    """The edit of a request for no change: the crop itself, without running the network."""

    def __init__(self, crop: np.ndarray, flow: bool):
        n = crop.shape[0]
        self._edit = Edit(crop, np.ones((n, n), np.float32), crop, np.zeros((n, n, 2), np.float32) if flow else None,
                          crop if flow else None)

    def edits(self) -> list[Edit]:
        return [self._edit]


class Pending:
    """An edit of `Engine.edit_later`: `get()` waits until the network has run (on any thread),
    composites (the first call per batch, elementwise, so the same pixels as `Engine.edit`) and
    returns the `Edit`."""

    def __init__(self, batch: _Pass | _Unchanged | None = None, index: int = 0):
        self._batch, self._index = batch, index
        self._error: BaseException | None = None
        self._ready = threading.Event()
        if batch is not None:
            self._ready.set()

    def _resolve(self, batch: _Pass | None, index: int = 0, error: BaseException | None = None) -> None:
        self._batch, self._index, self._error = batch, index, error
        self._ready.set()

    def get(self) -> Edit:
        self._ready.wait()
        if self._error is not None:  # the call computing it failed: so does every call sharing it
            raise GanividError(f"the generator failed on another thread: {self._error}") from self._error
        return self._batch.edits()[self._index]


def resolve_device(spec: str | torch.device = "auto") -> torch.device:
    """`auto` (CUDA if present, else CPU), `cpu`, `cuda` or `cuda:N` -> a usable torch.device."""
    if isinstance(spec, torch.device):
        spec = str(spec)
    s = spec.strip().lower()
    if s == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(s)
    except RuntimeError:
        raise ConfigError(f"unknown device {spec!r}; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {spec!r} requested but CUDA is not available; use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"device {spec!r} does not exist; {torch.cuda.device_count()} CUDA device(s) found")
    elif dev.type != "cpu":
        raise ConfigError(f"unsupported device {spec!r}; use auto, cpu, cuda or cuda:N")
    return dev


def check_compatible(crop_spec: str, au_names: Sequence[str], source: str = "checkpoint") -> None:
    """Refuse a model made for another crop framing or another AU set (one-line CheckpointError)."""
    if crop_spec != CROP_SPEC:
        raise CheckpointError(f"{source} was trained on crops {crop_spec!r}, ganivid crops {CROP_SPEC!r}; "
                              "retrain or convert the model")
    if tuple(au_names) != AU_NAMES:
        raise CheckpointError(f"{source} is conditioned on {len(au_names)} AUs, ganivid uses the "
                              f"{NUM_AUS} OpenFace AUs ({' '.join(AU_NAMES)})")


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters
_MMAP_FROM = 32 << 20  # bytes: blocks this big come from mmap (glibc's largest setting on 64-bit)
# Freed heap kept before trimming. 128 MiB: a CPU batch's activations free more than 32 MiB at
# the top of the heap, which 32 MiB handed back every batch (~1,000 page faults per crop). With
# 128 the generator alone took 7 % less CPU per crop (4 alternating runs each), `animate` 3-4 %
# less per frame of its render (+1.5 % fps on one torch thread, +5 % on two; 6 alternating runs
# each, benchmarks/ab_revisions.py), and peak RSS of a 60 s clip stayed 1.03-1.07x that of a
# 10 s clip (each process's own VmHWM; 0.99-1.06x with 32 MiB).
_TRIM_FROM = 128 << 20  # bytes
_malloc_kept: bool | None = None


def keep_freed_memory() -> bool:
    """Make glibc's malloc keep up to 128 MiB of freed heap for reuse (process-wide, once); False without glibc."""
    # CPU inference allocates and frees tens of MB of activations per batch, and each video
    # frame several arrays of ~1 MB; glibc's defaults hand those back to the kernel, so they
    # return as fresh zeroed pages: ~1400 page faults (2-3 ms CPU) per frame of `animate`,
    # ~500 per crop in the generator alone. Kept instead, peak RSS grows by a few tens of MB.
    global _malloc_kept
    if _malloc_kept is None:
        _malloc_kept = False
        if sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL("libc.so.6")
                _malloc_kept = bool(libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_FROM)
                                    and libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_FROM))
            except (OSError, AttributeError):  # musl or another libc: nothing to tune
                pass
    return _malloc_kept


def _key(crop: np.ndarray, target: np.ndarray, *more: np.ndarray | None) -> bytes:
    h = hashlib.blake2b(np.ascontiguousarray(crop).data, digest_size=16)
    h.update(np.asarray(target, np.float32).tobytes())
    for m in more:
        if m is not None:
            h.update(np.asarray(m, np.float32).tobytes())
    return h.digest()


class Engine:
    """A generator ready for inference on one device.

    Args:
        generator: a `ganivid.networks.Generator` (any module with forward(x, aus) -> (color, attention)).
        device: `auto`, `cpu`, `cuda` or `cuda:N`.
        batch_size: crops per forward pass; None = 8 on CPU, automatic on CUDA.
        half: autocast to bf16/fp16; None = on CUDA only (CPU always runs fp32).
        cache_size: distinct (crop, target) results kept across calls.
    """

    def __init__(self, generator: torch.nn.Module, image_size: int, device: str | torch.device = "auto",
                 batch_size: int | None = None, half: bool | None = None, cache_size: int = 32):
        self.device = resolve_device(device)
        if self.device.type == "cpu":
            keep_freed_memory()
        if batch_size is not None and batch_size < 1:
            raise ConfigError(f"--batch-size must be at least 1, got {batch_size}")
        if half and self.device.type != "cuda":
            raise ConfigError("half precision needs a CUDA device")
        self.half = self.device.type == "cuda" if half is None else half
        self.batch_size = batch_size or (_AUTO_CUDA_BATCH if self.device.type == "cuda" else _DEFAULT_CPU_BATCH)
        self._auto_batch = batch_size is None
        self.image_size = image_size
        self.generator = generator.to(self.device).eval()
        cfg = getattr(generator, "cfg", None)
        # Flow generators move the frame's own pixels at paste-back; "change" models read target - source.
        self.flow = bool(getattr(cfg, "flow", False))
        self.by_change = getattr(cfg, "condition", "target") == "change"
        self.prior = bool(getattr(cfg, "flow_prior", False))
        self._cache: OrderedDict[bytes, Pending] = OrderedDict()
        self._lock = threading.Lock()  # `edit_later` may run on several threads (pipeline workers)
        self.cache_size = cache_size
        self.images_computed = 0  # crops that went through the generator (tests and benchmarks)
        self.forward_calls = 0

    @classmethod
    def from_checkpoint(cls, path: str, device: str | torch.device = "auto", batch_size: int | None = None,
                        half: bool | None = None) -> Engine:
        """Load an inference checkpoint and check it fits ganivid's crops and AUs."""
        from ganivid.checkpoint import load_generator

        dev = resolve_device(device)
        generator, info = load_generator(path, dev)
        check_compatible(info.crop_spec, info.au_names, source=str(path))
        return cls(generator, info.model.image_size, dev, batch_size, half)

    def _autocast(self):
        if not self.half:
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)

    @torch.inference_mode()
    def _forward(self, crops: np.ndarray, conds: np.ndarray, priors: np.ndarray | None = None) -> list[Pending]:
        x = to_tensor(crops).to(self.device)  # (B, 3, n, n) in [-1, 1]
        y = torch.from_numpy(np.ascontiguousarray(conds, np.float32)).to(self.device)  # (B, 17)
        extra = () if priors is None else (torch.from_numpy(priors).permute(0, 3, 1, 2).to(self.device),)  # (B, 2, n, n)
        with self._autocast():
            outputs = self.generator(x, y, *extra)  # (B, 3, n, n) tanh, (B, 1, n, n) sigmoid[, (B, 2, n, n) px]
        color, attention = outputs[0].float(), outputs[1].float()
        if len(outputs) > 2:
            flow = outputs[2].float()
            done = _Pass(warp(x, flow), color, attention, flow)
        else:
            done = _Pass(x, color, attention)
        if self.device.type != "cpu":  # on the GPU it is cheap, and inside the out-of-memory back-off
            done.edits()
        with self._lock:
            self.forward_calls += 1
            self.images_computed += len(crops)
        return [Pending(done, i) for i in range(len(crops))]

    @torch.inference_mode()
    def warm_up(self) -> None:
        """One pass of a full batch of blank crops, neither counted nor cached: the first real
        batch then finds memory and kernels ready. `animate` runs it beside the analysis on CUDA
        only: on CPU it saves ~0.04 s and costs the analysis more."""
        x = torch.zeros(self.batch_size, 3, self.image_size, self.image_size, device=self.device)
        y = torch.zeros(self.batch_size, NUM_AUS, device=self.device)
        extra = (torch.zeros(self.batch_size, 2, self.image_size, self.image_size, device=self.device),) if self.prior else ()
        try:
            with self._autocast():
                self.generator(x, y, *extra)
        except torch.cuda.OutOfMemoryError:  # the real batches back off by themselves
            torch.cuda.empty_cache()

    def _run(self, crops: np.ndarray, conds: np.ndarray, priors: np.ndarray | None = None) -> list[Pending]:
        """Forward in chunks of `batch_size`, halving it on CUDA out-of-memory."""
        out: list[Pending] = []
        i = 0
        while i < len(crops):
            n = self.batch_size
            try:
                out += self._forward(crops[i:i + n], conds[i:i + n], None if priors is None else priors[i:i + n])
                i += n
            except torch.cuda.OutOfMemoryError:
                torch.cuda.empty_cache()
                if n == 1:
                    raise GanividError("out of GPU memory even with batch size 1; use --device cpu "
                                       "or a smaller model") from None
                self.batch_size = max(1, n // 2)
        return out

    def edit(self, crops: Sequence[np.ndarray], targets: np.ndarray, sources: np.ndarray | None = None,
             landmarks: np.ndarray | None = None) -> list[Edit]:
        """Edit crops (each (n, n, 3) uint8, n = image_size) towards targets (B, 17) in [0, 1];
        `sources` (B, 17): each face's own AUs (NaN read as 0), which models conditioned on the
        change need (a target equal to its source then returns the crop untouched); `landmarks`
        (B, 68, 2) in crop pixels: what models with a landmark flow prior move."""
        return [p.get() for p in self.edit_later(crops, targets, sources, landmarks)]

    def edit_later(self, crops: Sequence[np.ndarray], targets: np.ndarray,
                   sources: np.ndarray | None = None, landmarks: np.ndarray | None = None) -> list[Pending]:
        """`edit` with the composite and uint8 conversion (~1.5% of a CPU pass) left to the
        caller's `Pending.get()`, e.g. on another thread than the network's. Safe to call from
        several threads at once (CPU: one torch thread each keeps every core busy)."""
        targets = np.asarray(targets, np.float32).reshape(len(crops), -1)
        if targets.shape[1] != NUM_AUS:
            raise ConfigError(f"targets need {NUM_AUS} AUs, got {targets.shape[1]}")
        if self.by_change:
            if sources is None:
                raise ConfigError("this model edits by the change from the face's own AUs: pass its sources")
            sources = np.nan_to_num(np.asarray(sources, np.float32).reshape(targets.shape), nan=0.0)
            conds = np.clip(targets - sources, -1, 1)
            conds[np.abs(conds) < _NO_CHANGE] = 0  # rounding (curves, still targets) is not a request
        else:
            sources, conds = None, targets
        for c in crops:
            if c.shape != (self.image_size, self.image_size, 3):
                raise ConfigError(f"crop of shape {c.shape}, model expects ({self.image_size}, {self.image_size}, 3)")
        if self.prior:
            if landmarks is None:
                raise ConfigError("this model moves the face's landmarks: pass them (B, 68, 2) in crop pixels")
            landmarks = np.asarray(landmarks, np.float32).reshape(len(crops), 68, 2)
        keys = [_key(c, t, None if sources is None else sources[i], None if landmarks is None else landmarks[i])
                for i, (c, t) in enumerate(zip(crops, targets))]
        todo: dict[bytes, int] = {}  # distinct uncached key -> first index
        with self._lock:  # claim the uncached keys: a concurrent call with the same key waits on ours
            for i, k in enumerate(keys):
                if k not in self._cache and k not in todo:
                    todo[k] = i
                    self._cache[k] = Pending()
            out = [self._cache[k] for k in keys]
            for k in keys:
                self._cache.move_to_end(k)
            while len(self._cache) > self.cache_size:  # `out` holds its own
                self._cache.popitem(last=False)
        if todo and self.by_change:  # no change asked: the crop as it is, bit for bit
            for k, i in list(todo.items()):
                if not conds[i].any():
                    out[i]._resolve(_Unchanged(crops[i], self.flow))
                    del todo[k]
        if todo:
            idx = list(todo.values())
            try:
                priors = np.stack([prior_flow(self.image_size, landmarks[i], conds[i]) for i in idx]) if self.prior else None
                results = self._run(np.stack([crops[i] for i in idx]), conds[idx], priors)
            except BaseException as ex:
                with self._lock:
                    for k in todo:
                        if self._cache.get(k) is out[todo[k]]:
                            del self._cache[k]
                for k in todo:
                    out[todo[k]]._resolve(None, error=ex)
                raise
            for k, r in zip(todo, results):
                out[todo[k]]._resolve(r._batch, r._index)
        return out


def load_engine(model=None, device: str = "auto", batch_size: int | None = None) -> Engine:
    """The inference engine of `model` (a path; default: the shipped models/ganivid.safetensors);
    an already loaded `Engine` is returned as it is, so callers editing many clips load once."""
    from ganivid.animate import DEFAULT_MODEL

    if isinstance(model, Engine):
        return model
    if model is None:
        if not DEFAULT_MODEL.is_file():
            raise CheckpointError(f"the shipped model {DEFAULT_MODEL} is missing; pass --model PATH")
        model = DEFAULT_MODEL
    return Engine.from_checkpoint(str(model), device, batch_size)
