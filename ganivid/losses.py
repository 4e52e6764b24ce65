"""GANimation's losses as pure functions of tensors; weights arrive as arguments."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


def composite(color: torch.Tensor, attention: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """A * I + (1 - A) * C: A is the retention mask (A = 1 keeps the input pixel)."""
    return attention * image + (1 - attention) * color


def gradient_penalty(out: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """mean over samples of (||d sum(out_i) / d x_hat_i||_2 - 1)^2, differentiable (WGAN-GP).

    `out` is the critic's realness map of `x_hat`; as in the official code and StarGAN, the
    gradient is that of the map's sum. Per-sample norms: the critic has no batch statistics."""
    (grad,) = torch.autograd.grad(out, x_hat, grad_outputs=torch.ones_like(out), create_graph=True)
    norm = grad.flatten(1).norm(2, dim=1)  # (B,)
    return ((norm - 1) ** 2).mean()


def au_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Plain mean squared error over batch and AUs (independent of batch size)."""
    return F.mse_loss(pred.float(), target.float())


def total_variation(attention: torch.Tensor) -> torch.Tensor:
    """Per-sample sum of squared neighbour differences, averaged over the batch."""
    dh = (attention[:, :, 1:, :] - attention[:, :, :-1, :]).pow(2).flatten(1).sum(1)
    dw = (attention[:, :, :, 1:] - attention[:, :, :, :-1]).pow(2).flatten(1).sum(1)
    return (dh + dw).mean()


def attention_loss(attention: torch.Tensor, lambda_tv: float) -> torch.Tensor:
    """mean(A) + lambda_tv * TV(A): keeps A from saturating at 1 and keeps it smooth."""
    return attention.mean() + lambda_tv * total_variation(attention)


def changed_region(image: torch.Tensor, target: torch.Tensor, threshold: float = 8 / 255, grow: int = 1) -> torch.Tensor:
    """(B, 1, H, W) 1 where a paired target differs from the input (any channel by more than
    `threshold` in [-1, 1] units), grown by `grow` px: the pixels an edit must change."""
    changed = ((image.float() - target.float()).abs().amax(1, keepdim=True) > threshold).float()
    return F.max_pool2d(changed, 2 * grow + 1, 1, grow) if grow else changed


@dataclass
class CriticLoss:
    """The critic's objective and its weighted terms (total = adv + gp + au)."""

    total: torch.Tensor
    adv: torch.Tensor
    gp: torch.Tensor
    au: torch.Tensor


@dataclass
class GeneratorLoss:
    """The generator's objective and its weighted terms (total = adv + au + cyc + attn + pair
    + real); `real`: the real pairs' terms of a paired phase that has them (ganivid/pairtrain.py)."""

    total: torch.Tensor
    adv: torch.Tensor
    au: torch.Tensor
    cyc: torch.Tensor
    attn: torch.Tensor
    pair: torch.Tensor
    real: torch.Tensor | None = None
    chroma: torch.Tensor | None = None
    residual: torch.Tensor | None = None


