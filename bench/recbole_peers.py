"""RecBole peers for bench/quality.py: SASRec (CE loss) and LightGCN, as recsys_core scorers.

RecBole (PyPI ``recbole`` 1.2.1, the ``bench`` extra) is trained through its own pipeline:
the run's interactions are written as atomic files into a temporary folder, one per part
(RecBole's ``benchmark_filename``, which also turns off its filtering), RecBole's ``Config``,
dataset, dataloaders and ``Trainer`` train the model with its default hyperparameters
(``recbole/properties/overall.yaml`` and ``model/<Model>.yaml``: Adam, lr 0.001, batch 2048,
64-dim embeddings, 2 layers; SASRec 2 heads, dropout 0.5, at most 50 items per sequence,
full-softmax cross-entropy, no sampled negatives; LightGCN BPR with one uniform negative,
reg 1e-5) and early-stops on the validation part with RecBole's own rule (MRR@10 over full
ranking, checked every epoch, patience ``stopping_step`` = 10 epochs). The only change to the
defaults is the epoch cap (``epochs``, RecBole's default 300; see ``RecBoleConfig``), unless
bench/quality.py is given ``--sasrec-overrides`` / ``--lightgcn-overrides`` (its header
prints them); the best epoch's checkpoint is loaded back.

A peer built with ``validation=valid`` trains on ``data`` minus the validation pairs
(the run's ``fit`` part when ``data`` is ``train``) with the validation pairs as RecBole's
valid set; test data never reaches RecBole. The scores come from the trained model over
``data``, the part whose items the evaluator excludes:

- ``RecBoleSASRec``: each user's whole ``data`` sequence (time order, its last 50 items) is
  the input; score = the last position's output . every item embedding (``full_sort_predict``).
- ``RecBoleLightGCN``: its final user and item embeddings (the layer mean over the graph it
  trained on, ``full_sort_predict``'s); score = user . item. (Propagating the trained layer-0
  embeddings over the whole ``data`` graph instead, validation edges included, scored the
  same: ml-latest-small stratified, 60 epochs, NDCG@10 0.2756 vs 0.2780.)

Items RecBole never saw (no interaction in ``data``: cold items) and users without history
score NaN: both models are ID-only, which is why bench/quality.py runs them under
``stratified`` and ``leave_last`` and not under ``cold_items``.

RecBole 1.2 predates NumPy 2, SciPy 1.15, pandas 3 and torch's ``weights_only=True``
default: ``_aliases`` restores the NumPy aliases and the SciPy method it uses before it is
imported, ``_compat`` gives it pandas 2's ``Series.agg(len)`` while it reads the files, and
its checkpoint (which pickles its ``Config``) is read back with ``weights_only=False``.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar
from unittest import mock

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from pydantic import Field

from recsys_core.data.interactions import InteractionData
from recsys_core.scoring import Scorer, ScorerConfig, TrainOptions

log = logging.getLogger("bench.recbole")

DATASET = "peer"
MAX_ITEMS = 50
"""RecBole's ``MAX_ITEM_LIST_LENGTH`` default: the longest SASRec input sequence."""
_PAD = "[PAD]"


class RecBoleConfig(ScorerConfig):
    """What differs from RecBole's defaults: the epoch cap (and, for small tests, more).

    Args:
        epochs: most training epochs (RecBole's default is 300; early stopping on validation
            usually ends training before the cap).
        overrides: other RecBole settings to change (e.g. ``train_batch_size`` for a tiny
            dataset; a smaller ``train_batch_size`` where an epoch cap would stop
            RecBole's 2,048 long before it converges on a CPU); the bench passes none
            unless told to.
    """

    epochs: int = Field(300, gt=0)
    overrides: dict[str, float | int | str] = {}


def _aliases() -> None:
    """Restore what RecBole 1.2 reads and NumPy 2 / SciPy 1.15 removed (idempotent).

    NumPy's ``np.float``, ``np.float_``, ... aliases; ``dok_matrix._update``, with which its
    graph models (LightGCN) build the adjacency matrix.
    """
    aliases = {"float": np.float64, "int": np.int64, "bool": np.bool_, "long": np.int64,
               "object": np.object_, "str": np.str_, "complex": np.complex128,
               "unicode": np.str_, "float_": np.float64, "complex_": np.complex128,
               "unicode_": np.str_}
    for name, value in aliases.items():
        if name not in np.__dict__:
            setattr(np, name, value)
    if not hasattr(sp.dok_matrix, "_update"):
        sp.dok_matrix._update = lambda self, entries: self._dict.update(entries)


@contextlib.contextmanager
def _compat() -> Iterator[None]:
    """While RecBole builds its config and data: pandas 2's ``Series.agg(len)``, no argv.

    RecBole takes each sequence's length with ``Series.agg(len)``, elementwise under pandas 2;
    pandas 3 returns the length of the whole column instead (silently, for SASRec's item
    lengths). Its missing-value filling (``fillna(inplace=True)`` on a column) does nothing
    under pandas 3's copy-on-write and warns; the files written here have no missing value,
    so the warning is silenced. Its ``Config`` also reads ``--key=value`` arguments from
    ``sys.argv``, which are the benchmark's own.
    """
    agg = pd.Series.agg

    def elementwise_len(series, func=None, *args, **kwargs):
        return series.map(len) if func is len else agg(series, func, *args, **kwargs)

    with mock.patch.object(pd.Series, "agg", elementwise_len), \
            mock.patch.object(sys, "argv", sys.argv[:1]), warnings.catch_warnings():
        warnings.simplefilter("ignore", pd.errors.ChainedAssignmentError)
        yield


