from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recsys_core.data.interactions import InteractionData
from recsys_core.data.vocab import Vocabulary
from recsys_core.deep import torch_utils, user_encoder
from recsys_core.deep.user_encoder import SequenceNet, UserEncoder, UserEncoderConfig, encode
from recsys_core.scoring import Scorer, TrainOptions
from tests.scorer_contract import ScorerContract, checkerboard

SMALL = UserEncoderConfig(dim=32, blocks=1, max_len=20, text_hidden=32, epochs=15,
                          batch_size=16, lr=1e-2, dropout=0.1)


class TestUserEncoderContract(ScorerContract):
    def make_scorer(self) -> Scorer:
        return UserEncoder(SMALL)


def cycle_walks(n_users: int = 200, n_items: int = 40, steps: int = 12, dim: int = 64,
                seed: int = 0) -> tuple[InteractionData, np.ndarray]:
    """Users walk a hidden cycle over the items; the next item is always the successor.

    Item embeddings are random (they say nothing of the cycle), so only the order can teach
    the model. Returns the training data (the first ``steps`` items of each walk, in time
    order) and each user's next item.
    """
    rng = np.random.default_rng(seed)
    cycle = rng.permutation(n_items)
    starts = rng.integers(0, n_items, n_users)
    walks = cycle[(starts[:, None] + np.arange(steps + 1)) % n_items]
    rows = np.repeat(np.arange(n_users), steps)
    shape = (n_users, n_items)
    matrix = sp.csr_matrix((np.ones(rows.size, np.float32), (rows, walks[:, :steps].ravel())),
                           shape=shape)
    times = sp.csr_matrix((np.tile(np.arange(1.0, steps + 1), n_users),
                           (rows, walks[:, :steps].ravel())), shape=shape)
    embeddings = rng.standard_normal((n_items, dim)).astype(np.float32)
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    users = Vocabulary(f"u{u}" for u in range(n_users))
    items = Vocabulary(f"i{i}" for i in range(n_items))
    return InteractionData(matrix, users, items, times, embeddings), walks[:, steps]


def first_rank(values: np.ndarray, data: InteractionData, truth: np.ndarray) -> np.ndarray:
    """Rank (0 = first) of each user's true next item among their unseen items."""
    values = np.where(data.matrix.toarray() > 0, -np.inf, values)
    target = values[np.arange(len(truth)), truth]
    return (values > target[:, None]).sum(axis=1)


def test_items_of_one_time_train_as_items_without_times() -> None:
    """Interactions logged at the same time have no order: the model must not learn the
    matrix's (item-index) order from them, so all-tied times train as no times at all."""
    data, _ = cycle_walks(n_users=40, steps=6)
    tied = data.times.copy()
    tied.data[:] = 1.0
    untimed = data.with_matrix(data.matrix)
    same_time = data.with_matrix(data.matrix, tied)
    config = SMALL.model_copy(update={"epochs": 3})
    a, b = (UserEncoder(config).train(d, TrainOptions(seed=3)) for d in (untimed, same_time))
    np.testing.assert_array_equal(a.user_vectors, b.user_vectors)


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_ranks_the_planted_next_item_first(precision: str) -> None:
    data, next_items = cycle_walks()
    config = SMALL.model_copy(update={"epochs": 40, "precision": precision})
    model = UserEncoder(config).train(data, TrainOptions(seed=1))
    ranks = first_rank(model.score(data.users.ids).values, data, next_items)
    # a random ranking puts it first for 1 user in 28 (28 unseen items each)
    assert (ranks == 0).mean() > 0.9


def test_config_refuses_heads_that_do_not_divide_the_width() -> None:
    with pytest.raises(ValueError, match=r"dim \(64\) must be a multiple of heads \(3\)"):
        UserEncoderConfig(dim=64, heads=3)
    assert UserEncoderConfig(dim=64, heads=4).heads == 4


@pytest.mark.parametrize("recency", [0.0, 4.0])
def test_encode_under_bfloat16_autocast_writes_float32_with_even_heads(recency: float) -> None:
    """With an even number of heads, an eval-mode TransformerEncoderLayer takes torch's fused
    path, which returns bfloat16 under CPU autocast (the holdout check's setting)."""
    net = SequenceNet(10, 8, SMALL.model_copy(update={"heads": 2})).eval()
    items = torch.randn(10, SMALL.dim)
    sequences = [np.array([1, 2, 3]), np.array([4]), np.array([], dtype=np.int64)]
    with torch.no_grad():
        exact = encode(net, items, sequences, SMALL.max_len, recency)
        with torch.autocast("cpu", torch.bfloat16):
            mixed = encode(net, items, sequences, SMALL.max_len, recency)
    assert mixed.dtype == torch.float32
    torch.testing.assert_close(mixed, exact, atol=0.1, rtol=0.05)


