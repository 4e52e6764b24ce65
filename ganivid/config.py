"""Model and training configuration: dataclasses, TOML presets, and command-line overrides.

Precedence: dataclass defaults < TOML preset < overrides (CLI flags, `--set section.key=value`).
The defaults are the paper's setup, so `training/paper.toml` only names the paper's values."""
from __future__ import annotations

import dataclasses
import difflib
import sys
import typing
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from ganivid.errors import ConfigError

# Presets live in the top-level training/ folder of the checkout; names resolve there.
PRESETS_DIR = Path(__file__).resolve().parent.parent / "training"


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of the generator and the critic (stored in every checkpoint)."""

    # Side of the square face crop in pixels: G halves it twice, D halves it down to 2 or 3 px,
    # so it must be 2^k or 3 * 2^k (64, 96, 128 ...).
    image_size: int = 128
    # Conditioning vector length; 17 = the OpenFace AUs of ganivid.aus.AU_NAMES.
    num_aus: int = 17
    # G's first-layer width; it doubles at each of the two downsamplings (paper: 64).
    conv_dim: int = 64
    # Residual blocks at 1/4 resolution (paper: 6).
    repeat_num: int = 6
    # D's first-layer width; it doubles at every layer (paper: 64, reaching 2048 at 128 px).
    critic_dim: int = 64
    # "transposed": the paper's 4x4 stride-2 transposed convs; "resize": nearest upsampling +
    # 3x3 conv, which avoids checkerboard colour masks at 2.25x the cost of those two layers.
    upsample: str = "transposed"
    # "absolute": the paper's colour mask C = tanh(head); "residual": C = input + 2 tanh(head),
    # clipped to [-1, 1], so C starts as a sharp copy of the face and only has to learn the
    # change (a 64 px model's young absolute C is a blur that any edit pastes in).
    color: str = "absolute"
    # A third head: a backward flow F at 1/4 resolution, tanh-bounded, zero at the crop border and
    # zero-initialised; output = A * warp(I, F) + (1 - A) * C, so geometry is moved, not painted
    # (beyond the paper; ../shared/GANIMATION.md, "the flow generator").
    flow: bool = False
    # The flow's bound, a fraction of the crop side (0.15 of 3.2 d = 0.48 d: a full jaw drop).
    flow_max: float = 0.15
    # What G is conditioned on: "target", the paper's absolute AUs, or "change", target minus the
    # face's own AUs (in [-1, 1]): the flow then depends on the request, not on reading the face first.
    condition: str = "target"
    # Flow models only: F = the landmark-driven flow of the request (warps.prior_flow, from the
    # face's tracked landmarks) + the head's output, a residual (Geng et al. 2018's warp-guided
    # split): geometry exact from the first step; A and C paint what the warp cannot.
    flow_prior: bool = False
    # A = 1 (keep the input) on the crop's outer eighth, ramping in: the colour mask cannot paint
    # along the crop's edge, where a paste-back would show it as a seam.
    attention_border: bool = False

    def __post_init__(self) -> None:
        _check_positive(self, ("image_size", "num_aus", "conv_dim", "critic_dim"))
        if self.repeat_num < 0:
            raise ConfigError(f"model.repeat_num must be >= 0, got {self.repeat_num}")
        if self.upsample not in ("transposed", "resize"):
            raise ConfigError(f"model.upsample must be 'transposed' or 'resize', got {self.upsample!r}")
        if self.condition not in ("target", "change"):
            raise ConfigError(f"model.condition must be 'target' or 'change', got {self.condition!r}")
        if self.flow_prior and not (self.flow and self.condition == "change"):
            raise ConfigError("model.flow_prior needs model.flow = true and model.condition = \"change\"")
        if not 0 < self.flow_max <= 0.5:
            raise ConfigError(f"model.flow_max must be in (0, 0.5], got {self.flow_max}")
        if self.color not in ("absolute", "residual"):
            raise ConfigError(f"model.color must be 'absolute' or 'residual', got {self.color!r}")
        if self.image_size < 8 or self.image_size % 4 or self.critic_final_size not in (2, 3):
            raise ConfigError(
                f"model.image_size must be a power of two or 3 times one, at least 8 "
                f"(e.g. 32, 64, 96, 128), got {self.image_size}")

    @property
    def critic_layers(self) -> int:
        """Number of stride-2 convs in D: halve while the map stays at least 2 px."""
        n, layers = self.image_size, 0
        while n % 2 == 0 and n // 2 >= 2:
            n, layers = n // 2, layers + 1
        return layers

    @property
    def critic_final_size(self) -> int:
        """Side of D's last feature map (2 at 128 px, 3 at 96 px)."""
        return self.image_size >> self.critic_layers