def _pairs(matrix: sp.csr_matrix, times: sp.csr_matrix | None
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(users, items, timestamps) of a matrix's stored pairs; timestamps 0 without order."""
    coo = sp.coo_matrix(matrix)
    stamps = np.zeros(coo.nnz)
    if times is not None:
        stamps = np.asarray(times[coo.row, coo.col]).ravel()
    return coo.row, coo.col, stamps


def _without(data: InteractionData, other: InteractionData | None) -> InteractionData:
    """``data`` minus the pairs of ``other`` (their training part)."""
    if other is None:
        return data
    keep = sp.csr_matrix((data.matrix != 0) > (other.matrix != 0))
    matrix = data.matrix.multiply(keep).tocsr()
    matrix.eliminate_zeros()
    times = None if data.times is None else data.times.multiply(keep).tocsr()
    return data.with_matrix(matrix, times)


class _RecBolePeer(Scorer[RecBoleConfig]):
    """One RecBole model trained by RecBole's trainer; subclasses write its atomic files."""

    model: ClassVar[str]
    extra: ClassVar[dict] = {}

    def __init__(self, config: RecBoleConfig | None = None,
                 validation: InteractionData | None = None) -> None:
        super().__init__(config or RecBoleConfig())
        self.validation = validation
        self.user_factors: np.ndarray | None = None
        self.item_factors: np.ndarray | None = None
        self.epochs_run = 0
        self.best_epoch = -1

    def _fit(self, data: InteractionData, options: TrainOptions) -> None:
        if self.validation is None:
            raise ValueError(f"{type(self).__name__} early-stops on its validation part")
        _aliases()
        from recbole.config import Config
        from recbole.data import create_dataset, data_preparation
        from recbole.utils import get_model, get_trainer, init_seed

        fit = _without(data, self.validation)
        with tempfile.TemporaryDirectory(prefix="recbole-") as tmp:
            folder = Path(tmp) / DATASET
            folder.mkdir()
            columns = self._write(folder, fit, self.validation)
            with _compat():
                config = Config(model=self.model, dataset=DATASET, config_dict={
                    "data_path": tmp, "checkpoint_dir": str(Path(tmp) / "saved"),
                    # RecBole needs three files; the third (its test set) is never evaluated
                    "benchmark_filename": ["fit", "valid", "valid"],
                    "load_col": {"inter": columns}, "epochs": self.config.epochs,
                    "seed": options.seed, "reproducibility": True, "show_progress": False,
                    "use_gpu": options.device == "cuda", **self.extra,
                    **self.config.overrides})
                init_seed(config["seed"], config["reproducibility"])
                dataset = create_dataset(config)
                train_data, valid_data, _ = data_preparation(config, dataset)
            anomaly = torch.is_anomaly_enabled()
            model_class = get_model(config["model"])
            # importing RecBole's sequential models runs its SINE module's
            # torch.autograd.set_detect_anomaly(True), process-wide: ~10x slower autograd for
            # every torch model after it (the product's too), so the setting is put back
            torch.autograd.set_detect_anomaly(anomaly)
            model = model_class(config, train_data._dataset).to(config["device"])
            with contextlib.chdir(tmp):  # its TensorBoard writer logs into the working dir
                trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
                scores: list[float] = []
                started = time.perf_counter()

                def epoch_done(epoch: int, score: float) -> None:
                    scores.append(score)
                    log.info("%s epoch %d: valid MRR@10 %.4f (%.0fs)", self.name, epoch, score,
                             time.perf_counter() - started)

                trainer.fit(train_data, valid_data, verbose=False, saved=True,
                            callback_fn=epoch_done)
            self.epochs_run, self.best_epoch = len(scores), int(np.argmax(scores))
            log.info("%s: %d epochs in %.0fs (cap %d), best epoch %d (valid MRR@10 %.4f)",
                     self.name, self.epochs_run, time.perf_counter() - started,
                     self.config.epochs, self.best_epoch, scores[self.best_epoch])
            state = torch.load(trainer.saved_model_file, map_location="cpu",
                               weights_only=False)  # its own checkpoint: it pickles Config
            model = model.cpu()
            model.load_state_dict(state["state_dict"])
            model.eval()
            users = self._ids(dataset, dataset.uid_field, data.n_users)
            items = self._ids(dataset, dataset.iid_field, data.n_items)
            with torch.no_grad():
                self._represent(model, data, users, items)

    @staticmethod
    def _ids(dataset, field: str, n: int) -> np.ndarray:
        """Our index -> RecBole's internal id (``-1`` where RecBole never saw it; 0 is padding).

        Tokens are our vocabulary indices as strings, so ``int(token)`` is our index.
        """
        out = np.full(n, -1, dtype=np.int64)
        for token, internal in dataset.field2token_id[field].items():
            if token != _PAD:
                out[int(token)] = internal
        return out

    def _write(self, folder: Path, fit: InteractionData, valid: InteractionData) -> list[str]:
        """Write ``peer.fit.inter`` and ``peer.valid.inter``; returns the loaded columns."""
        raise NotImplementedError

    def _represent(self, model, data: InteractionData, users: np.ndarray, items: np.ndarray
                   ) -> None:
        """Fill ``user_factors`` / ``item_factors`` (our order, NaN where unknown)."""
        raise NotImplementedError

    def _aligned(self, vectors: torch.Tensor, internal: np.ndarray) -> np.ndarray:
        """Rows of ``vectors`` at RecBole ids ``internal``, NaN rows where ``internal < 0``."""
        out = np.full((len(internal), vectors.shape[1]), np.nan, dtype=np.float32)
        known = internal >= 0
        out[known] = vectors[torch.from_numpy(internal[known])].numpy()
        return out

    def _score(self, user_index: np.ndarray) -> np.ndarray:
        return self.user_factors[user_index] @ self.item_factors.T


def _write_inter(path: Path, header: list[str], rows: list[str]) -> None:
    path.write_text("\t".join(header) + "\n" + "".join(f"{row}\n" for row in rows))


class RecBoleLightGCN(_RecBolePeer):
    """RecBole's LightGCN with its defaults, early-stopped on validation."""

    name = "recbole_lightgcn"
    model = "LightGCN"

    def _write(self, folder: Path, fit: InteractionData, valid: InteractionData) -> list[str]:
        header = ["user_id:token", "item_id:token", "timestamp:float"]
        for part, data in (("fit", fit), ("valid", valid)):
            users, items, stamps = _pairs(data.matrix, data.times)
            _write_inter(folder / f"{DATASET}.{part}.inter", header,
                         [f"{u}\t{i}\t{t:.0f}" for u, i, t in zip(users, items, stamps,
                                                                   strict=True)])
        return ["user_id", "item_id", "timestamp"]

    def _represent(self, model, data: InteractionData, users: np.ndarray, items: np.ndarray
                   ) -> None:
        user_e, item_e = model.forward()  # propagated over the graph it trained on
        self.user_factors = self._aligned(user_e, users)
        self.item_factors = self._aligned(item_e, items)


class RecBoleSASRec(_RecBolePeer):
    """RecBole's SASRec with full-softmax cross-entropy (``loss_type='CE'``), its defaults."""

    name = "recbole_sasrec"
    model = "SASRec"
    extra: ClassVar[dict] = {"loss_type": "CE", "train_neg_sample_args": None,
                             "alias_of_item_id": ["item_id_list"]}

    def _write(self, folder: Path, fit: InteractionData, valid: InteractionData) -> list[str]:
        """One row per prediction, as RecBole's own augmentation makes them.

        ``fit``: every position of each user's time-ordered sequence after the first, with
        the (at most 50) items before it as input. ``valid``: each validation item with the
        user's last 50 fit items as input (users without fit items have no input: left out).
        """
        header = ["user_id:token", "item_id_list:token_seq", "item_id:token"]
        fit_rows, valid_rows = [], []
        for u in range(fit.n_users):
            seq = fit.sequence(u)
            fit_rows += [f"{u}\t{' '.join(map(str, seq[max(0, t - MAX_ITEMS):t]))}\t{seq[t]}"
                         for t in range(1, len(seq))]
            targets = valid.matrix.indices[valid.matrix.indptr[u]:valid.matrix.indptr[u + 1]]
            if len(seq) and len(targets):
                context = " ".join(map(str, seq[-MAX_ITEMS:]))
                valid_rows += [f"{u}\t{context}\t{i}" for i in targets]
        _write_inter(folder / f"{DATASET}.fit.inter", header, fit_rows)
        _write_inter(folder / f"{DATASET}.valid.inter", header, valid_rows)
        return ["user_id", "item_id_list", "item_id"]

    def _represent(self, model, data: InteractionData, users: np.ndarray, items: np.ndarray
                   ) -> None:
        self.item_factors = self._aligned(model.item_embedding.weight, items)
        self.user_factors = np.full((data.n_users, self.item_factors.shape[1]), np.nan,
                                    dtype=np.float32)
        history = [items[data.sequence(u)] for u in range(data.n_users)]
        history = [seq[seq >= 0][-MAX_ITEMS:] for seq in history]  # only items RecBole knows
        who = np.array([u for u, seq in enumerate(history) if len(seq)], dtype=np.int64)
        for start in range(0, len(who), 1024):
            batch = who[start:start + 1024]
            lengths = np.array([len(history[u]) for u in batch])
            seqs = np.zeros((len(batch), MAX_ITEMS), dtype=np.int64)  # left-aligned, 0 = pad
            for row, u in enumerate(batch):
                seqs[row, :lengths[row]] = history[u]
            output = model.forward(torch.from_numpy(seqs), torch.from_numpy(lengths))
            self.user_factors[batch] = output.numpy()
