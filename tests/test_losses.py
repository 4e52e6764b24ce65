"""Loss functions against hand-computed values."""
import math

import torch

from ganivid.losses import (attention_loss, au_loss, changed_region, composite, critic_loss, generator_loss,
                            gradient_penalty, pair_loss, total_variation)


def test_compositing_identity_when_attention_is_one():
    image, color = torch.rand(2, 3, 8, 8) * 2 - 1, torch.rand(2, 3, 8, 8) * 2 - 1
    assert torch.equal(composite(color, torch.ones(2, 1, 8, 8), image), image)
    assert torch.equal(composite(color, torch.zeros(2, 1, 8, 8), image), color)
    half = composite(color, torch.full((2, 1, 8, 8), 0.5), image)
    torch.testing.assert_close(half, (image + color) / 2)


def test_gradient_penalty_per_sample_hand_computed():
    # out_i = sum(x_i^2) / 2 has gradient x_i: sample norms 5 and 1 -> ((5-1)^2 + 0) / 2 = 8.
    x_hat = torch.tensor([[3.0, 4.0], [0.6, 0.8]], requires_grad=True)
    out = (x_hat**2).sum(1, keepdim=True) / 2
    torch.testing.assert_close(gradient_penalty(out, x_hat), torch.tensor(8.0))


def test_gradient_penalty_is_differentiable_in_the_critic():
    # out_i = a * sum(x_i), x_i in R^4: grad norm 2a, gp = (2a - 1)^2, d gp / da = 4 (2a - 1).
    a = torch.tensor(1.0, requires_grad=True)
    x_hat = torch.randn(3, 4, requires_grad=True)
    gp = gradient_penalty(a * x_hat.sum(1), x_hat)
    (da,) = torch.autograd.grad(gp, a)
    torch.testing.assert_close(gp, torch.tensor(1.0))
    torch.testing.assert_close(da, torch.tensor(4.0))


def test_gradient_penalty_sums_the_patch_map():
    # A 2x2 realness map of a linear critic: the gradient of the map's sum is 4 w.
    w = torch.full((1, 1, 2, 2), 0.125)
    x_hat = torch.randn(2, 1, 2, 2, requires_grad=True)
    out = (x_hat * w).sum((2, 3), keepdim=True).expand(2, 1, 2, 2)
    torch.testing.assert_close(gradient_penalty(out, x_hat), torch.tensor(0.0))


def test_total_variation_and_attention_loss():
    a = torch.zeros(2, 1, 3, 3)
    a[0, 0, 1, 1] = 1.0  # four squared differences of 1 in sample 0, none in sample 1
    assert total_variation(a).item() == 2.0
    torch.testing.assert_close(attention_loss(a, 0.5), a.mean() + 1.0)


def test_au_loss_is_a_plain_mean_independent_of_batch_size():
    pred, target = torch.rand(4, 17), torch.rand(4, 17)
    torch.testing.assert_close(au_loss(pred, target), ((pred - target) ** 2).mean())
    torch.testing.assert_close(au_loss(pred.repeat(3, 1), target.repeat(3, 1)), au_loss(pred, target))