@pytest.mark.parametrize(("setting", "native", "bfloat16"), [
    ("auto", True, True), ("auto", False, False), ("float32", True, False),
    ("bfloat16", False, True)])
def test_training_multiplies_in_bfloat16_only_where_asked_or_native(
        monkeypatch: pytest.MonkeyPatch, setting: str, native: bool, bfloat16: bool) -> None:
    seen: set[tuple[torch.dtype, bool]] = set()

    def loss(states: torch.Tensor, items: torch.Tensor, targets: torch.Tensor,
             matmul_dtype: torch.dtype) -> torch.Tensor:
        # the softmax's products, and whether the network ran under autocast
        seen.add((matmul_dtype, torch.is_autocast_enabled("cpu")))
        return torch.nn.functional.cross_entropy(states.float() @ items.float().T, targets)

    monkeypatch.setattr(torch_utils, "native_bfloat16", lambda device: native)
    monkeypatch.setattr(user_encoder, "full_softmax_loss", loss)
    data, _ = cycle_walks(n_users=20, steps=4)
    config = SMALL.model_copy(update={"epochs": 1, "precision": setting})
    model = UserEncoder(config).train(data, TrainOptions(seed=0))
    assert seen == ({(torch.bfloat16, True)} if bfloat16 else {(torch.float32, False)})
    assert model.item_vectors.dtype == model.user_vectors.dtype == np.float32


def test_full_and_sampled_softmax_both_learn_the_order() -> None:
    data, next_items = cycle_walks()
    sampled = SMALL.model_copy(update={"epochs": 40, "full_softmax_items": 10,
                                       "negatives": 8})
    model = UserEncoder(sampled).train(data, TrainOptions(seed=1))
    ranks = first_rank(model.score(data.users.ids).values, data, next_items)
    assert (ranks == 0).mean() > 0.8


