"""Checkpoints: one training file per save (resumable), and the inference export (safetensors).

Nothing here executes code from a file: training checkpoints load with
`torch.load(weights_only=True)` (configs are stored as plain dicts, RNG states as tensors and
lists), inference exports are safetensors with JSON metadata."""
from __future__ import annotations

import json
import pickle
import random
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganivid.align import CROP_SPEC
from ganivid.aus import AU_NAMES
from ganivid.config import ModelConfig, model_config_from_dict
from ganivid.errors import CheckpointError, ConfigError
from ganivid.fileio import atomic_path
from ganivid.networks import Generator

TRAIN_FORMAT = "ganivid-train-1"
EXPORT_FORMAT = "ganivid-generator-1"
CKPT_PATTERN = re.compile(r"^ckpt_(\d+)\.pt$")


def _atomic(path: Path, write) -> None:
    """Call write(tmp) on a temporary file beside `path`, then rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        write(tmp)


def rng_state() -> dict[str, Any]:
    """RNG states of torch (CPU and CUDA), numpy and Python as weights_only-loadable values."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *map(float, np_state[2:])],
        "python": [py_state[0], list(py_state[1]), py_state[2]],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the states saved by rng_state()."""
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), int(pos), int(has_gauss), float(cached)))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def checkpoint_path(run_dir: Path, step: int) -> Path:
    """Where the training checkpoint of `step` lives."""
    return Path(run_dir) / f"ckpt_{step:08d}.pt"


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Training checkpoints of a run directory, oldest first."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in run_dir.iterdir() if (m := CKPT_PATTERN.match(p.name))]
    return [p for _, p in sorted(found)]


def save_checkpoint(run_dir: Path, state: dict[str, Any], keep: int) -> Path:
    """Write `state` (see train.py) atomically as ckpt_<step>.pt and keep the newest `keep`."""
    path = checkpoint_path(run_dir, state["step"])
    _atomic(path, lambda tmp: torch.save({"format": TRAIN_FORMAT, **state}, tmp))
    for old in list_checkpoints(run_dir)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def _check_file(path: Path, what: str) -> None:
    """Refuse, naming what it is, a path that is not a regular file: missing, a folder, a device."""
    if path.is_file():
        return
    if not path.exists():
        raise CheckpointError(f"{what} {path} does not exist")
    kind = "a folder" if path.is_dir() else "not a regular file (a device or a pipe)"
    raise CheckpointError(f"{what} {path} is {kind}; give a .safetensors model or a ckpt_*.pt checkpoint file")


def _check_au_names(names: tuple[str, ...], path: Path) -> None:
    """Refuse a model conditioned on another AU list, naming the first AU that differs."""
    if names == AU_NAMES:
        return
    for i, (got, want) in enumerate(zip(names, AU_NAMES)):
        if got != want:
            raise CheckpointError(f"{path} is conditioned on {got} as AU {i + 1}, where ganivid uses {want}; "
                                  f"ganivid's {len(AU_NAMES)} AUs are {' '.join(AU_NAMES)}")
    extra = names[len(AU_NAMES):] or AU_NAMES[len(names):]
    which = "has extra AUs" if len(names) > len(AU_NAMES) else "lacks AUs"
    raise CheckpointError(f"{path} {which} {' '.join(extra)}; ganivid's {len(AU_NAMES)} AUs are {' '.join(AU_NAMES)}")


def _torch_load(path: Path) -> Any:
    _check_file(path, "checkpoint")
    try:
        with open(path, "rb") as f:  # a file, not a name: torch.load reads any *.safetensors name as safetensors
            if f.read(9)[8:] == b"{":  # safetensors: a 64-bit header length, then its JSON
                raise CheckpointError(f"{path} is an inference model (safetensors), not a training checkpoint")
            f.seek(0)
            return torch.load(f, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as ex:
        if "weights_only" in str(ex):
            raise CheckpointError(f"refusing to load {path}: it holds Python objects, not only "
                                  f"weights and plain data") from None
        raise CheckpointError(f"{path} is not a ganivid checkpoint (unreadable: {str(ex).splitlines()[0]})") from None
    except (RuntimeError, EOFError, OSError, ValueError) as ex:
        first = str(ex).splitlines()[0] if str(ex) else type(ex).__name__
        raise CheckpointError(f"{path} is not a ganivid checkpoint (unreadable: {first})") from None


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A training checkpoint as a dict; foreign, damaged or unsafe files raise CheckpointError."""
    path = Path(path)
    state = _torch_load(path)
    if not isinstance(state, dict) or state.get("format") != TRAIN_FORMAT:
        raise CheckpointError(f"{path} is not a ganivid training checkpoint")
    state["model_config"] = _model_config(state.get("model"), path)
    return state


def _model_config(values: Any, path: Path) -> ModelConfig:
    if not isinstance(values, dict):
        raise CheckpointError(f"{path} has no model config")
    try:
        return model_config_from_dict(values, str(path))
    except ConfigError as ex:
        raise CheckpointError(f"{path} has an unusable model config: {ex}") from None


