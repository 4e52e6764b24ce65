"""Real pairs in the paired phase (ganivid/pairtrain.py): Grace Hopper and a warped smile of her."""
import json

import numpy as np
import pytest
import torch

from ganivid import realpairs as rp
from ganivid.aus import AU_NAMES
from ganivid.checkpoint import load_checkpoint
from ganivid.config import ModelConfig, TrainConfig
from ganivid.errors import ConfigError, DataError
from ganivid.faces import DlibDetector
from ganivid.pairs import make_flow_pairs
from ganivid.pairtrain import make_real_batch, mouth_region, prepare_real, real_terms
from ganivid.train import train
from ganivid.warps import prior_flow, warp_face

PRIOR = ModelConfig(image_size=32, conv_dim=8, repeat_num=1, critic_dim=8, flow=True, condition="change",
                    color="residual", flow_prior=True)
CFG = TrainConfig(batch_size=2, real_batch_size=2, steps=0, epochs=0, pair_warmup_steps=4, lr_g=1e-3,
                  lambda_pair=1.0, lambda_pair_color=1.0, lambda_pair_attention=0.5, lambda_flow=1.0,
                  lambda_flow_smooth=0.05, lambda_flow_fold=1.0, lambda_real_flow=0.1, real_mouth_weight=10.0,
                  lambda_a=0.0, log_every=2, sample_every=100, ckpt_every=2, sample_count=2, device="cpu")


@pytest.fixture(scope="module")
def couple(grace_hopper):
    """(neutral, smiling) shots of Grace Hopper, the smile warps' AU12 and AU25 moves."""
    lm = rp.largest_face(DlibDetector(), grace_hopper)
    smile, smile_lm = warp_face(grace_hopper, lm, {"AU12": 1.0, "AU25": 0.6})
    return rp.Shot(grace_hopper, lm, "neutral"), rp.Shot(smile, smile_lm, "smile")


@pytest.fixture(scope="module")
def real(couple):
    return prepare_real(rp.make_real_pairs([couple], 32))


def test_mouth_region_covers_the_lips_not_the_eyes(real):
    mouth = mouth_region(32, real.landmarks[0], real.target_landmarks[0])
    lips, eyes = real.landmarks[0][48:68].mean(0), real.landmarks[0][36:48].mean(0)
    assert mouth[int(round(lips[1])), int(round(lips[0]))] > 0.95
    assert mouth[int(round(eyes[1])), int(round(eyes[0]))] < 0.05
    assert 0.03 < mouth.mean() < 0.25


def test_real_batch_carries_the_inference_prior_flipped_with_the_image(real):
    assert np.allclose(real.priors[0].astype(np.float32), prior_flow(32, real.landmarks[0], real.changes[0]), atol=0.01)
    assert np.abs(real.priors[0].astype(np.float32)).max() > 0.5  # the request moves the face
    plain = make_real_batch(real, np.array([0, 1]), np.array([False, False]))
    flipped = make_real_batch(real, np.array([0, 1]), np.array([True, False]))
    assert torch.equal(flipped["x"][0], plain["x"][0].flip(-1)) and torch.equal(flipped["mouth"][0], plain["mouth"][0].flip(-1))
    assert torch.allclose(flipped["prior"][0, 0], -plain["prior"][0, 0].flip(-1))  # dx changes sign
    assert torch.allclose(flipped["prior"][0, 1], plain["prior"][0, 1].flip(-1))
    assert torch.equal(flipped["prior"][1], plain["prior"][1])
    assert plain["c"][0, AU_NAMES.index("AU12")] > 0.2 and torch.allclose(plain["c"][1], -plain["c"][0])


def test_real_terms_weigh_the_mouth_and_teach_attention_there_only(real):
    batch = make_real_batch(real, np.array([0]), np.array([False]))
    x = batch["x"]
    mouth = batch["mouth"] > 0.5
    cfg = CFG
    ones, still = torch.ones(1, 1, 32, 32), torch.zeros(1, 2, 32, 32)

    def loss(target: torch.Tensor, attention: torch.Tensor = ones) -> float:
        b = dict(batch, x_t=target, flow_t=still, gap=torch.zeros_like(batch["gap"]))
        return float(real_terms((x, attention, still), x, b, cfg))

    inside, outside = x.clone(), x.clone()
    inside[:, :, mouth[0, 0]] += 0.2
    k = int(mouth.sum())
    far = (~mouth[0, 0]).nonzero()[:k]
    outside[:, :, far[:, 0], far[:, 1]] += 0.2  # the same number of pixels, away from the mouth
    assert loss(inside) > 5 * loss(outside) > 0
    # Where the landmark flow does not explain the target, A is taught to paint: in the mouth only.
    gap = torch.ones_like(batch["gap"])
    b = dict(batch, flow_t=still, gap=gap)
    painting_mouth = torch.where(mouth, torch.zeros_like(ones), ones)
    assert float(real_terms((x, painting_mouth, still), x, b, cfg)) < float(real_terms((x, ones, still), x, b, cfg))
    assert float(real_terms((x, painting_mouth, still), x, b, cfg)) < float(real_terms((x, ones * 0, still), x, b, cfg))


def test_prepare_real_needs_both_faces_landmarks(real):
    bare = make_flow_pairs(real.images[:1], real.landmarks[:1], variants=1)
    with pytest.raises(DataError, match="landmarks"):
        prepare_real(bare)


def test_real_pairs_train_beside_warp_pairs_and_resume_exactly(real, tmp_path):
    warps = make_flow_pairs(real.images, real.landmarks, variants=2, seed=1)
    straight = train(CFG, PRIOR, warps, tmp_path / "a", quiet=True, real=real)
    lines = [json.loads(s) for s in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in lines] == [2, 4] and all(m["g_real"] > 0 and m["g_pair"] > 0 for m in lines)
    train(CFG, PRIOR, warps, tmp_path / "b", quiet=True, real=real, max_steps=2)
    resumed = train(CFG, PRIOR, warps, tmp_path / "b", quiet=True, real=real, resume=True)
    assert resumed.step == straight.step == 4
    a, b = (load_checkpoint(r.checkpoint)["generator"] for r in (straight, resumed))
    assert all(torch.equal(a[k], b[k]) for k in a)  # the real batches' order is a function of (seed, step)
    with pytest.raises(ConfigError, match="real_batch_size"):
        train(TrainConfig(**{**CFG.__dict__, "real_batch_size": 0}), PRIOR, warps, tmp_path / "c", quiet=True, real=real)