@dataclass(frozen=True)
class TrainConfig:
    """The training loop: schedule, loss weights, logging (the paper's values by default)."""

    # Images per process per step; under torchrun the global batch is batch_size * processes.
    batch_size: int = 25
    # Training length in passes over the data (paper: 30 = 20 constant + 10 decaying) ...
    epochs: float = 30.0
    # ... or in steps (one critic update per step); when > 0 it wins over `epochs`.
    steps: int = 0
    # Critic updates per generator update (paper: 5); the generator trains every n-th step.
    n_critic: int = 5
    # Adam, as in the paper; separate rates so a preset can speed up one side.
    lr_g: float = 1e-4
    lr_d: float = 1e-4
    beta1: float = 0.5
    beta2: float = 0.999
    # Final fraction of the steps over which both rates fall linearly to 0 (paper: 10/30).
    decay_fraction: float = 1 / 3
    # Loss weights (GANIMATION.md): gradient penalty, AU regression on a plain mean (the
    # official code's 4000 / batch 25), cycle L1, attention mean, and squared TV inside it.
    lambda_gp: float = 10.0
    lambda_y: float = 160.0
    lambda_cyc: float = 10.0
    lambda_a: float = 0.1
    lambda_tv: float = 1e-4
    # The GAN phase's colour guard: weight of the mean chroma shift of each edit (losses.chroma_shift);
    # without it a critic can be fooled by tinting the face.
    lambda_chroma: float = 0.0
    # ... and of a flow-prior model's residual flow (mean |F - prior|, pixels): keeps the GAN
    # phase from bending the geometry the warp pairs taught.
    lambda_residual_flow: float = 0.0
    # Gradient penalty on every k-th critic step only, weighted k * lambda_gp ("lazy"
    # regularisation as in StyleGAN2): the penalty's double backward is ~2/3 of a critic step.
    # 1 = the paper (every step).
    gp_every: int = 1
    # L1 to a paired ground-truth target when the dataset provides one (0 = unpaired paper loop).
    lambda_pair: float = 0.0
    # The same L1 between the colour mask C and the paired target: without it the composite's
    # L1 is met most cheaply by copying the input (A -> 1 wherever the target equals x), so C
    # never learns the edit; with it C learns the whole target face and A picks where to use it.
    lambda_pair_color: float = 0.0
    # Fraction of each batch edited towards its paired target; the rest gets the unpaired
    # loop's random targets (another sample's AUs + noise), so the critic's AU signal keeps
    # teaching AU combinations that the pairs never show.
    pair_fraction: float = 1.0
    # Cross-entropy of the attention A against 1 - (where the pair differs): shows A where to edit from
    # the first step instead of leaving it to find that out through a blurry young colour mask.
    lambda_pair_attention: float = 0.0
    # Weight w of the changed pixels in both pair L1 terms (weights 1 + w there, 1 elsewhere): the
    # edit is a minority of a face (~17 % of a synthetic 64 px crop), so a plain mean is mostly
    # "copy the rest" and the edit's share of the gradient is small. 0 = plain means.
    pair_edit_weight: float = 0.0
    # Flow models on pairs whose flow is known (warps): L1 of F to it, weighted as the pair L1
    # terms; then squared TV of F (smoothness) and a hinge on det(I + grad F) (no fold-overs).
    lambda_flow: float = 0.0
    lambda_flow_smooth: float = 0.0
    lambda_flow_fold: float = 0.0
    # Real pairs (train(real=...), ganivid/pairtrain.py) in the paired phase: this many per step
    # beside the batch_size warp pairs, their terms weighted lambda_real. Their flow is a prior,
    # not the truth: its L1 weighs lambda_real_flow (the warp pairs' weighs lambda_flow). Their
    # photometric and colour L1 weigh the mouth region (where teeth appear) 1 + real_mouth_weight.
    real_batch_size: int = 0
    lambda_real: float = 1.0
    lambda_real_flow: float = 0.0
    real_mouth_weight: float = 0.0
    # Target AUs = another sample's AUs + U(-noise, noise), clamped to [0, 1].
    target_noise: float = 0.1
    # Horizontal flips: the paper's only augmentation (the 17 AUs are symmetric).
    flip: bool = True
    # Steps that train only the critic's AU head on real images before the GAN starts: a
    # calibrated critic gives the generator a useful AU signal from its first update.
    critic_warmup_steps: int = 0
    # Then steps that train only the generator on paired targets (the lambda_pair terms and the
    # attention terms, no critic, no cycle): ~5x cheaper than a GAN step, so a generator that
    # starts the GAN phase already editing. Needs a paired dataset.
    pair_warmup_steps: int = 0
    # Final fraction of the paired warm-up over which lr_g falls linearly to 0 (decay_fraction's
    # schedule for a run that is all supervised); 0 keeps lr_g constant into the GAN phase.
    pair_decay_fraction: float = 0.0
    seed: int = 0
    # "auto" (CUDA if present), "cpu", "cuda" or "cuda:N".
    device: str = "auto"
    # Every how many steps to log metrics, write a sample grid and save a checkpoint.
    log_every: int = 10
    sample_every: int = 500
    ckpt_every: int = 1000
    # Training checkpoints kept in the run directory (oldest deleted first).
    keep_checkpoints: int = 3
    # Faces in the sample grid.
    sample_count: int = 8
    # Decoded images kept in memory (MB); beyond it images are decoded again each epoch.
    cache_mb: int = 4096

    def __post_init__(self) -> None:
        _check_positive(self, ("batch_size", "n_critic", "gp_every", "log_every", "sample_every",
                               "ckpt_every", "keep_checkpoints", "sample_count"))
        for name in ("epochs", "lr_g", "lr_d", "pair_edit_weight", "lambda_flow", "lambda_flow_smooth", "lambda_flow_fold",
                     "real_batch_size", "lambda_real", "lambda_real_flow", "real_mouth_weight", "lambda_chroma", "lambda_residual_flow"):
            if getattr(self, name) < 0:
                raise ConfigError(f"train.{name} must be >= 0, got {getattr(self, name)}")
        if min(self.steps, self.critic_warmup_steps, self.pair_warmup_steps, self.cache_mb) < 0:
            raise ConfigError("train.steps, train.critic_warmup_steps, train.pair_warmup_steps and "
                              "train.cache_mb must be >= 0")
        if self.pair_warmup_steps and max(self.lambda_pair, self.lambda_pair_color, self.lambda_pair_attention,
                                          self.lambda_flow) <= 0:
            raise ConfigError("train.pair_warmup_steps needs train.lambda_pair, lambda_pair_color, "
                              "lambda_pair_attention or lambda_flow > 0")
        if self.steps == 0 and self.epochs == 0 and self.critic_warmup_steps == 0 and self.pair_warmup_steps == 0:
            raise ConfigError("nothing to train: train.steps and train.epochs are both 0")
        if not 0 <= self.pair_fraction <= 1:
            raise ConfigError(f"train.pair_fraction must be in [0, 1], got {self.pair_fraction}")
        for name in ("decay_fraction", "pair_decay_fraction"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"train.{name} must be in [0, 1], got {getattr(self, name)}")
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1):
            raise ConfigError("train.beta1 and train.beta2 must be in [0, 1)")