def check_same_model(saved: ModelConfig, wanted: ModelConfig, path: Path) -> None:
    """Raise CheckpointError naming the differences when a checkpoint has another architecture."""
    a, b = asdict(saved), asdict(wanted)
    diff = [f"{k}={a[k]!r} (config says {b[k]!r})" for k in a if a[k] != b[k]]
    if diff:
        raise CheckpointError(f"{path} was trained with another model config: {', '.join(diff)}")


@dataclass(frozen=True)
class InferenceInfo:
    """What an inference file says about its generator."""

    model: ModelConfig
    au_names: tuple[str, ...]
    crop_spec: str
    provenance: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None


def save_inference(path: Path, generator: Generator, model: ModelConfig, *,
                   au_names: tuple[str, ...] = AU_NAMES, crop_spec: str = CROP_SPEC,
                   provenance: dict[str, Any] | None = None) -> Path:
    """Write the generator as safetensors with JSON metadata (config, AU names, crop spec,
    provenance); atomic, so a failed export never leaves a half-written file."""
    from safetensors.torch import save_file

    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder; give a file name such as {path / 'model.safetensors'}")
    if len(au_names) != model.num_aus:
        raise CheckpointError(f"{len(au_names)} AU names for a model with {model.num_aus} AUs")
    tensors = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in generator.state_dict().items()}
    meta = {
        "format": EXPORT_FORMAT,
        "model_config": json.dumps(asdict(model)),
        "au_names": json.dumps(list(au_names)),
        "crop_spec": crop_spec,
        "provenance": json.dumps({"created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **(provenance or {})}),
    }
    _atomic(path, lambda tmp: save_file(tensors, str(tmp), metadata=meta))
    return path


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: f.get_tensor(k) for k in f.keys()}, f.metadata() or {}
    except Exception as ex:  # safetensors raises its own error types for damaged files
        raise CheckpointError(f"{path} is neither a ganivid model (safetensors) nor a training "
                              f"checkpoint ({str(ex).splitlines()[0]})") from None


def load_generator(path: str | Path, device: str | torch.device = "cpu") -> tuple[Generator, InferenceInfo]:
    """The generator of an inference export (or of a training checkpoint), in eval mode.

    Raises:
        CheckpointError: missing, damaged or foreign file, or weights that do not fit the config.
    """
    path = Path(path)
    _check_file(path, "model file")
    with open(path, "rb") as f:
        magic = f.read(2)
    if magic == b"PK":  # a torch zip file: a training checkpoint
        state = load_checkpoint(path)
        model, weights = state["model_config"], state["generator"]
        info = InferenceInfo(model, tuple(state.get("au_names", AU_NAMES)), state.get("crop_spec", CROP_SPEC),
                             {"step": state.get("step"), "train_config": state.get("train", {})}, path)
    else:
        weights, meta = _read_safetensors(path)
        if meta.get("format") != EXPORT_FORMAT:
            raise CheckpointError(f"{path} is not a ganivid generator export (no ganivid metadata)")
        try:
            model = _model_config(json.loads(meta["model_config"]), path)
            info = InferenceInfo(model, tuple(json.loads(meta["au_names"])), meta["crop_spec"],
                                 json.loads(meta.get("provenance", "{}")), path)
        except (KeyError, json.JSONDecodeError) as ex:
            raise CheckpointError(f"{path} has damaged ganivid metadata ({ex})") from None
    _check_au_names(info.au_names, path)
    generator = Generator(model)
    _check_weights(generator, weights, path)
    generator.load_state_dict(weights)
    return generator.to(device).eval(), info


def _check_weights(module: torch.nn.Module, weights: dict[str, torch.Tensor], path: Path) -> None:
    """Raise CheckpointError naming the first weight that does not fit the module."""
    expected = module.state_dict()
    for key in sorted(set(expected) | set(weights)):
        if key not in weights or key not in expected:
            where = "missing from" if key not in weights else "unexpected in"
            raise CheckpointError(f"{path}: weight {key} is {where} the file for its model config")
        if weights[key].shape != expected[key].shape:
            raise CheckpointError(f"{path}: weight {key} has shape {tuple(weights[key].shape)}, its model "
                                  f"config needs {tuple(expected[key].shape)}")


def resolve_checkpoint(path: str | Path) -> Path:
    """A training checkpoint file, or the newest one in a run directory."""
    path = Path(path)
    if path.is_dir():
        found = list_checkpoints(path)
        if not found:
            raise CheckpointError(f"no training checkpoint (ckpt_*.pt) in {path}")
        return found[-1]
    return path


def export(checkpoint: str | Path, out: str | Path) -> Path:
    """Inference export of a training checkpoint (or of the newest one in a run directory)."""
    src = resolve_checkpoint(checkpoint)
    state = load_checkpoint(src)
    model = state["model_config"]
    generator = Generator(model)
    _check_weights(generator, state["generator"], src)
    generator.load_state_dict(state["generator"])
    provenance = {"step": state["step"], "train_config": state.get("train", {}),
                  "dataset": state.get("dataset", ""), "checkpoint": src.name}
    return save_inference(Path(out), generator, model, au_names=tuple(state.get("au_names", AU_NAMES)),
                          crop_spec=state.get("crop_spec", CROP_SPEC), provenance=provenance)
