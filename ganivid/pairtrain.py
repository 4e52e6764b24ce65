"""The generator's paired phase: warp pairs of known flow, and real pairs beside them.

Warp pairs (`pairs.make_flow_pairs`) know their flow exactly: for a flow-prior model the prior is
that flow, the residual learns 0, and A and C learn to finish the warp. Real pairs
(`realpairs.py`: London neutral <-> smile, GRID closed <-> open mouths) show what no warp makes
(teeth, a mouth's interior), but their flow is only a prior. On them G gets what it gets at
inference, the request's landmark flow (`warps.prior_flow` of the input's landmarks and the AU
change), and learns from the photo: L1 of the composite and of C to the real target with the
mouth weighted up, A taught to paint where the landmark flow between the two photos does not
explain the target's mouth, and the flow pulled weakly (`lambda_real_flow`) towards that landmark flow."""
from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ganivid.batches import make_batch
from ganivid.config import ModelConfig, TrainConfig
from ganivid.data import FaceDataset
from ganivid.errors import DataError
from ganivid.losses import (GeneratorLoss, attention_loss, flow_loss, flow_smoothness, fold_penalty,
                            pair_loss)
from ganivid.networks import compose, condition
from ganivid.warps import _frame, prior_flow

MOUTH = slice(48, 68)  # dlib's lip points, outer and inner
MOUTH_GROW = 0.25  # the mouth region reaches this many eye distances d beyond the lips: teeth, lip shadows
GAP_KEEP = 0.1  # a real pair's gap above it: the landmark flow does not explain the target there


def mouth_region(size: int, *faces: np.ndarray) -> np.ndarray:
    """Weight (size, size) float32 0..1: the hull of the faces' lip points (68, 2 each, crop
    pixels), grown by MOUTH_GROW d and feathered."""
    pts = np.vstack([np.asarray(f, np.float64)[MOUTH] for f in faces])
    hull = cv2.convexHull(pts.astype(np.float32)).reshape(-1, 2).astype(np.float64)
    d = _frame(np.asarray(faces[0], np.float64))[2]
    centre = hull.mean(0)
    radius = np.linalg.norm(hull - centre, axis=1, keepdims=True)
    grown = centre + (hull - centre) * (1 + MOUTH_GROW * d / np.maximum(radius, 1e-6))
    mask = np.zeros((size, size), np.float32)
    cv2.fillConvexPoly(mask, np.round(grown * 16).astype(np.int32), 1.0, cv2.LINE_AA, 4)
    return cv2.GaussianBlur(mask, (0, 0), max(0.5, 0.05 * d))


def prepare_real(ds: FaceDataset) -> FaceDataset:
    """Give real pairs (`realpairs.make_real_pairs` or `read_cache`) what training reads beside
    their flows: `priors` (N, S, S, 2) float16, the inference prior of each request, and `mouths`
    (N, S, S) float16; kept when already there.

    Raises:
        DataError: not real pairs (no flows, changes or both faces' landmarks).
    """
    if getattr(ds, "priors", None) is not None and getattr(ds, "mouths", None) is not None:
        return ds
    lms, lts = getattr(ds, "landmarks", None), getattr(ds, "target_landmarks", None)
    if getattr(ds, "flows", None) is None or lms is None or lts is None:
        raise DataError(f"{ds.source}: real pairs need flows, changes and both faces' landmarks "
                        f"(ganivid.realpairs.make_real_pairs or read_cache)")
    size = ds.image_size
    ds.priors = np.stack([prior_flow(size, lm, c) for lm, c in zip(lms, ds.changes)]).astype(np.float16)
    ds.mouths = np.stack([mouth_region(size, a, b) for a, b in zip(lms, lts)]).astype(np.float16)
    return ds


def make_real_batch(ds: FaceDataset, indices: np.ndarray, flips: np.ndarray) -> dict[str, torch.Tensor]:
    """`make_batch` of real pairs (`prepare_real` first) plus `prior` (B, 2, S, S), the request's
    landmark flow, and `mouth` (B, 1, S, S), flipped with the images."""
    batch = make_batch(ds, indices, flips)
    priors = ds.priors[indices].astype(np.float32)
    mouths = ds.mouths[indices].astype(np.float32)
    priors[flips] = priors[flips, :, ::-1] * np.array([-1, 1], np.float32)  # mirrored: dx changes sign
    mouths[flips] = mouths[flips, :, ::-1]
    batch["prior"] = torch.from_numpy(np.ascontiguousarray(priors.transpose(0, 3, 1, 2)))
    batch["mouth"] = torch.from_numpy(np.ascontiguousarray(mouths[:, None]))
    return batch


