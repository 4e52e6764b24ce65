"""The training loop: it learns, resumes bit for bit, matches one process under DDP, and turns
every bad input into one error line through the CLI."""
import json
import os
import socket
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from typer.testing import CliRunner

from ganivid.checkpoint import load_checkpoint, load_generator
from ganivid.cli import app
from ganivid.config import load_config
from ganivid.data import ArrayDataset, to_tensor
from ganivid.errors import ConfigError
from ganivid.losses import composite
from ganivid.networks import Critic, Generator
from ganivid.train import (critic_losses, generator_losses, lr_factor, sample_targets, train)

MODEL, CFG = load_config("tiny")
LOSS_KEYS = ("d_total", "d_adv", "d_gp", "d_au", "g_total", "g_adv", "g_au", "g_cyc", "g_attn", "attention")


def pattern_faces(n, size=32, seed=0):
    """Images whose AUs are visible and flip-invariant: AU j sets the brightness of a mirrored
    pair of cells in a 6x6 grid (cells j and its mirror image)."""
    rng = np.random.default_rng(seed)
    aus = rng.random((n, 17)).astype(np.float32)
    img = np.full((n, size, size, 3), 40, np.uint8)
    cell = size // 6
    for j in range(17):
        r, c = divmod(j, 3)
        value = (40 + 200 * aus[:, j]).astype(np.uint8)[:, None, None, None]
        for col in (c, 5 - c):
            img[:, r * cell:(r + 1) * cell, col * cell:(col + 1) * cell] = value
    img[..., 1] //= 2  # colour, not grey
    return img, aus


def au_error(critic, images, aus):
    with torch.no_grad():
        return ((critic(to_tensor(images))[1] - torch.from_numpy(aus)) ** 2).mean().item()


def test_lr_schedule_and_targets():
    assert [lr_factor(s, 30, 1 / 3) for s in (0, 19)] == [1.0, 1.0]
    assert lr_factor(20, 30, 1 / 3) == pytest.approx(1.0) and lr_factor(29, 30, 1 / 3) == pytest.approx(0.1)
    assert lr_factor(5, 10, 0.0) == 1.0
    torch.manual_seed(0)
    y = torch.eye(6, 17)
    y_g = sample_targets(y, 0.1)
    assert y_g.min() >= 0 and y_g.max() <= 1
    partner = (y_g[:, :6] > 0.5).float().argmax(1)
    assert (partner != torch.arange(6)).all() and sorted(partner.tolist()) == list(range(6))