def test_critic_and_generator_losses_weigh_their_terms():
    real, fake = torch.full((2, 1, 2, 2), 3.0), torch.full((2, 1, 2, 2), 1.0)
    aus, y = torch.zeros(2, 17), torch.full((2, 17), 0.5)
    d = critic_loss(real, fake, aus, y, torch.tensor(0.2), lambda_gp=10, lambda_y=160)
    torch.testing.assert_close(d.adv, torch.tensor(-2.0))
    torch.testing.assert_close(d.gp, torch.tensor(2.0))
    torch.testing.assert_close(d.au, torch.tensor(40.0))
    torch.testing.assert_close(d.total, torch.tensor(40.0))

    x, x_c = torch.zeros(2, 3, 4, 4), torch.full((2, 3, 4, 4), 0.1)
    att = torch.full((2, 1, 4, 4), 0.5)
    kwargs = dict(lambda_y=160, lambda_cyc=10, lambda_a=0.1, lambda_tv=1e-4)
    g = generator_loss(fake, aus, y, x, x_c, att, att, **kwargs)
    torch.testing.assert_close(g.adv, torch.tensor(-1.0))
    torch.testing.assert_close(g.cyc, torch.tensor(1.0))
    torch.testing.assert_close(g.attn, torch.tensor(0.1))  # 0.1 * (0.5 + 0.5), TV 0
    assert g.pair.item() == 0
    paired = generator_loss(fake, aus, y, x, x_c, att, att, **kwargs, edited=x, paired=x + 0.5, lambda_pair=2.0)
    torch.testing.assert_close(paired.pair, torch.tensor(1.0))
    torch.testing.assert_close(paired.total, g.total + 1.0)
    # The colour mask's L1 to the target, and a mask that keeps only the first sample's pair.
    color = torch.stack([x[0] + 0.5, x[1] - 1.0])
    both = generator_loss(fake, aus, y, x, x_c, att, att, **kwargs, edited=x, paired=x + 0.5, lambda_pair=2.0,
                          color=color, lambda_pair_color=3.0)
    torch.testing.assert_close(both.pair, torch.tensor(1.0 + 3.0 * 0.75))
    first = generator_loss(fake, aus, y, x, x_c, att, att, **kwargs, edited=x, paired=x + 0.5, lambda_pair=2.0,
                           color=color, lambda_pair_color=3.0, pair_mask=torch.tensor([True, False]))
    torch.testing.assert_close(first.pair, torch.tensor(1.0))
    none = generator_loss(fake, aus, y, x, x_c, att, att, **kwargs, edited=x, paired=x + 0.5, lambda_pair=2.0,
                          pair_mask=torch.tensor([False, False]))
    assert none.pair.item() == 0 and torch.equal(none.total, g.total)
    # Attention supervised towards 1 - (where the pair differs): here the pair differs everywhere.
    att_only = generator_loss(fake, aus, y, x, x_c, att, att, **kwargs, paired=x + 0.5, lambda_pair_attention=4.0)
    torch.testing.assert_close(att_only.pair, torch.tensor(4.0 * math.log(2)))  # 4 * BCE(0.5, 0)


def test_changed_region_marks_where_the_pair_differs_grown_by_a_pixel():
    x = torch.zeros(1, 3, 7, 7)
    t = x.clone()
    t[0, 1, 3, 3] = 0.5  # one pixel, one channel
    t[0, 0, 0, 6] = 0.01  # below the threshold
    m = changed_region(x, t)
    assert m.shape == (1, 1, 7, 7)
    assert m[0, 0, 2:5, 2:5].eq(1).all() and m.sum() == 9
    assert changed_region(x, t, grow=0).sum() == 1


def test_pair_edit_weight_focuses_the_l1_on_the_changed_pixels():
    # Target = input + 1 on a 2x2 patch: changed region (grown 1 px) is 4x4 = 16 of 64 pixels.
    x = torch.zeros(1, 3, 8, 8)
    t = x.clone()
    t[:, :, 3:5, 3:5] = 1.0
    att = torch.full((1, 1, 8, 8), 0.5)
    plain = pair_loss(x, t, x, None, att, 1.0, 0.0, 0.0)
    torch.testing.assert_close(plain, torch.tensor(4 / 64))  # the copy misses 4 of 64 pixels by 1
    # w = 3: weights 4 on 16 pixels, 1 on 48 (mean 1.75); the 4 missed pixels weigh 4 each.
    weighted = pair_loss(x, t, x, x, att, 1.0, 2.0, 0.0, edit_weight=3.0)
    torch.testing.assert_close(weighted, torch.tensor(3 * (4 * 4 / 64) / 1.75))
    # Outside the changed region the weighting changes nothing: an exact edit still costs 0.
    assert pair_loss(x, t, t, t, att, 1.0, 1.0, 0.0, edit_weight=3.0).item() == 0
