"""Generator and critic: the paper's shapes and sizes, configurable variants, initialisation."""
import pytest
import torch

from ganivid.config import ModelConfig
from ganivid.errors import ConfigError
from ganivid.networks import Critic, Generator, count_parameters

PAPER = ModelConfig()  # the dataclass defaults are the paper's architecture


def test_paper_preset_sizes_and_shapes_without_allocating():
    # The meta device gives parameters and activations shapes but no memory or compute.
    with torch.device("meta"):
        g, d = Generator(PAPER), Critic(PAPER)
        x = torch.empty(25, 3, 128, 128)
        color, attention = g(x, torch.empty(25, 17))
        score, aus = d(x)
    assert 8.3e6 < count_parameters(g) < 8.6e6  # paper: 8.4 M
    assert 44e6 < count_parameters(d) < 46e6  # paper: ~45 M
    assert color.shape == (25, 3, 128, 128) and attention.shape == (25, 1, 128, 128)
    assert score.shape == (25, 1, 2, 2) and aus.shape == (25, 17)
    widths = [m.out_channels for m in d.main if isinstance(m, torch.nn.Conv2d)]
    assert widths == [64, 128, 256, 512, 1024, 2048]


@pytest.mark.parametrize("size,final,layers", [(32, 2, 4), (64, 2, 5), (96, 3, 5), (128, 2, 6)])
def test_critic_depth_follows_resolution(size, final, layers):
    cfg = ModelConfig(image_size=size, conv_dim=8, repeat_num=1, critic_dim=4)
    assert (cfg.critic_final_size, cfg.critic_layers) == (final, layers)
    score, aus = Critic(cfg)(torch.zeros(2, 3, size, size))
    assert score.shape == (2, 1, final, final) and aus.shape == (2, 17)


@pytest.mark.parametrize("upsample", ["transposed", "resize"])
def test_generator_ranges_and_conditioning(upsample):
    torch.manual_seed(0)
    cfg = ModelConfig(image_size=32, conv_dim=8, repeat_num=2, critic_dim=8, num_aus=5, upsample=upsample)
    g = Generator(cfg)
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    color, attention = g(x, torch.zeros(3, 5))
    assert color.shape == (3, 3, 32, 32) and attention.shape == (3, 1, 32, 32)
    assert color.abs().max() <= 1 and 0 <= attention.min() and attention.max() <= 1
    color2, _ = g(x, torch.ones(3, 5))
    assert not torch.allclose(color, color2)  # the AU planes reach the output


def test_weights_are_normal_002_and_residual_blocks_counted():
    torch.manual_seed(0)
    g = Generator(ModelConfig(image_size=32, conv_dim=16, repeat_num=3))
    weights = torch.cat([m.weight.flatten() for m in g.modules() if isinstance(m, torch.nn.Conv2d)])
    assert abs(weights.std().item() - 0.02) < 0.002 and abs(weights.mean().item()) < 0.002
    assert sum(type(m).__name__ == "ResidualBlock" for m in g.modules()) == 3


@pytest.mark.parametrize("size", [30, 80, 4])
def test_bad_image_size_is_a_config_error(size):
    with pytest.raises(ConfigError, match="image_size"):
        ModelConfig(image_size=size)


@pytest.mark.parametrize("size", [8, 32, 96])
def test_generator_equals_the_papers_formulation(size):
    # forward() computes the tiled-AU convolution in closed form and both heads in one conv;
    # this is the paper's literal concat -> main -> two heads, which it must reproduce.
    torch.manual_seed(1)
    g = Generator(ModelConfig(image_size=size, conv_dim=8, repeat_num=1, critic_dim=8))
    x, y = torch.rand(3, 3, size, size) * 2 - 1, torch.rand(3, 17)
    features = g.main(torch.cat([x, y[:, :, None, None].expand(3, 17, size, size)], dim=1))
    color, attention = g(x, y)
    torch.testing.assert_close(color, g.color(features), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(attention, g.attention(features), atol=1e-5, rtol=1e-4)
    # Gradients too, in float64 so that only the algebra is compared, not rounding order.
    g, x, y = g.double(), x.double(), y.double()
    planes = y[:, :, None, None].expand(3, 17, size, size)
    (grad,) = torch.autograd.grad(g(x, y)[0].sum(), g.main[0].weight)
    (ref,) = torch.autograd.grad(g.color(g.main(torch.cat([x, planes], 1))).sum(), g.main[0].weight)
    torch.testing.assert_close(grad, ref, atol=1e-9, rtol=1e-7)


def test_residual_colour_mask_starts_as_the_input_and_round_trips(tmp_path):
    from ganivid.checkpoint import load_generator, save_inference

    torch.manual_seed(0)
    cfg = ModelConfig(image_size=32, conv_dim=8, repeat_num=1, critic_dim=8, color="residual")
    g = Generator(cfg)
    torch.nn.init.zeros_(g.color[0].weight)  # a zero head: C is exactly the input
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    color, _ = g(x, torch.rand(2, 17))
    assert torch.equal(color, x)
    torch.nn.init.normal_(g.color[0].weight, 0.0, 0.5)
    color, _ = g(x, torch.rand(2, 17))
    assert color.abs().max() <= 1 and not torch.equal(color, x)
    path = save_inference(tmp_path / "g.safetensors", g, cfg, crop_spec="test")
    loaded, info = load_generator(path)
    assert info.model.color == "residual"
    with torch.no_grad():
        assert torch.equal(loaded(x, torch.zeros(2, 17))[0], g(x, torch.zeros(2, 17))[0])
    with pytest.raises(ConfigError, match="model.color"):
        ModelConfig(color="delta")
