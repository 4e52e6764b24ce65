"""Training checkpoints and inference exports: round trips, pruning, refusal of foreign files."""
import json
import random

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from ganivid.align import CROP_SPEC
from ganivid.aus import AU_NAMES
from ganivid.checkpoint import (export, list_checkpoints, load_checkpoint, load_generator, rng_state,
                                save_checkpoint, save_inference, set_rng_state)
from ganivid.config import ModelConfig
from ganivid.errors import CheckpointError
from ganivid.networks import Critic, Generator

TINY = ModelConfig(image_size=32, conv_dim=8, repeat_num=1, critic_dim=8)


def _state(step):
    torch.manual_seed(step)
    g, d = Generator(TINY), Critic(TINY)
    opt = torch.optim.Adam(g.parameters())
    g(torch.zeros(1, 3, 32, 32), torch.zeros(1, 17))[0].sum().backward()
    opt.step()
    return {"step": step, "model": TINY.__dict__.copy(), "train": {"lr_g": 1e-4}, "generator": g.state_dict(),
            "critic": d.state_dict(), "opt_g": opt.state_dict(), "opt_d": {}, "rng": [rng_state()]}


def test_training_checkpoint_round_trip_and_keep_last_k(tmp_path):
    for step in (10, 20, 30, 40):
        path = save_checkpoint(tmp_path, _state(step), keep=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["ckpt_00000030.pt", "ckpt_00000040.pt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt_00000030.pt", "ckpt_00000040.pt"]  # no temp files
    loaded = load_checkpoint(path)
    assert loaded["step"] == 40 and loaded["model_config"] == TINY
    for k, v in _state(40)["generator"].items():
        assert torch.equal(loaded["generator"][k], v)
    assert loaded["opt_g"]["state"][0]["exp_avg"].shape == loaded["generator"]["main.0.weight"].shape


def test_rng_state_round_trip():
    torch.manual_seed(1), np.random.seed(1), random.seed(1)
    state = rng_state()
    a = (torch.rand(3), np.random.rand(3), random.random(), np.random.randn())
    set_rng_state(state)
    b = (torch.rand(3), np.random.rand(3), random.random(), np.random.randn())
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2:] == b[2:]


def test_export_and_load_generator(tmp_path):
    save_checkpoint(tmp_path, _state(5), keep=1)
    out = export(tmp_path, tmp_path / "models" / "g.safetensors")  # newest checkpoint of a run folder
    g, info = load_generator(out)
    assert info.model == TINY and info.au_names == AU_NAMES and info.crop_spec == CROP_SPEC
    assert info.provenance["step"] == 5 and "created" in info.provenance
    ref = Generator(TINY)
    ref.load_state_dict(_state(5)["generator"])
    x, y = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 17)
    with torch.no_grad():
        for a, b in zip(g(x, y), ref(x, y)):
            assert torch.equal(a, b)
    g2, info2 = load_generator(tmp_path / "ckpt_00000005.pt")  # a training checkpoint loads too
    assert info2.model == TINY and not g2.training


def test_save_inference_metadata(tmp_path):
    path = save_inference(tmp_path / "g.safetensors", Generator(TINY), TINY, provenance={"dataset": "x"})
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    assert meta["format"] == "ganivid-generator-1" and json.loads(meta["model_config"])["conv_dim"] == 8
    assert json.loads(meta["au_names"]) == list(AU_NAMES) and json.loads(meta["provenance"])["dataset"] == "x"


class Foreign:
    """A class a weights_only load must refuse to construct."""


@pytest.mark.parametrize("kind", ["missing", "garbage", "empty", "plain_torch", "pickled_object",
                                  "bare_safetensors", "wrong_shapes"])
def test_foreign_files_are_checkpoint_errors(tmp_path, kind):
    path = tmp_path / "model.bin"
    if kind == "garbage":
        path.write_bytes(b"\x00\x01not a model" * 50)
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "plain_torch":
        torch.save({"weights": torch.zeros(3)}, path)
    elif kind == "pickled_object":
        torch.save({"format": "ganivid-train-1", "x": Foreign()}, path)
    elif kind == "bare_safetensors":
        save_file({"w": torch.zeros(2)}, str(path))
    elif kind == "wrong_shapes":
        other = ModelConfig(image_size=32, conv_dim=16, repeat_num=1, critic_dim=8)
        save_inference(path, Generator(other), other)
        raw = path.read_bytes().replace(b'\\"conv_dim\\": 16', b'\\"conv_dim\\": 32')
        path.write_bytes(raw)
    with pytest.raises(CheckpointError) as err:
        load_generator(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)
    if kind in ("missing", "garbage", "plain_torch", "pickled_object"):
        with pytest.raises(CheckpointError):
            load_checkpoint(path)