SECTIONS: dict[str, type] = {"model": ModelConfig, "train": TrainConfig}


def _check_positive(obj: Any, names: tuple[str, ...]) -> None:
    section = "model" if isinstance(obj, ModelConfig) else "train"
    for name in names:
        if getattr(obj, name) < 1:
            raise ConfigError(f"{section}.{name} must be >= 1, got {getattr(obj, name)}")


def _coerce(section: str, key: str, value: Any, cls: type, source: str) -> Any:
    """Value checked against the field's type (ints are accepted where floats are expected)."""
    hint = typing.get_type_hints(cls)[key]
    ok = {bool: isinstance(value, bool), str: isinstance(value, str),
          int: isinstance(value, int) and not isinstance(value, bool),
          float: isinstance(value, (int, float)) and not isinstance(value, bool)}[hint]
    if not ok:
        raise ConfigError(f"{section}.{key} in {source} must be {hint.__name__}, got {value!r}")
    return float(value) if hint is float else value


def preset_path(preset: str | Path) -> Path:
    """Path of a preset given as a file path or as a name in training/ (`cpu`, `paper`, `tiny`)."""
    p = Path(preset)
    if p.suffix == ".toml" or p.exists():
        if not p.is_file():
            raise ConfigError(f"config file {p} does not exist")
        return p
    for base in (Path("training"), PRESETS_DIR):
        if (base / f"{p}.toml").is_file():
            return base / f"{p}.toml"
    known = sorted(q.stem for q in PRESETS_DIR.glob("*.toml")) if PRESETS_DIR.is_dir() else []
    raise ConfigError(f"unknown preset {str(preset)!r}; give a .toml file or one of: {', '.join(known) or '(none found)'}")