def test_tiny_run_lowers_the_critics_au_error(tmp_path):
    images, aus = pattern_faces(96)
    held = pattern_faces(32, seed=1)
    model = replace(MODEL, critic_dim=16)
    torch.manual_seed(CFG.seed)
    before = au_error(Critic(model), *held)
    guess_mean = float(((held[1] - aus[:64].mean(0)) ** 2).mean())  # what a constant predictor reaches
    # The AU-head warm-up phase, then a few GAN steps (which train the AU head too).
    cfg = replace(CFG, batch_size=8, steps=6, critic_warmup_steps=120, lr_d=1e-3, sample_every=1000)
    result = train(cfg, model, ArrayDataset(images[:64], aus[:64]), tmp_path / "run", quiet=True)
    critic = Critic(model)
    critic.load_state_dict(load_checkpoint(result.checkpoint)["critic"])
    after = au_error(critic, *held)
    assert after < 0.5 * guess_mean < 0.2 * before, (before, guess_mean, after)
    lines = [json.loads(ln) for ln in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert lines[0]["phase"] == "warmup" and lines[-1]["phase"] == "gan" and "g_total" in lines[-1]


def test_resume_is_bit_for_bit(tmp_path):
    images, aus = pattern_faces(24)
    ds = ArrayDataset(images, aus)
    # 2 warm-up steps, n_critic 2, lr decay over the last third: the stop at 5 splits all of them.
    cfg = replace(CFG, steps=9, critic_warmup_steps=2, log_every=1, ckpt_every=100, sample_every=100)
    whole = train(cfg, MODEL, ds, tmp_path / "whole", quiet=True)
    first = train(cfg, MODEL, ds, tmp_path / "split", max_steps=5, quiet=True)
    second = train(cfg, MODEL, ds, tmp_path / "split", resume=True, quiet=True)
    assert (first.step, second.step, whole.step) == (5, 11, 11)
    a, b = load_checkpoint(whole.checkpoint), load_checkpoint(second.checkpoint)
    for part in ("generator", "critic"):
        for k in a[part]:
            assert torch.equal(a[part][k], b[part][k]), (part, k)
    for part in ("opt_g", "opt_d"):
        for i, state in a[part]["state"].items():
            for k, v in state.items():
                assert torch.equal(v, b[part]["state"][i][k]), (part, i, k)
    logs = [[json.loads(ln) for ln in (tmp_path / r / "metrics.jsonl").read_text().splitlines()]
            for r in ("whole", "split")]
    assert [ln["step"] for ln in logs[1]] == list(range(1, 12))  # no duplicate lines
    for x, y in zip(*logs):
        assert {k: x.get(k) for k in LOSS_KEYS} == {k: y.get(k) for k in LOSS_KEYS}


def test_paired_targets_hook(tmp_path):
    images, aus = pattern_faces(8)
    targets, target_aus = pattern_faces(8, seed=3)
    ds = ArrayDataset(images, aus, target_images=targets, target_aus=target_aus)
    cfg = replace(CFG, steps=4, lambda_pair=5.0, log_every=2)
    train(cfg, MODEL, ds, tmp_path / "run", quiet=True)
    lines = [json.loads(ln) for ln in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert all(ln["g_pair"] > 0 for ln in lines)


def test_mixed_paired_batches_train_the_colour_mask_towards_the_pair(tmp_path):
    """Half of each batch aims at its pair (the other half at random targets), and the colour
    mask's own L1 to the pair pulls C towards x_t: after a few steps C is nearer the targets."""
    images, aus = pattern_faces(8)
    targets, target_aus = pattern_faces(8, seed=3)
    ds = ArrayDataset(images, aus, target_images=targets, target_aus=target_aus)
    cfg = replace(CFG, steps=30, n_critic=1, lambda_pair_color=20.0, pair_fraction=0.5, log_every=10, lr_g=1e-3)

    def colour_error(generator):
        with torch.no_grad():
            color, _ = generator(to_tensor(images), torch.from_numpy(target_aus))
        return float((color - to_tensor(targets)).abs().mean())

    seen = []
    train(cfg, MODEL, ds, tmp_path / "run", quiet=True,
          callback=lambda ts: seen.append(colour_error(ts.generator)) and False)
    assert seen[-1] < 0.7 * seen[0]
    with pytest.raises(ConfigError, match="pair_fraction"):
        replace(CFG, pair_fraction=1.5)


def test_pair_warmup_trains_the_generator_alone_then_the_gan(tmp_path):
    images, aus = pattern_faces(8)
    targets, target_aus = pattern_faces(8, seed=3)
    ds = ArrayDataset(images, aus, target_images=targets, target_aus=target_aus)
    cfg = replace(CFG, steps=4, critic_warmup_steps=2, pair_warmup_steps=20, lambda_pair=10.0,
                  lambda_pair_color=10.0, log_every=2, n_critic=1, lr_g=1e-3)
    train(cfg, MODEL, ds, tmp_path / "run", quiet=True)
    lines = [json.loads(ln) for ln in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [ln["phase"] for ln in lines] == ["warmup"] + ["pair_warmup"] * 10 + ["gan"] * 2
    pair = [ln["g_pair"] for ln in lines if ln["phase"] == "pair_warmup"]
    assert pair[-1] < 0.8 * pair[0]
    assert "d_adv" not in lines[5] and "d_adv" in lines[-1]  # the critic rests meanwhile
    with pytest.raises(ConfigError, match="paired targets"):
        train(cfg, MODEL, ArrayDataset(images, aus), tmp_path / "unpaired", quiet=True)
    with pytest.raises(ConfigError, match="lambda_pair"):
        replace(CFG, pair_warmup_steps=5)


def test_pair_decay_lowers_lr_g_over_the_end_of_the_paired_warm_up(tmp_path):
    images, aus = pattern_faces(8)
    targets, target_aus = pattern_faces(8, seed=3)
    ds = ArrayDataset(images, aus, target_images=targets, target_aus=target_aus)
    cfg = replace(CFG, steps=2, decay_fraction=0.0, critic_warmup_steps=0, pair_warmup_steps=8,
                  pair_decay_fraction=0.5, lambda_pair=10.0, log_every=1, n_critic=1)
    train(cfg, MODEL, ds, tmp_path / "run", quiet=True)
    lines = [json.loads(ln) for ln in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [ln["lr_factor"] for ln in lines] == [1, 1, 1, 1, 1, 0.75, 0.5, 0.25, 1, 1]
    with pytest.raises(ConfigError, match="pair_decay_fraction"):
        replace(CFG, pair_decay_fraction=-0.1)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _grads(rank=0, world=1, ddp=False):
    """Critic and generator gradients of one loop step on this process's share of a fixed batch."""
    from torch.nn.parallel import DistributedDataParallel as DDP

    torch.manual_seed(0)
    g, d = Generator(MODEL), Critic(MODEL)
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(8, 3, 32, 32, generator=gen) * 2 - 1
    y, y_g = torch.rand(8, 17, generator=gen), torch.rand(8, 17, generator=gen)
    alpha = torch.rand(8, 1, 1, 1, generator=gen)
    share = slice(rank * 8 // world, (rank + 1) * 8 // world)
    x, y, y_g, alpha = x[share], y[share], y_g[share], alpha[share]
    g_net, d_net = (DDP(g), DDP(d)) if ddp else (g, d)
    outputs = g_net(x, y_g)  # a generator turn: fakes with their graph, as the loop does
    critic_losses(d_net, x, y, composite(outputs[0], outputs[1], x).detach(), alpha, CFG).total.backward()
    d.requires_grad_(False)
    generator_losses(g_net, d, x, y, y_g, outputs, CFG, MODEL)[0].total.backward()
    return [p.grad.clone() for p in d.parameters()], [p.grad.clone() for p in g.parameters()]


def _ddp_worker(rank, world, port, out_dir):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.save(_grads(rank, world, ddp=True), os.path.join(out_dir, f"grads{rank}.pt"))
    # The whole loop under DDP: only rank 0 writes.
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    images, aus = pattern_faces(16)
    cfg = replace(CFG, steps=4, batch_size=2, ckpt_every=2, sample_every=2)
    train(cfg, MODEL, ArrayDataset(images, aus), os.path.join(out_dir, f"run{rank}"), quiet=True)
    dist.destroy_process_group()


def test_ddp_two_gloo_processes_match_one_process(tmp_path):
    mp.spawn(_ddp_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    d_ref, g_ref = _grads()
    for rank in (0, 1):
        d_grads, g_grads = torch.load(tmp_path / f"grads{rank}.pt")
        for got, want in zip(d_grads + g_grads, d_ref + g_ref):
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)
    assert (tmp_path / "run0" / "ckpt_00000004.pt").exists() and not (tmp_path / "run1").exists()
    assert len(load_checkpoint(tmp_path / "run0" / "ckpt_00000004.pt")["rng"]) == 2


def _write_dataset(root, n=8, size=32, header_edit=None, value_edit=None):
    import csv

    import cv2

    from ganivid.aus import AU_NAMES
    images, aus = pattern_faces(n, size)
    (root / "imgs").mkdir(parents=True)
    rows = [["file", *AU_NAMES]]
    for i in range(n):
        cv2.imwrite(str(root / "imgs" / f"{i}.png"), images[i][:, :, ::-1])
        rows.append([f"imgs/{i}.png", *(f"{v:.4f}" for v in aus[i])])
    if header_edit:
        rows[0] = header_edit(rows[0])
    if value_edit:
        rows[3][5] = value_edit
    with open(root / "aus.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    return root


def run_cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_cli_trains_resumes_and_exports(tmp_path):
    data = _write_dataset(tmp_path / "data")
    run, model = tmp_path / "run", tmp_path / "models" / "tiny.safetensors"
    r = run_cli("train", "-c", "tiny", "--data", data, "--out", run, "--steps", 4, "--quiet")
    assert r.exit_code == 0, r.output
    r = run_cli("train", "-c", "tiny", "--data", data, "--out", run, "--steps", 6, "--resume", "--quiet",
                "--export", model, "--set", "train.lr_g=2e-4")
    assert r.exit_code == 0, r.output
    assert load_checkpoint(run / "ckpt_00000006.pt")["train"]["lr_g"] == 2e-4
    g, info = load_generator(model)
    assert info.provenance["step"] == 6 and info.model == MODEL
    assert (run / "samples" / "step_00000006.png").exists()
    import cv2
    grid = cv2.imread(str(run / "samples" / "step_00000006.png"))
    assert grid.shape == (5 * 32, CFG.sample_count * 32, 3)  # rows: input, edited, attention, colour, cycle
    r = run_cli("export", run, "-o", tmp_path / "again.safetensors")
    assert r.exit_code == 0 and load_generator(tmp_path / "again.safetensors")[1].provenance["step"] == 6
    r = run_cli("train", "-c", "tiny", "--data", data, "--out", tmp_path / "fine", "--steps", 1, "--quiet",
                "--init", model, "--set", "train.lr_g=1e-12", "--set", "train.lr_d=1e-12", "--export", tmp_path / "f.safetensors")
    assert r.exit_code == 0, r.output  # a fine-tune starts from the model's generator
    before, after = g.state_dict(), load_generator(tmp_path / "f.safetensors")[0].state_dict()
    assert all(torch.allclose(before[k], after[k], atol=1e-6) for k in before)


@pytest.mark.parametrize("case,message", [
    ("missing_dataset", "dataset folder .* does not exist"),
    ("empty_dataset", "is empty"),
    ("wrong_size", r"is 40x40 px; this model needs 32x32 crops"),
    ("unknown_au", "unknown AU column 'AU99'"),
    ("missing_au", "lacks AU columns AU12"),
    ("nan_label", "is not a number"),
    ("unknown_key", r"unknown config key train.lr in .*bad.toml \(did you mean train.lr_g\?\)"),
    ("bad_value", "train.n_critic in .* must be int"),
    ("other_config", "was trained with another model config: conv_dim=8 \\(config says 16\\)"),
    ("nothing_to_resume", "nothing to resume"),
    ("run_exists", "already holds a run"),
    ("no_cuda", "CUDA is not available|unknown device"),
    ("unknown_preset", "unknown preset 'huge'"),
    ("paired_preset_unpaired_data", "train.pair_warmup_steps needs a dataset with paired targets"),
    ("init_missing", "--init .*: no such file"),
    ("init_other_model", "--init .*: its generator is not the preset's model \\(conv_dim"),
])
def test_cli_bad_input_gives_one_error_line(tmp_path, case, message):
    data = tmp_path / "data"
    args = ["train", "-c", "tiny", "--data", data, "--out", tmp_path / "run", "--steps", 2, "--quiet"]
    if case == "empty_dataset":
        data.mkdir()
    elif case == "wrong_size":
        _write_dataset(data, size=40)
    elif case == "unknown_au":
        _write_dataset(data, header_edit=lambda h: h[:-1] + ["AU99"])
    elif case == "missing_au":
        _write_dataset(data, header_edit=lambda h: [c if c != "AU12" else "notes" for c in h])
    elif case == "nan_label":
        _write_dataset(data, value_edit="nan")
    elif case != "missing_dataset":
        _write_dataset(data)
    if case in ("unknown_key", "bad_value"):
        bad = tmp_path / "bad.toml"
        bad.write_text("[train]\nlr = 1e-3\n" if case == "unknown_key" else "[train]\nn_critic = 'five'\n")
        args[2] = bad
    if case in ("other_config", "run_exists"):
        assert run_cli(*args).exit_code == 0
        args += ["--resume", "--set", "model.conv_dim=16"] if case == "other_config" else []
    if case == "nothing_to_resume":
        args.append("--resume")
    if case == "no_cuda":
        args += ["--device", "cuda:0" if not torch.cuda.is_available() else "tpu"]
    if case == "unknown_preset":
        args[2] = "huge"
    if case == "init_missing":
        args += ["--init", tmp_path / "none.safetensors"]
    if case == "init_other_model":
        from ganivid.checkpoint import save_inference
        from ganivid.config import ModelConfig
        from ganivid.networks import Generator

        other = ModelConfig(**{**MODEL.__dict__, "conv_dim": 16})
        save_inference(tmp_path / "other.safetensors", Generator(other), other, crop_spec="x", provenance={})
        args += ["--init", tmp_path / "other.safetensors"]
    if case == "paired_preset_unpaired_data":  # training/cpu_paired.toml on a plain folder
        args[2] = "cpu_paired"
        args += ["--set", "model.image_size=32", "--resize"]
    r = run_cli(*args)
    lines = r.output.strip().splitlines()
    assert r.exit_code == 1 and len(lines) == 1 and lines[0].startswith("error: "), r.output
    assert "Traceback" not in r.output
    import re
    assert re.search(message, lines[0]), lines[0]


def test_config_precedence(tmp_path):
    # defaults (the paper) < preset < overrides; ints are accepted for float keys.
    model, cfg = load_config("tiny", {"train.batch_size": 6, "model.repeat_num": 2, "train.lr_g": 1})
    assert (cfg.batch_size, cfg.n_critic, cfg.lambda_y, cfg.lr_g) == (6, 2, 160.0, 1.0)
    assert (model.image_size, model.repeat_num, model.num_aus) == (32, 2, 17)
    preset = tmp_path / "mine.toml"
    preset.write_text("[model]\nimage_size = 64\n[train]\nsteps = 7\n")
    model, cfg = load_config(preset, {"train.steps": 9})
    assert (model.image_size, model.conv_dim, cfg.steps, cfg.batch_size) == (64, 64, 9, 25)