def real_terms(outputs: tuple[torch.Tensor, ...], x: torch.Tensor, batch: dict[str, torch.Tensor],
               cfg: TrainConfig) -> torch.Tensor:
    """The real pairs' loss (weighted by lambda_real) from G's outputs on their inputs `x`."""
    device = x.device
    color, attention, flow = outputs[0], outputs[1], outputs[2]
    edited, _ = compose(outputs, x)
    x_t = batch["x_t"].to(device).float()
    weight = 1 + cfg.real_mouth_weight * batch["mouth"].to(device)

    def l1(a: torch.Tensor) -> torch.Tensor:
        # Normalised by the mean weight: the term keeps its scale, only its focus moves to the mouth.
        return ((a.float() - x_t).abs() * weight).mean() / weight.mean()

    # A is taught to paint in the mouth only: elsewhere two photos differ by light as much as by expression.
    keep = 1 - F.max_pool2d((batch["gap"].to(device) > GAP_KEEP).float(), 3, 1, 1) * (batch["mouth"].to(device) > 0.5)
    a = attention.float().clamp(1e-6, 1 - 1e-6)
    total = cfg.lambda_pair * l1(edited) + cfg.lambda_pair_color * l1(color)
    total = total + cfg.lambda_pair_attention * F.binary_cross_entropy(a, keep)
    total = total + cfg.lambda_real_flow * flow_loss(flow, batch["flow_t"].to(device), cfg.pair_edit_weight)
    total = total + cfg.lambda_flow_smooth * flow_smoothness(flow) + cfg.lambda_flow_fold * fold_penalty(flow)
    return cfg.lambda_real * total


def pair_warmup_loss(generator: torch.nn.Module, x: torch.Tensor, batch: dict[str, torch.Tensor],
                     cfg: TrainConfig, model: ModelConfig,
                     real: dict[str, torch.Tensor] | None = None) -> GeneratorLoss:
    """The generator alone on paired targets: pair terms + attention terms of one pass; for flow
    models on pairs of known flow also the flow terms, and A is taught where the warp explains x_t.
    `real`: a batch of real pairs (`make_real_batch`), run in the same pass (one forward, so DDP
    sees one), whose terms are `real_terms`."""
    device = x.device
    x_t, y_t = batch["x_t"].to(device), batch["y_t"].to(device)
    known = model.flow and "flow_t" in batch
    flow_t = batch["flow_t"].to(device) if known else None
    cond = batch["c"].to(device) if known and model.condition == "change" else condition(model, y_t, batch["y"].to(device))
    # On warp pairs the landmark prior is the pair's own flow: the residual learns 0, A and C the rest.
    prior = flow_t if model.flow_prior else None
    n = len(x)
    inputs = x
    if real is not None:
        if not (known and model.condition == "change"):
            raise DataError("real pairs train flow models conditioned on the AU change, beside warp pairs of known flow")
        inputs = torch.cat([x, real["x"].to(device)])
        cond = torch.cat([cond, real["c"].to(device)])
        prior = torch.cat([prior, real["prior"].to(device)]) if model.flow_prior else None
    both = generator(inputs, cond, prior) if prior is not None else generator(inputs, cond)
    outputs = tuple(o[:n] for o in both)
    edited, _ = compose(outputs, x)
    color, attention = outputs[0], outputs[1]
    keep = (1 - F.max_pool2d((batch["gap"].to(device) > 0.1).float(), 3, 1, 1)) if known else None
    pair = pair_loss(x, x_t, edited, color, attention, cfg.lambda_pair, cfg.lambda_pair_color,
                     cfg.lambda_pair_attention, edit_weight=cfg.pair_edit_weight, keep=keep)
    if known:
        flow = outputs[2]
        pair = pair + cfg.lambda_flow * flow_loss(flow, flow_t, cfg.pair_edit_weight)
        pair = pair + cfg.lambda_flow_smooth * flow_smoothness(flow) + cfg.lambda_flow_fold * fold_penalty(flow)
    attn = cfg.lambda_a * attention_loss(attention.float(), cfg.lambda_tv)
    zero = torch.zeros((), device=x.device)
    if real is None:
        return GeneratorLoss(pair + attn, zero, zero, zero, attn, pair)
    real_out = tuple(o[n:] for o in both)
    real_loss = real_terms(real_out, inputs[n:], real, cfg)
    attn = attn + cfg.lambda_a * cfg.lambda_real * attention_loss(real_out[1].float(), cfg.lambda_tv)
    return GeneratorLoss(pair + attn + real_loss, zero, zero, zero, attn, pair, real_loss)
