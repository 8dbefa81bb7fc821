from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recsys_core.data.interactions import InteractionData
from recsys_core.data.vocab import Vocabulary
from recsys_core.deep.sequences import interaction_ages, pad, windows
from tests.scorer_contract import checkerboard


def test_ages_follow_the_sequence_order() -> None:
    data = checkerboard().data
    ages = interaction_ages(data)
    for user in (0, 7, 33):
        start, end = data.matrix.indptr[user], data.matrix.indptr[user + 1]
        by_age = data.matrix.indices[start:end][np.argsort(-ages[start:end])]
        np.testing.assert_array_equal(by_age, data.sequence(user))


def test_ages_without_times_follow_matrix_order() -> None:
    matrix = sp.csr_matrix(np.array([[1, 0, 1, 1], [0, 1, 0, 0]], dtype=np.float32))
    data = InteractionData(matrix, Vocabulary("ab"), Vocabulary("wxyz"))
    np.testing.assert_array_equal(interaction_ages(data), [2, 1, 0, 0])


def test_windows_cover_every_transition_once() -> None:
    sequence = np.arange(12)
    cut = windows(sequence, 5)
    assert [w.tolist() for w in cut] == [[0, 1, 2, 3, 4, 5], [5, 6, 7, 8, 9, 10], [10, 11]]
    assert windows(np.array([3]), 5) == []


def test_pad_keeps_the_latest_items() -> None:
    index, lengths = pad([np.array([1, 2, 3, 4]), np.array([7])], 3, 99)
    np.testing.assert_array_equal(index, [[2, 3, 4], [7, 99, 99]])
    np.testing.assert_array_equal(lengths, [3, 1])
