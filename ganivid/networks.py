"""GANimation's generator and critic, exactly as ../shared/GANIMATION.md, sized by ModelConfig."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ganivid.config import ModelConfig


def init_weights(module: nn.Module) -> None:
    """N(0, 0.02) conv weights as in the paper's code; zero biases; norms keep (1, 0)."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def _norm(dim: int) -> nn.InstanceNorm2d:
    # No running statistics: train and eval behave the same and DDP has no buffers to sync.
    return nn.InstanceNorm2d(dim, affine=True, track_running_stats=False)


class ResidualBlock(nn.Module):
    """conv3x3-IN-ReLU-conv3x3-IN plus the input (no ReLU after the add)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(dim, dim, 3, 1, 1, bias=False), _norm(dim), nn.ReLU(inplace=True),
            nn.Conv2d(dim, dim, 3, 1, 1, bias=False), _norm(dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.main(x)


class Generator(nn.Module):
    """G(image, aus) -> (colour mask C in [-1, 1], retention mask A in [0, 1]), and with
    `cfg.flow` a third output, the backward flow F in crop pixels (see `compose`)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        dim = cfg.conv_dim
        layers: list[nn.Module] = [
            nn.Conv2d(3 + cfg.num_aus, dim, 7, 1, 3, bias=False), _norm(dim), nn.ReLU(inplace=True)]
        for _ in range(2):
            layers += [nn.Conv2d(dim, dim * 2, 4, 2, 1, bias=False), _norm(dim * 2), nn.ReLU(inplace=True)]
            dim *= 2
        layers += [ResidualBlock(dim) for _ in range(cfg.repeat_num)]
        for _ in range(2):
            if cfg.upsample == "transposed":
                layers.append(nn.ConvTranspose2d(dim, dim // 2, 4, 2, 1, bias=False))
            else:
                layers += [nn.Upsample(scale_factor=2, mode="nearest"),
                           nn.Conv2d(dim, dim // 2, 3, 1, 1, bias=False)]
            layers += [_norm(dim // 2), nn.ReLU(inplace=True)]
            dim //= 2
        self.main = nn.Sequential(*layers)
        self.bottleneck = 9 + cfg.repeat_num  # main[:bottleneck]: the encoder and residual blocks
        self.color = nn.Sequential(nn.Conv2d(dim, 3, 7, 1, 3, bias=False), nn.Tanh())
        self.attention = nn.Sequential(nn.Conv2d(dim, 1, 7, 1, 3, bias=False), nn.Sigmoid())
        self.apply(init_weights)
        if cfg.flow:
            self.flow = nn.Conv2d(dim * 4, 2, 3, 1, 1)
            nn.init.zeros_(self.flow.weight)  # an untrained head is the identity warp
            nn.init.zeros_(self.flow.bias)

    def forward(self, image: torch.Tensor, aus: torch.Tensor, prior: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        # image (B, 3, H, W) in [-1, 1]; aus (B, N): the paper tiles aus to N constant planes
        # and convolves [image, planes] with main[0]. The planes' share is computed in closed
        # form (exact up to rounding; it was a quarter of G's time at 64 px, width 32).
        weight = self.main[0].weight  # (conv_dim, 3 + N, 7, 7)
        h = F.conv2d(image, weight[:, :3], padding=3) + _constant_planes_conv(aus.to(image.dtype), weight[:, 3:], image.shape[2:])
        if not self.cfg.flow:
            features = self.main[1:](h)  # (B, conv_dim, H, W)
            color, attention = self._heads(features, image)
            return color, attention  # (B, 3, H, W), (B, 1, H, W)
        low = self.main[1:self.bottleneck](h)  # (B, 4 * conv_dim, H/4, W/4)
        flow = _bounded_flow(self.flow(low), image.shape[-1], self.cfg.flow_max)  # (B, 2, H, W)
        if self.cfg.flow_prior:
            if prior is None:
                raise ValueError("this model adds its flow to the landmark prior: pass prior (B, 2, H, W)")
            flow = flow + prior.to(flow.dtype)
        color, attention = self._heads(self.main[self.bottleneck:](low), warp(image, flow))
        return color, attention, flow

    def _heads(self, features: torch.Tensor, base: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # Both 7x7 heads in one convolution: one pass over the widest feature map instead of two.
        heads = torch.cat([self.color[0].weight, self.attention[0].weight])  # (4, conv_dim, 7, 7)
        out = F.conv2d(features, heads, padding=3)
        color = torch.tanh(out[:, :3])
        if self.cfg.color == "residual":  # relative to what A retains: the (warped) input
            color = (base + 2 * color).clamp(-1, 1)
        attention = torch.sigmoid(out[:, 3:])
        if self.cfg.attention_border:
            attention = 1 - (1 - attention) * _border_ramp(attention.shape[-1], attention.device, attention.dtype)
        return color, attention


def _border_ramp(size: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """(size, size) weight: 0 on the outermost ring of a low-resolution map, 1 from 1/8 of the side in."""
    t = torch.arange(size, device=device, dtype=dtype)
    edge = torch.minimum(t, size - 1 - t) / max(1.0, size / 8)
    ramp = edge.clamp(0, 1)
    return ramp[:, None] * ramp[None, :]


def _bounded_flow(raw: torch.Tensor, side: int, flow_max: float) -> torch.Tensor:
    """The flow head's (B, 2, h, w) output -> (B, 2, side, side) pixels: tanh-bounded to
    flow_max * side, zero at the crop border, upsampled bilinearly (smooth)."""
    low = torch.tanh(raw) * (flow_max * side) * _border_ramp(raw.shape[-1], raw.device, raw.dtype)
    return F.interpolate(low, size=(side, side), mode="bilinear", align_corners=False)


def warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """image (B, C, H, W) sampled bilinearly at p + flow(p); flow (B, 2, H, W) in pixels (x, y),
    the border replicated: warp(x, F)(p) = x(p + F(p))."""
    b, _, h, w = image.shape
    ys = torch.arange(h, device=image.device, dtype=flow.dtype)
    xs = torch.arange(w, device=image.device, dtype=flow.dtype)
    # grid_sample's normalised coordinates (align_corners=False): pixel p -> (2p + 1) / size - 1
    gx = (2 * (xs[None, None, :] + flow[:, 0]) + 1) / w - 1
    gy = (2 * (ys[None, :, None] + flow[:, 1]) + 1) / h - 1
    grid = torch.stack([gx, gy], -1)  # (B, H, W, 2)
    return F.grid_sample(image, grid.to(image.dtype), mode="bilinear", padding_mode="border", align_corners=False)


def compose(outputs: tuple[torch.Tensor, ...], image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(edited, warped) of G's outputs on `image`: edited = A * warped + (1 - A) * C, where warped
    is warp(image, F) for a flow generator and the image itself for the paper's."""
    color, attention = outputs[0], outputs[1]
    warped = warp(image, outputs[2]) if len(outputs) > 2 else image
    return attention * warped + (1 - attention) * color, warped


def condition(cfg: ModelConfig, targets: torch.Tensor, sources: torch.Tensor | None) -> torch.Tensor:
    """What G is conditioned on (B, N): the target AUs, or for `condition = "change"` models their
    change from the face's own AUs `sources` (B, N), in [-1, 1]."""
    if cfg.condition == "target":
        return targets
    if sources is None:
        raise ValueError("this model is conditioned on the AU change: it needs the face's own AUs")
    return (targets - sources).clamp(-1, 1)


def _constant_planes_conv(aus: torch.Tensor, weight: torch.Tensor, size: torch.Size) -> torch.Tensor:
    """conv2d(aus tiled to (B, N, H, W), weight (O, N, k, k), zero padding k // 2) in closed form.

    A constant plane's output at (i, j) is its value times the sum of the kernel taps that fall
    inside the image; those taps form a rectangle, rows(i) x cols(j), so the output is
    rows @ (sum_n aus_n * weight_n) @ cols^T: O(B*O*H*W*k) instead of O(B*O*N*H*W*k*k)."""
    k = weight.shape[-1]

    def inside(n: int) -> torch.Tensor:  # (n, k): tap t of output position p reads p + t - k // 2
        reads = torch.arange(n, device=aus.device)[:, None] + torch.arange(k, device=aus.device) - k // 2
        return ((reads >= 0) & (reads < n)).to(aus.dtype)

    mixed = torch.einsum("bn,onuv->bouv", aus, weight)  # (B, O, k, k)
    return inside(size[0]) @ mixed @ inside(size[1]).T  # (B, O, H, W)


class Critic(nn.Module):
    """PatchGAN critic D(image) -> (realness map (B, 1, k, k), AU regression (B, N))."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        dim = cfg.critic_dim
        layers: list[nn.Module] = [nn.Conv2d(3, dim, 4, 2, 1), nn.LeakyReLU(0.01, inplace=True)]
        for _ in range(cfg.critic_layers - 1):
            layers += [nn.Conv2d(dim, dim * 2, 4, 2, 1), nn.LeakyReLU(0.01, inplace=True)]
            dim *= 2
        self.main = nn.Sequential(*layers)
        self.realness = nn.Conv2d(dim, 1, 3, 1, 1, bias=False)
        self.aus = nn.Conv2d(dim, cfg.num_aus, cfg.critic_final_size, bias=False)
        self.apply(init_weights)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.main(image)  # (B, critic_dim * 2^(layers-1), k, k)
        return self.realness(features), self.aus(features).flatten(1)


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
