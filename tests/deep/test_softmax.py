"""The chunked full softmax equals autograd's cross-entropy in value and gradients."""

from __future__ import annotations

import pytest
import torch

from recsys_core.deep.softmax import full_softmax_loss


@pytest.mark.parametrize("budget", [1, 50, 10_000])  # one row per chunk, uneven chunks, one
def test_equals_cross_entropy_over_the_full_logits(budget: int) -> None:
    gen = torch.Generator().manual_seed(0)
    states = torch.randn(23, 6, generator=gen, dtype=torch.float64) * 3
    items = torch.randn(17, 6, generator=gen, dtype=torch.float64)
    targets = torch.randint(0, 17, (23,), generator=gen)
    ours_s, ours_i = states.clone().requires_grad_(), items.clone().requires_grad_()
    ref_s, ref_i = states.clone().requires_grad_(), items.clone().requires_grad_()
    ours = full_softmax_loss(ours_s.float(), ours_i.float(), targets, budget)
    ref = torch.nn.functional.cross_entropy(ref_s.float() @ ref_i.float().T, targets)
    (2.0 * ours).backward()
    (2.0 * ref).backward()
    torch.testing.assert_close(ours, ref)
    assert ours_s.grad is not None and ours_i.grad is not None
    torch.testing.assert_close(ours_s.grad, ref_s.grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ours_i.grad, ref_i.grad, rtol=1e-5, atol=1e-6)
