import pytest
import torch

from recsys_core.deep.layers import Dropout


def test_dropout_zeroes_at_its_rate_and_keeps_the_expectation() -> None:
    torch.manual_seed(0)
    layer = Dropout(0.2)
    x = torch.full((200, 500), 3.0)
    out = layer(x)
    dropped = (out == 0).float().mean().item()
    assert dropped == pytest.approx(0.2, abs=0.005)  # 100k draws: SE 0.0013
    kept = out[out != 0]
    assert torch.allclose(kept, torch.full_like(kept, 3.0 * 65536 / (65536 - 13107)))
    assert out.mean().item() == pytest.approx(3.0, rel=0.01)


def test_dropout_draws_every_element_independently() -> None:
    """Each 16-bit share of a 64-bit draw decides its own element: no position is favoured."""
    torch.manual_seed(1)
    out = Dropout(0.5)(torch.ones(40_000, 4))
    rates = (out == 0).float().mean(dim=0)  # per share of the word
    assert torch.allclose(rates, torch.full_like(rates, 0.5), atol=0.015)


def test_dropout_gradient_is_its_mask_and_scale() -> None:
    torch.manual_seed(2)
    x = torch.randn(64, 33, requires_grad=True)
    out = Dropout(0.3)(x)
    out.sum().backward()
    assert x.grad is not None
    scale = 65536 / (65536 - round(0.3 * 65536))
    expected = torch.where(out != 0, torch.tensor(scale), torch.tensor(0.0))
    assert torch.allclose(x.grad, expected)


def test_dropout_is_the_identity_outside_training_and_at_zero() -> None:
    x = torch.randn(10, 7)
    assert torch.equal(Dropout(0.5).eval()(x), x)
    assert torch.equal(Dropout(0.0)(x), x)


def test_dropout_follows_the_seed() -> None:
    x = torch.ones(50, 50)
    torch.manual_seed(3)
    first = Dropout(0.4)(x)
    torch.manual_seed(3)
    assert torch.equal(Dropout(0.4)(x), first)


def test_dropout_rejects_a_rate_of_one() -> None:
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\)"):
        Dropout(1.0)
