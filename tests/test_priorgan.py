"""The adversarial phase of flow-prior generators: landmarks in batches, mirrored with the crop,
and the priors of each request and of its way back."""
import numpy as np
import pytest
import torch

from ganivid.align import alignment_from_landmarks, crop_face, crop_matrix
from ganivid.aus import au_index
from ganivid.batches import make_batch
from ganivid.config import ModelConfig, TrainConfig
from ganivid.data import ArrayDataset
from ganivid.faces import DlibDetector
from ganivid.networks import Generator
from ganivid.priorgan import MIRROR_68, attach_landmarks, cycle_inputs, flip_landmarks, moved_landmarks
from ganivid.train import train
from ganivid.warps import prior_flow

PRIOR = ModelConfig(image_size=64, conv_dim=8, repeat_num=1, critic_dim=8, flow=True, condition="change",
                    color="residual", flow_prior=True)


@pytest.fixture(scope="module")
def crop(astronaut):
    lm = DlibDetector().detect(astronaut)[0].landmarks
    al = alignment_from_landmarks(lm)
    m = crop_matrix(al, 64)
    return crop_face(astronaut, al, 64), (lm @ m[:, :2].T + m[:, 2]).astype(np.float32)


def test_mirrored_landmarks_give_the_mirrored_prior(crop):
    _, lm = crop
    flipped = flip_landmarks(lm, 64)
    assert np.allclose(flip_landmarks(flipped, 64), lm) and np.all(MIRROR_68[MIRROR_68] == np.arange(68))
    assert np.allclose(flipped[36:42].mean(0), [63 - lm[42:48, 0].mean(), lm[42:48, 1].mean()], atol=1e-4)
    change = np.zeros(17)
    change[au_index("AU12")], change[au_index("AU4")] = 1.0, 0.7
    direct = prior_flow(64, lm, change)
    mirrored = prior_flow(64, flipped, change)[:, ::-1] * np.array([-1, 1], np.float32)
    moving = np.abs(direct).max(-1) > 0.3
    assert moving.mean() > 0.02
    assert np.median(np.abs(direct - mirrored)[moving]) < 0.15  # pixels; the triangulations differ slightly


def test_cycle_priors_go_there_and_back(crop):
    _, lm = crop
    change = torch.zeros(2, 17)
    change[0, au_index("AU12")] = 1.0
    change[1, au_index("AU26")] = -0.5
    fwd, back = cycle_inputs(np.stack([lm, lm]), change, 64)
    assert fwd.shape == back.shape == (2, 2, 64, 64)
    moved = moved_landmarks(lm, change[0].numpy())
    corners = moved[[48, 54], 1] - lm[[48, 54], 1]
    assert np.all(corners < -1)  # the smile lifts the mouth corners (y grows downwards)
    assert np.allclose(moved_landmarks(moved, -change[0].numpy()), lm, atol=0.2)  # and back


def test_gan_phase_of_a_flow_prior_model(tmp_path, crop):
    image, lm = crop
    ds = ArrayDataset(np.repeat(image[None], 8, 0), np.tile(np.linspace(0, 1, 8)[:, None], (1, 17)).astype(np.float32))
    with pytest.raises(Exception, match="landmarks"):
        train(TrainConfig(batch_size=4, steps=2), PRIOR, ds, tmp_path / "none", quiet=True)
    ds.landmarks = np.repeat(lm[None], 8, 0)
    batch = make_batch(ds, np.arange(2), np.array([False, True]))
    assert np.allclose(batch["lm"][1].numpy(), flip_landmarks(lm, 64))
    torch.manual_seed(0)
    start = {k: v.clone() for k, v in Generator(PRIOR).state_dict().items()}
    result = train(TrainConfig(batch_size=4, steps=4, n_critic=1, log_every=1, sample_every=2, ckpt_every=1000,
                               lambda_chroma=1.0, lambda_residual_flow=1.0),
                   PRIOR, ds, tmp_path / "gan", quiet=True, init=start, export=tmp_path / "g.safetensors")
    assert result.step == 4 and np.isfinite(result.metrics["g_total"]) and result.export.is_file()
    assert result.metrics["g_chroma"] >= 0 and result.metrics["g_residual"] >= 0  # both guards in the loss
    assert (tmp_path / "gan" / "samples" / "step_00000002.png").is_file()


def test_landmarks_from_an_annotate_manifest(tmp_path, crop):
    import json

    from PIL import Image

    from ganivid.data import open_dataset

    image, lm = crop
    (tmp_path / "imgs").mkdir()
    Image.fromarray(image).save(tmp_path / "imgs" / "a.png")
    (tmp_path / "aus.csv").write_text("file," + ",".join(f"AU{n}" for n in (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 25, 26, 45))
                                      + "\nimgs/a.png" + ",0" * 17 + "\n")
    ds = open_dataset(tmp_path, 64)
    with pytest.raises(Exception, match="no landmarks"):
        attach_landmarks(ds, tmp_path)
    # annotate stores image-pixel landmarks; the crop is their own alignment's: use the crop's as the image
    (tmp_path / "manifest.jsonl").write_text(json.dumps({"file": "imgs/a.png", "landmarks": lm.tolist()}) + "\n")
    attach_landmarks(ds, tmp_path)
    assert ds.landmarks.shape == (1, 68, 2)


def test_colour_guard_sees_tints_not_local_edits():
    from ganivid.losses import chroma_shift

    x = torch.rand(2, 3, 16, 16) * 2 - 1
    assert chroma_shift(x, x) == 0
    teeth = x.clone()
    teeth[:, :, 6:10, 6:10] = 1.0  # white teeth in a sixteenth of the crop
    tint = x + torch.tensor([-0.1, 0.1, 0.0])[None, :, None, None]  # a slight green over all of it
    assert chroma_shift(tint, x) > 3 * chroma_shift(teeth, x)


def test_attention_border_keeps_the_crop_edge():
    from ganivid.networks import _border_ramp

    cfg = ModelConfig(**{**PRIOR.__dict__, "attention_border": True})
    g = Generator(cfg)
    for p in g.parameters():
        torch.nn.init.normal_(p, std=0.5)  # an attention far from 1 everywhere
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    _, attention, _ = g(x, torch.zeros(2, 17), torch.zeros(2, 2, 64, 64))
    ramp = _border_ramp(64, x.device, x.dtype)
    assert torch.all(attention[..., ramp == 0] == 1)  # the outermost ring: the input, always
    assert attention[..., ramp == 1].min() < 0.5  # inside, the head decides
    plain = Generator(PRIOR)
    plain.load_state_dict(g.state_dict())  # the same weights: a fine-tune may switch it on