def parse_override(text: str) -> tuple[str, Any]:
    """`section.key=value` (value in TOML syntax, bare words taken as strings) -> (key, value)."""
    key, sep, raw = text.partition("=")
    if not sep or "." not in key:
        raise ConfigError(f"--set expects section.key=value (e.g. train.lr_g=2e-4), got {text!r}")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return key.strip(), value


def build_configs(values: dict[str, dict[str, Any]], source: str = "defaults",
                  base: tuple[ModelConfig, TrainConfig] | None = None) -> tuple[ModelConfig, TrainConfig]:
    """Configs from nested {section: {key: value}}; unknown sections or keys raise ConfigError."""
    current = {"model": asdict(base[0]), "train": asdict(base[1])} if base else {"model": {}, "train": {}}
    for section, table in values.items():
        if section not in SECTIONS:
            raise ConfigError(f"unknown config section [{section}] in {source}; known: model, train")
        if not isinstance(table, dict):
            raise ConfigError(f"{section} in {source} must be a table")
        cls = SECTIONS[section]
        known = {f.name for f in fields(cls)}
        for key, value in table.items():
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f"did you mean {section}.{close[0]}?" if close else f"known: {', '.join(sorted(known))}"
                raise ConfigError(f"unknown config key {section}.{key} in {source} ({hint})")
            current[section][key] = _coerce(section, key, value, cls, source)
    return ModelConfig(**current["model"]), TrainConfig(**current["train"])


def load_config(preset: str | Path | None = None,
                overrides: dict[str, Any] | None = None) -> tuple[ModelConfig, TrainConfig]:
    """(ModelConfig, TrainConfig) from defaults, then a TOML preset, then `section.key` overrides."""
    configs = (ModelConfig(), TrainConfig())
    if preset is not None:
        path = preset_path(preset)
        try:
            values = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as ex:
            raise ConfigError(f"{path} is not valid TOML: {ex}") from None
        configs = build_configs(values, str(path), configs)
    if overrides:
        nested: dict[str, dict[str, Any]] = {}
        for dotted, value in overrides.items():
            section, _, key = dotted.partition(".")
            nested.setdefault(section, {})[key] = value
        configs = build_configs(nested, "command-line options", configs)
    return configs


def model_config_from_dict(values: dict[str, Any], source: str) -> ModelConfig:
    """ModelConfig stored in a checkpoint (unknown keys mean a newer or foreign file)."""
    return build_configs({"model": dict(values)}, source)[0]


def replace(cfg: Any, **changes: Any) -> Any:
    """A copy of a frozen config with some fields changed (validated again)."""
    return dataclasses.replace(cfg, **changes)
