"""The flow generator: its head, its exact-flow pairs and training, the engine's flow edits."""
import json

import numpy as np
import pytest
import torch

from ganivid.align import alignment_from_landmarks, crop_face, crop_matrix
from ganivid.aus import AU_NAMES, au_index
from ganivid.checkpoint import load_generator, save_inference
from ganivid.config import ModelConfig, TrainConfig
from ganivid.engine import Engine
from ganivid.errors import ConfigError, DataError
from ganivid.faces import DlibDetector
from ganivid.losses import flow_loss, fold_penalty
from ganivid.networks import Generator, compose, warp
from ganivid.pairs import make_flow_pairs
from ganivid.train import train
from ganivid.warps import prior_flow, remap, warp as warp_moves

FLOW = ModelConfig(image_size=32, conv_dim=8, repeat_num=1, critic_dim=8, flow=True, condition="change",
                   color="residual")


@pytest.fixture(scope="module")
def crop(astronaut):
    """The astronaut's 64 px crop and its landmarks in crop pixels."""
    lm = DlibDetector().detect(astronaut)[0].landmarks
    al = alignment_from_landmarks(lm)
    m = crop_matrix(al, 64)
    return crop_face(astronaut, al, 64), lm @ m[:, :2].T + m[:, 2]


def test_flow_head_shapes_identity_at_init_and_bounds():
    torch.manual_seed(0)
    g = Generator(FLOW)
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    color, attention, flow = g(x, torch.rand(3, 17) * 2 - 1)
    assert color.shape == (3, 3, 32, 32) and attention.shape == (3, 1, 32, 32) and flow.shape == (3, 2, 32, 32)
    assert flow.abs().max() == 0  # zero-initialised: an untrained head is the identity warp
    edited, warped = compose((color, attention, flow), x)
    assert torch.allclose(warped, x, atol=1e-5)
    torch.nn.init.normal_(g.flow.weight, 0, 1.0)  # a wild head stays bounded and still at the border
    flow = g(x, torch.rand(3, 17))[2]
    assert flow.abs().max() <= FLOW.flow_max * 32 + 1e-4 and flow.abs().max() > 1
    assert flow[..., 0, :].abs().max() < 0.35 * flow.abs().max()  # the outer ring falls towards 0
    with pytest.raises(ConfigError, match="condition"):
        ModelConfig(flow=True, condition="delta")


def test_torch_warp_matches_the_warps_remap(crop):
    image, lm = crop
    w = warp_moves(image, lm, {"AU12": 1.0, "AU26": 0.7})
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float()
    flow = torch.from_numpy(w.flow).permute(2, 0, 1)[None]
    ours = warp(x, flow)[0].permute(1, 2, 0).numpy()
    ident = np.stack(np.meshgrid(np.arange(64, dtype=np.float32), np.arange(64, dtype=np.float32)), -1)
    assert np.abs(ours - remap(image, ident + w.flow).astype(np.float32)).max() < 1.01  # uint8 rounding only


def test_flow_pairs_know_their_flow_both_ways(crop):
    image, lm = crop
    ds = make_flow_pairs(image[None], lm[None], variants=24, seed=3)
    ident = np.stack(np.meshgrid(np.arange(64, dtype=np.float32), np.arange(64, dtype=np.float32)), -1)
    signs = set()
    for x, t, flow, gap, change in zip(ds.images, ds.targets[0], ds.flows, ds.gaps, ds.changes):
        moved = change[[au_index(n) for n in ("AU1", "AU2", "AU4", "AU12", "AU25", "AU26", "AU45")]]
        signs |= set(np.sign(moved[moved != 0]).tolist())
        explained = gap < 0.05
        err = np.abs(remap(x, ident + flow.astype(np.float32)).astype(float) - t)[explained]
        assert err.mean() < 2.0  # the flow explains the target wherever the gap does not
        if not change.any():
            assert np.array_equal(x, t) and not flow.any()
    assert signs == {-1.0, 1.0}  # forward moves and their reverses
    with pytest.raises(DataError, match="flows"):
        type(ds)(ds.images, ds.aus, target_images=ds.targets[0], target_aus=ds.targets[1],
                 flows=ds.flows[:, :8], gaps=ds.gaps, changes=ds.changes)