def chroma_shift(edited: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """Mean |shift| of each image's average chroma (opponent R - G and (R + G) / 2 - B) from
    `image` to `edited` (B, 3, H, W): a tint moves it, a local edit (teeth, a cavity) barely."""
    d = (edited.float() - image.float()).mean((2, 3))  # (B, 3)
    r, g, b = d.unbind(1)
    return ((r - g).abs() + ((r + g) / 2 - b).abs()).mean()


def critic_loss(real_score: torch.Tensor, fake_score: torch.Tensor, real_aus: torch.Tensor,
                y_real: torch.Tensor, gp: torch.Tensor, lambda_gp: float, lambda_y: float) -> CriticLoss:
    """mean D(x_g) - mean D(x) + lambda_gp * GP + lambda_y * MSE(D_y(x), y_r)."""
    adv = fake_score.float().mean() - real_score.float().mean()
    gp_term = lambda_gp * gp.float()
    au_term = lambda_y * au_loss(real_aus, y_real)
    return CriticLoss(adv + gp_term + au_term, adv, gp_term, au_term)


def pair_loss(image: torch.Tensor, paired: torch.Tensor, edited: torch.Tensor | None, color: torch.Tensor | None,
              attention: torch.Tensor, lambda_pair: float, lambda_pair_color: float,
              lambda_pair_attention: float, pair_mask: torch.Tensor | None = None,
              edit_weight: float = 0.0, keep: torch.Tensor | None = None) -> torch.Tensor:
    """lambda_pair |x_g - x_t| + lambda_pair_color |C - x_t| + lambda_pair_attention
    BCE(A, 1 - changed_region(x, x_t)), over the samples `pair_mask` (B,) bool keeps (all if None).
    `edit_weight` w: both L1 terms become means weighted by 1 + w * changed_region(x, x_t).
    `keep` (B, 1, H, W): the attention's target instead (flow models: 1 where the warp explains x_t)."""
    total = torch.zeros((), device=image.device)
    if pair_mask is not None and not bool(pair_mask.any()):
        return total
    attention_target = keep
    keep = slice(None) if pair_mask is None else pair_mask
    target = paired.float()[keep]
    changed = changed_region(image[keep], target)
    weight = 1 + edit_weight * changed

    def l1(a: torch.Tensor) -> torch.Tensor:
        # Normalised by the mean weight: the term keeps its scale, only its focus moves.
        return ((a.float()[keep] - target).abs() * weight).mean() / weight.mean()

    if edited is not None and lambda_pair > 0:
        total = total + lambda_pair * l1(edited)
    if color is not None and lambda_pair_color > 0:
        total = total + lambda_pair_color * l1(color)
    if lambda_pair_attention > 0:
        # Cross-entropy, not L1: its gradient does not vanish where the sigmoid has saturated.
        keep_where = 1 - changed if attention_target is None else attention_target.float()[keep]
        a = attention.float()[keep].clamp(1e-6, 1 - 1e-6)
        total = total + lambda_pair_attention * F.binary_cross_entropy(a, keep_where)
    return total


def flow_loss(flow: torch.Tensor, flow_t: torch.Tensor, edit_weight: float = 0.0) -> torch.Tensor:
    """Mean |F - F_t| (pixels) of a flow (B, 2, H, W) against a known one, the moved pixels
    (|F_t| > 0.1 px) weighted 1 + edit_weight: most of a face does not move."""
    moved = (flow_t.abs().amax(1, keepdim=True) > 0.1).float()
    weight = 1 + edit_weight * moved
    return ((flow.float() - flow_t.float()).abs() * weight).mean() / weight.mean()


def flow_smoothness(flow: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of neighbouring flow vectors (B, 2, H, W), in pixels^2."""
    return ((flow[..., 1:, :] - flow[..., :-1, :]).pow(2).mean() + (flow[..., :, 1:] - flow[..., :, :-1]).pow(2).mean())


def fold_penalty(flow: torch.Tensor, margin: float = 0.1) -> torch.Tensor:
    """Mean hinge max(0, margin - det(I + grad F)) of a flow (B, 2, H, W): a warp folds over
    where the Jacobian's determinant is not positive."""
    fx, fy = flow[:, 0].float(), flow[:, 1].float()
    dxx, dyx = fx[:, :-1, 1:] - fx[:, :-1, :-1], fy[:, :-1, 1:] - fy[:, :-1, :-1]  # d/dx
    dxy, dyy = fx[:, 1:, :-1] - fx[:, :-1, :-1], fy[:, 1:, :-1] - fy[:, :-1, :-1]  # d/dy
    det = (1 + dxx) * (1 + dyy) - dxy * dyx
    return F.relu(margin - det).mean()


def generator_loss(fake_score: torch.Tensor, fake_aus: torch.Tensor, y_target: torch.Tensor,
                   image: torch.Tensor, cycled: torch.Tensor,
                   attention: torch.Tensor, attention_cycle: torch.Tensor,
                   lambda_y: float, lambda_cyc: float, lambda_a: float, lambda_tv: float,
                   edited: torch.Tensor | None = None, paired: torch.Tensor | None = None,
                   lambda_pair: float = 0.0, color: torch.Tensor | None = None,
                   lambda_pair_color: float = 0.0, pair_mask: torch.Tensor | None = None,
                   lambda_pair_attention: float = 0.0, pair_edit_weight: float = 0.0) -> GeneratorLoss:
    """-mean D(x_g) + lambda_y MSE(D_y(x_g), y_g) + lambda_cyc |x_c - x| + lambda_a (attention
    terms of both passes) [+ lambda_pair |x_g - x_t| + lambda_pair_color |C - x_t|
    + lambda_pair_attention BCE(A, 1 - changed_region(x, x_t)) when a paired target x_t is
    given; `pair_mask` (B,) bool limits them to the samples edited towards x_t]."""
    adv = -fake_score.float().mean()
    au_term = lambda_y * au_loss(fake_aus, y_target)
    cyc = lambda_cyc * (cycled.float() - image.float()).abs().mean()
    attn = lambda_a * (attention_loss(attention.float(), lambda_tv)
                       + attention_loss(attention_cycle.float(), lambda_tv))
    total = adv + au_term + cyc + attn
    pair = torch.zeros((), device=total.device)
    if paired is not None:
        pair = pair_loss(image, paired, edited, color, attention, lambda_pair, lambda_pair_color,
                         lambda_pair_attention, pair_mask, pair_edit_weight)
        total = total + pair
    return GeneratorLoss(total, adv, au_term, cyc, attn, pair)