def _with_cold_twins(n_twins: int = 8) -> tuple[InteractionData, list[int], list[int]]:
    """Checkerboard data plus cold copies (same text embedding) of some warm items."""
    data = checkerboard(noise=0.02).data
    originals = list(range(0, data.n_items, data.n_items // n_twins))[:n_twins]
    ids = [*data.items.ids, *[f"twin-{i}" for i in originals]]
    shape = (data.n_users, len(ids))
    matrix = sp.csr_matrix((data.matrix.data, data.matrix.indices, data.matrix.indptr),
                           shape=shape)
    times = sp.csr_matrix((data.times.data, data.times.indices, data.times.indptr), shape=shape)
    embeddings = np.vstack([data.item_embeddings, data.item_embeddings[originals]])
    twins = list(range(data.n_items, len(ids)))
    return (InteractionData(matrix, data.users, Vocabulary(ids), times, embeddings), originals,
            twins)


def test_id_dropout_places_a_text_only_item_beside_its_warm_twin() -> None:
    """A cold item shares its text with a warm one; trained with ID dropout, the text part
    alone places it: its scores track its twin's and each user's best twin is one of the
    user's own group's half."""
    data, originals, twins = _with_cold_twins()
    config = SMALL.model_copy(update={"epochs": 30, "id_dropout": 0.5})
    values = UserEncoder(config).train(data, TrainOptions(seed=3)).score(data.users.ids).values
    cold = values[:, twins]
    assert np.isfinite(cold).all()
    group = np.arange(data.n_users) >= 20  # users 0-19 like items 0-19, users 20-39 the rest
    twin_group = np.array(originals) >= 20
    assert (twin_group[cold.argmax(axis=1)] == group).all()
    assert np.corrcoef(cold.ravel(), values[:, originals].ravel())[0, 1] > 0.9


def test_cold_items_score_finite_and_cold_users_nan() -> None:
    board = checkerboard(cold=True)
    values = UserEncoder(SMALL).train(board.data).score([board.cold_user, "u0"]).values
    assert np.isnan(values[0]).all()
    assert np.isfinite(values[1]).all()


def test_holdout_early_stopping_keeps_the_best_epoch() -> None:
    """Early stopping reads a holdout carved from the training data and restores the best
    epoch: trained longer with it, the model is not the last epoch's."""
    data, _ = cycle_walks(n_users=60)
    config = SMALL.model_copy(update={"epochs": 40, "patience": 2})
    stopped = UserEncoder(config).train(data, TrainOptions(seed=3))
    every = UserEncoder(config.model_copy(update={"early_stopping": "none"})
                        ).train(data, TrainOptions(seed=3))
    assert not np.array_equal(stopped.score(data.users.ids).values,
                              every.score(data.users.ids).values)


def test_sequences_without_times_use_matrix_order() -> None:
    data, _ = cycle_walks(n_users=30)
    untimed = InteractionData(data.matrix, data.users, data.items, None, data.item_embeddings)
    values = UserEncoder(SMALL).train(untimed).score(["u0"]).values
    assert values.shape == (1, data.n_items) and np.isfinite(values).all()


def test_fold_in_of_a_new_walk_predicts_its_successor() -> None:
    data, next_items = cycle_walks()
    model = UserEncoder(SMALL.model_copy(update={"epochs": 40})).train(data, TrainOptions(seed=1))
    histories = [list(data.items.id(data.sequence(u)[-5:])) for u in range(20)]
    folded = model.fold_in(histories).values
    seen = np.zeros_like(folded, dtype=bool)
    for row, h in enumerate(histories):
        seen[row, data.items.index(h)] = True
    folded = np.where(seen, -np.inf, folded)
    assert (folded.argmax(axis=1) == next_items[:20]).mean() > 0.8


def test_warm_start_continues_from_a_model_trained_on_less() -> None:
    data, next_items = cycle_walks()
    keep = sp.diags((np.arange(data.n_users) < 100).astype(np.float32))
    half = data.with_matrix(sp.csr_matrix(keep @ data.matrix), sp.csr_matrix(keep @ data.times))
    half.matrix.eliminate_zeros()
    half.times.eliminate_zeros()
    first = UserEncoder(SMALL.model_copy(update={"epochs": 40})).train(half, TrainOptions(seed=1))
    one_epoch = SMALL.model_copy(update={"epochs": 1, "early_stopping": "none", "lr": 1e-4})
    cold = UserEncoder(one_epoch).train(data, TrainOptions(seed=2))
    warm = UserEncoder(one_epoch)
    assert warm.warm_start(first)
    warm.train(data, TrainOptions(seed=2))
    hits = {name: (first_rank(model.score(data.users.ids).values, data, next_items) == 0).mean()
            for name, model in (("cold", cold), ("warm", warm))}
    assert hits["warm"] > 0.9 > hits["cold"] + 0.3
    assert warm._start is None  # the starting weights are not kept in the trained model


@pytest.mark.parametrize("recency", [0.0, 16.0, math.inf])
def test_encoding_in_batches_equals_encoding_each_user_alone(recency: float) -> None:
    # batches are regrouped by length: every vector must still reach its own user
    config = UserEncoderConfig(dim=16, text_hidden=16, max_len=20, dropout=0.0)
    torch.manual_seed(0)
    net = SequenceNet(100, 8, config).eval()
    rng = np.random.default_rng(0)
    sequences = [rng.integers(0, 100, rng.integers(0, 60)) for _ in range(120)]
    items = torch.randn(100, 16)
    with torch.no_grad():
        together = encode(net, items, sequences, 20, recency, batch=37)
        alone = torch.cat([encode(net, items, [s], 20, recency) for s in sequences])
    assert torch.allclose(together, alone, atol=1e-5)
    assert not together[[len(s) == 0 for s in sequences]].any()


def test_read_rereads_users_and_fold_in_with_a_half_life() -> None:
    data, _ = cycle_walks(n_users=30, steps=8)
    model = UserEncoder(SMALL.model_copy(update={"epochs": 2})).train(data, TrainOptions(seed=1))
    assert model.readouts()[0] == 0.0 and math.inf not in model.readouts()  # user_history's
    read = model.read(16.0)
    sequences = [data.sequence(u) for u in range(data.n_users)]
    with torch.no_grad():
        expected = encode(model.net, torch.from_numpy(model.item_vectors), sequences,
                          SMALL.max_len, 16.0).numpy()
        latest = encode(model.net, torch.from_numpy(model.item_vectors), sequences,
                        SMALL.max_len).numpy()
    np.testing.assert_allclose(read.user_vectors, expected, atol=1e-5)
    np.testing.assert_allclose(model.user_vectors, latest, atol=1e-5)  # the original kept
    assert not np.allclose(read.user_vectors, model.user_vectors, atol=1e-3)
    # fold-in of the users' own histories reads them the same way
    folded = read.fold_in([list(data.items.id(s)) for s in sequences[:5]]).values
    np.testing.assert_allclose(folded, read.score(data.users.ids[:5]).values, atol=1e-4)
    with pytest.raises(ValueError, match="no readout"):
        model.read(math.inf)