def test_flow_losses():
    flow_t = torch.zeros(2, 2, 8, 8)
    flow_t[:, 0, 2:5, 2:5] = 1.5
    assert flow_loss(flow_t, flow_t, 10.0) == 0
    assert flow_loss(torch.zeros_like(flow_t), flow_t, 10.0) > flow_loss(torch.zeros_like(flow_t), flow_t, 0.0)
    fold = torch.zeros(1, 2, 8, 8)
    fold[:, 0] = -2.0 * torch.arange(8.0)  # x' = x - 2x: the warp mirrors, det < 0
    assert fold_penalty(fold) > 0.5 and fold_penalty(torch.zeros(1, 2, 8, 8)) == 0


def test_training_on_flow_pairs_learns_the_flow(tmp_path, crop):
    image, lm = crop
    cfg64 = ModelConfig(image_size=64, conv_dim=8, repeat_num=1, critic_dim=8, flow=True, condition="change",
                        color="residual")
    ds = make_flow_pairs(image[None], lm[None], variants=16, seed=0)
    tcfg = TrainConfig(batch_size=8, steps=0, epochs=0, pair_warmup_steps=100, lr_g=5e-3, beta1=0.9,
                       lambda_flow=1.0, lambda_pair=1.0, lambda_pair_attention=0.5, pair_edit_weight=10.0,
                       lambda_a=0.0, log_every=10, sample_every=1000, ckpt_every=1000, flip=True)
    torch.manual_seed(0)
    result = train(tcfg, cfg64, ds, tmp_path / "run", quiet=True, export=tmp_path / "flow.safetensors")
    lines = [json.loads(s) for s in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert lines[-1]["g_pair"] < 0.8 * lines[0]["g_pair"]
    g, info = load_generator(str(result.export), torch.device("cpu"))
    assert info.model.flow and info.model.condition == "change"  # the checkpoint records the option
    x = torch.from_numpy(ds.images).permute(0, 3, 1, 2).float() / 127.5 - 1
    with torch.no_grad():
        flow = g(x, torch.from_numpy(ds.changes))[2]
    target = torch.from_numpy(ds.flows.astype(np.float32)).permute(0, 3, 1, 2)
    moved = target.abs().amax(1) > 0.1
    error = (flow - target).norm(dim=1)[moved].mean()  # end-point error where the face moves
    assert error < 0.75 * target.norm(dim=1)[moved].mean()  # 0.57 of the identity's after 100 steps


def test_engine_flow_edits_and_zero_requests(crop):
    image, _ = crop
    torch.manual_seed(0)
    cfg = ModelConfig(image_size=64, conv_dim=8, repeat_num=1, critic_dim=8, flow=True, condition="change",
                      color="residual")
    g = Generator(cfg)
    torch.nn.init.normal_(g.flow.weight, 0, 0.05)
    eng = Engine(g, 64, "cpu")
    own = np.full(17, 0.2, np.float32)
    same = eng.edit([image], own[None], own[None])[0]
    assert eng.images_computed == 0  # no change asked: the network does not run
    assert np.array_equal(same.image, image) and not same.flow.any() and np.array_equal(same.warped, image)
    target = own.copy()
    target[AU_NAMES.index("AU12")] = 1.0
    e = eng.edit([image], target[None], own[None])[0]
    assert eng.images_computed == 1 and e.flow.shape == (64, 64, 2) and e.flow.any()
    assert e.warped.shape == image.shape and not np.array_equal(e.warped, image)
    with pytest.raises(ConfigError, match="own AUs"):
        eng.edit([image], target[None])


def test_checkpoints_from_before_the_flow_option_still_load(tmp_path, crop):
    from safetensors import safe_open
    from safetensors.torch import save_file

    cfg = ModelConfig(image_size=64, conv_dim=8, repeat_num=1, critic_dim=8)
    torch.manual_seed(0)
    g = Generator(cfg)
    new = save_inference(tmp_path / "new.safetensors", g, cfg)
    with safe_open(str(new), framework="pt") as f:
        tensors, meta = {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata())
    old_cfg = {k: v for k, v in json.loads(meta["model_config"]).items() if k not in ("flow", "flow_max", "condition")}
    meta["model_config"] = json.dumps(old_cfg)  # as the releases before the flow option wrote it
    save_file(tensors, str(tmp_path / "old.safetensors"), metadata=meta)
    eng = Engine.from_checkpoint(str(tmp_path / "old.safetensors"), "cpu")
    assert not eng.flow and not eng.by_change
    image, _ = crop
    old = eng.edit([image], np.full((1, 17), 0.5, np.float32))[0]
    ref = Engine(g, 64, "cpu").edit([image], np.full((1, 17), 0.5, np.float32))[0]
    assert np.array_equal(old.image, ref.image) and old.flow is None


def test_landmark_prior_is_the_warps_flow_and_runs_both_ways(crop):
    image, lm = crop
    change = np.zeros(17, np.float32)
    change[au_index("AU12")], change[au_index("AU26")] = 1.0, 0.5
    exact = warp_moves(image, lm, {"AU12": 1.0, "AU26": 0.5}).flow
    prior = prior_flow(64, lm, change)
    close = np.abs(prior - exact).max(-1) < 0.05  # rasterised: triangle edges may take either side
    assert close.mean() > 0.95 and np.abs(prior - exact).mean() < 0.02 and np.abs(prior - exact).max() < 1.0
    back = prior_flow(64, lm, -change)  # the same move the other way: corners down, chin up
    moved = np.abs(exact).max(-1) > 0.5
    assert np.median(np.sum(back[moved] * exact[moved], axis=1)) < 0
    assert not prior_flow(64, lm, np.zeros(17, np.float32)).any()


def test_engine_with_a_flow_prior_moves_the_landmarks_it_is_given(crop):
    image, lm = crop
    cfg = ModelConfig(image_size=64, conv_dim=8, repeat_num=1, critic_dim=8, flow=True, condition="change",
                      color="residual", flow_prior=True)
    torch.manual_seed(0)
    eng = Engine(Generator(cfg), 64, "cpu")
    own = np.zeros(17, np.float32)
    target = own.copy()
    target[au_index("AU12")] = 1.0
    e = eng.edit([image], target[None], own[None], lm[None])[0]
    change = target - own
    assert np.allclose(e.flow, prior_flow(64, lm, change), atol=1e-4)  # an untrained residual adds nothing
    with pytest.raises(ConfigError, match="landmarks"):
        eng.edit([image], target[None], own[None])
    with pytest.raises(ConfigError, match="flow_prior"):
        ModelConfig(flow_prior=True)


def test_a_flow_prior_model_fine_tunes_from_a_flow_model(tmp_path, crop):
    image, lm = crop
    flow_cfg = ModelConfig(image_size=64, conv_dim=8, repeat_num=1, critic_dim=8, flow=True, condition="change",
                           color="residual")
    prior_cfg = ModelConfig(**{**flow_cfg.__dict__, "flow_prior": True})
    torch.manual_seed(1)
    start = Generator(flow_cfg).state_dict()
    ds = make_flow_pairs(image[None], lm[None], variants=8, seed=0)
    tcfg = TrainConfig(batch_size=8, steps=0, epochs=0, pair_warmup_steps=1, lr_g=1e-12, lambda_flow=1.0,
                       lambda_pair=1.0, lambda_a=0.0, log_every=1, sample_every=1000, ckpt_every=1000)
    result = train(tcfg, prior_cfg, ds, tmp_path / "run", quiet=True, init=start, export=tmp_path / "p.safetensors")
    g, info = load_generator(str(result.export), torch.device("cpu"))
    assert info.model.flow_prior
    weights = g.state_dict()  # a step at lr 1e-12 keeps the weights it started from
    assert all(torch.allclose(weights[k], v, atol=1e-6) for k, v in start.items())
    with pytest.raises(ConfigError, match="flow_prior"):  # its GAN phase makes priors from landmarks
        train(TrainConfig(batch_size=8, steps=5, pair_warmup_steps=0), prior_cfg, ds, tmp_path / "gan", quiet=True)
