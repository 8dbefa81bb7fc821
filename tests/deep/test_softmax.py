"""The chunked full softmax equals autograd's cross-entropy in value and gradients."""

from __future__ import annotations

import pytest
import torch

from recsys_core.deep.softmax import full_softmax_loss
from recsys_core.deep.torch_utils import native_bfloat16


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


def test_bfloat16_products_keep_loss_and_gradients_within_rounding() -> None:
    """bfloat16 matrix products (fp32 softmax) stay within bfloat16's rounding of fp32's."""
    gen = torch.Generator().manual_seed(1)
    states = torch.randn(300, 16, generator=gen)
    items = 0.3 * torch.randn(500, 16, generator=gen)
    targets = torch.randint(0, 500, (300,), generator=gen)
    grads = []
    for dtype in (torch.float32, torch.bfloat16):
        s, i = states.clone().requires_grad_(), items.clone().requires_grad_()
        loss = full_softmax_loss(s, i, targets, 4_000, matmul_dtype=dtype)
        loss.backward()
        assert loss.dtype == torch.float32 and s.grad is not None and i.grad is not None
        grads.append((loss.item(), torch.cat([s.grad.ravel(), i.grad.ravel()])))
    (exact, exact_grad), (rounded, rounded_grad) = grads
    assert rounded == pytest.approx(exact, rel=1e-3)
    error = float((rounded_grad - exact_grad).norm() / exact_grad.norm())
    assert 0 < error < 0.02  # rounded (not the fp32 path), but only by bfloat16's precision


def test_float32_products_stay_exact_inside_the_networks_autocast() -> None:
    """The user encoder's network may run under bfloat16 autocast; the loss sets its own."""
    gen = torch.Generator().manual_seed(2)
    states = torch.randn(40, 8, generator=gen)
    items = torch.randn(30, 8, generator=gen)
    targets = torch.randint(0, 30, (40,), generator=gen)
    reference = torch.nn.functional.cross_entropy(states @ items.T, targets)
    with torch.autocast("cpu", torch.bfloat16):
        loss = full_softmax_loss(states, items, targets, matmul_dtype=torch.float32)
    torch.testing.assert_close(loss, reference)


@pytest.mark.parametrize(("avx512_bf16", "amx", "expected"), [
    (False, False, False), (True, False, True), (False, True, True)])
def test_a_cpu_multiplies_bfloat16_natively_only_with_avx512_bf16_or_amx(
        monkeypatch: pytest.MonkeyPatch, avx512_bf16: bool, amx: bool, expected: bool) -> None:
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    assert native_bfloat16(torch.device("cpu")) is expected
    assert native_bfloat16(torch.device("meta")) is False
