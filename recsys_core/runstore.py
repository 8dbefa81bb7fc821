"""RunStore: one training run's files, so pipeline stages pass references, not matrices.

A run folder holds the vocabularies and items (with documents), the four interaction
parts (``train``/``test`` from the protocol, ``fit``/``valid`` carved from ``train``), the
rows the protocol placed in no part with their reason (``given``'s rejected rows), item
embeddings, pickled trained sources, ranked test-user shards and the saved model.
Every write goes to a temporary file first and is renamed into place, so a killed stage
never leaves a half-written file behind. This module is the only code that knows the
folder's layout (``tests/test_layering.py`` checks): everything else asks a
``RunStore`` for a path.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

from recsys_core.data import schema as S
from recsys_core.data.interactions import InteractionData
from recsys_core.data.vocab import Vocabulary
from recsys_core.evaluation.splits import split, validation_carves
from recsys_core.scoring import Scorer
from recsys_core.warehouse.features import DOCUMENT, Features

Part = Literal["train", "test", "fit", "valid", "fit2", "valid2", "fit3", "valid3"]
PARTS: tuple[Part, ...] = ("train", "test", "fit", "valid", "fit2", "valid2", "fit3", "valid3")
CARVES: tuple[tuple[Part, Part], ...] = (("fit", "valid"), ("fit2", "valid2"), ("fit3", "valid3"))
"""(fit, valid) parts of each validation carve of ``train``, first carve first."""
MAX_CARVES = len(CARVES)
_REJECTED = "rejected.parquet"


def run_key(snapshot_id: str, protocol: str, seed: int, carves: int = 1) -> str:
    """A stable folder name for the run over one snapshot, protocol, seed and carves."""
    raw = f"{snapshot_id}|{protocol}|{seed}" + (f"|{carves}" if carves != 1 else "")
    return f"{protocol}-{hashlib.sha256(raw.encode()).hexdigest()[:16]}"


class RunStore:
    """The files of one run.

    Args:
        folder: the run folder (created on first write).
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder).resolve()

    def __repr__(self) -> str:
        return f"RunStore({self.folder})"

    @classmethod
    def prepare(cls, features: Features, protocol: str, seed: int, root: str | Path,
                carves: int = 1) -> RunStore:
        """Split a snapshot's features by ``protocol`` and write the run's inputs.

        Args:
            features: built from a warehouse snapshot.
            protocol: evaluation protocol name.
            seed: split seed.
            root: folder under which the run folder is created.
            carves: validation carves of ``train`` (``evaluation.splits.validation_carves``),
                at most ``MAX_CARVES``.
        """
        if not 1 <= carves <= MAX_CARVES:
            raise ValueError(f"carves must be in 1..{MAX_CARVES}, got {carves}")
        store = cls(Path(root) / run_key(features.snapshot_id, protocol, seed, carves))
        test_split = split(features.interactions, protocol, seed)
        parts: dict[Part, pl.DataFrame] = {"train": test_split.train, "test": test_split.test}
        for (fit, valid), carve in zip(CARVES, validation_carves(test_split.train, protocol,
                                                                 seed, carves), strict=False):
            parts[fit], parts[valid] = carve.train, carve.test
        for part, frame in parts.items():
            store._write(store._part_name(part), frame.write_parquet)
        rows: dict[str, int] = {part: frame.height for part, frame in parts.items()}
        if test_split.rejected is not None:
            store._write(_REJECTED, test_split.rejected.write_parquet)
            rows["rejected"] = test_split.rejected.height
        store._write("items.parquet", features.items.write_parquet)
        store._write("users.json", lambda p: Path(p).write_text(
            json.dumps(features.user_vocab.ids.tolist())))
        store._write("meta.json", lambda p: Path(p).write_text(json.dumps({
            "snapshot_id": features.snapshot_id, "protocol": protocol, "seed": seed,
            "rows": rows, "carves": carves})))
        return store

    def carves(self) -> list[tuple[Part, Part]]:
        """The (fit, valid) parts of every validation carve this run holds."""
        return list(CARVES[:self.meta.get("carves", 1)])

    @classmethod
    def under(cls, root: str | Path) -> list[RunStore]:
        """Every run folder under ``root`` (``Settings.runs_dir``), finished or not.

        Args:
            root: the folder runs are prepared in.
        """
        base = Path(root)
        return [cls(p) for p in sorted(base.iterdir()) if p.is_dir()] if base.is_dir() else []

    def holds_users(self, user_ids: Collection[str]) -> bool:
        """Whether any of ``user_ids`` is in the run: its user list, or any part's rows.

        A run stopped before it wrote its user list is read part by part; one that holds a
        half-written file (killed while writing) counts as holding them.

        Args:
            user_ids: the users.
        """
        wanted = {str(u) for u in user_ids}
        listed = self.folder / "users.json"
        if listed.is_file():
            return not wanted.isdisjoint(json.loads(listed.read_text()))
        if any(self.folder.rglob(".*.tmp")):
            return True
        parts = [self.folder / self._part_name(part) for part in PARTS]
        return any(pl.scan_parquet(path).filter(pl.col(S.USER_ID).is_in(list(wanted)))
                   .select(pl.len()).collect().item() > 0
                   for path in parts if path.is_file())

    def delete(self) -> None:
        """Remove the run folder and everything in it."""
        shutil.rmtree(self.folder, ignore_errors=False)

    @property
    def meta(self) -> dict:
        """Snapshot id, protocol, seed and row counts (per part, and ``rejected`` if any)."""
        return json.loads((self.folder / "meta.json").read_text())

    def frame(self, part: Part) -> pl.DataFrame:
        """The interactions of one part."""
        return pl.read_parquet(self.folder / self._part_name(part))

    def rejected(self) -> pl.DataFrame | None:
        """Rows the protocol placed in no part, with a ``reason``; None when it places all."""
        path = self.folder / _REJECTED
        return pl.read_parquet(path) if path.is_file() else None

    def has_part(self, part: Part) -> bool:
        """Whether the folder (still) holds the interactions of ``part``.

        Args:
            part: which interactions.
        """
        return (self.folder / self._part_name(part)).is_file()

    @property
    def model_dir(self) -> Path:
        """Where the run's evaluated model is saved (``HybridRecommender.save``)."""
        return self.folder / "model"

    def items(self) -> pl.DataFrame:
        """Items in vocabulary order, with their ``document``."""
        return pl.read_parquet(self.folder / "items.parquet")

    def documents(self) -> list[str]:
        """Item documents in vocabulary order."""
        return self.items()[DOCUMENT].fill_null("").to_list()

    def vocabularies(self) -> tuple[Vocabulary, Vocabulary]:
        """(users, items)."""
        users = json.loads((self.folder / "users.json").read_text())
        return Vocabulary(users), Vocabulary(self.items()[S.ITEM_ID].to_list())

    def save_embeddings(self, vectors: np.ndarray, encoder_id: str) -> Path:
        """Store item embeddings (aligned with the item vocabulary) of one encoder."""
        def write(path: str) -> None:
            with open(path, "wb") as fh:  # a file object: np.save would append ".npy"
                np.save(fh, vectors.astype(np.float32))

        digest = hashlib.sha256(encoder_id.encode()).hexdigest()[:16]
        return self._write(f"embeddings/{digest}.npy", write)

    def data(self, part: Part, embeddings: str | Path | None = None) -> InteractionData:
        """One part as ``InteractionData`` over the run's vocabularies, with content.

        Args:
            part: which interactions.
            embeddings: a path from ``save_embeddings``; None leaves the data without them.
        """
        return self.frame_data(self.frame(part), embeddings)

    def frame_data(self, frame: pl.DataFrame, embeddings: str | Path | None = None
                   ) -> InteractionData:
        """Interactions of this run (a part, or a subset of one) as ``InteractionData``.

        Args:
            frame: interactions over the run's users and items.
            embeddings: a path from ``save_embeddings``; None leaves the data without them.
        """
        users, items = self.vocabularies()
        titles = self.items()[S.TITLE].fill_null("").to_numpy()
        vectors = None if embeddings is None else np.load(embeddings)
        return InteractionData.from_frame(frame, users, items, vectors, titles)

    def scorer_path(self, part: Part, name: str) -> Path:
        """Where the source ``name`` trained on ``part`` is (or would be) pickled.

        Args:
            part: the interactions it was trained on.
            name: the source name.
        """
        return self.folder / self._scorer_name(part, name)

    def save_scorer(self, scorer: Scorer, part: Part) -> Path:
        """Pickle a source trained on ``part``; returns its path."""
        return self._write(self._scorer_name(part, scorer.name),
                           lambda p: Path(p).write_bytes(pickle.dumps(scorer)))

    @staticmethod
    def load_scorer(path: str | Path) -> Scorer:
        """Read a pickled source."""
        scorer = pickle.loads(Path(path).read_bytes())
        if not isinstance(scorer, Scorer):
            raise TypeError(f"{path} does not hold a scorer")
        return scorer

    def save_ranked(self, key: str, start: int, stop: int,
                    lists: Mapping[str, Mapping[str, np.ndarray]]) -> Path:
        """Store the top-k lists of test users ``start`` to ``stop`` (arrays ``RANKING/MODEL``).

        Args:
            key: what the lists were ranked with (models, fusion, k): shards of one ranking
                share a folder, another ranking gets its own.
            start: first test user.
            stop: one past the last test user.
            lists: ranking (``all``, ``cold_candidates``) -> model name -> (users, k) item
                indices, as ``evaluator.rank_users`` returns them.
        """
        # np.savez's stub types ** like allow_pickle
        arrays: dict[str, Any] = {f"{ranking}/{name}": top for ranking, by_model in lists.items()
                                  for name, top in by_model.items()}

        def write(path: str) -> None:
            with open(path, "wb") as fh:  # a file object: np.savez would append ".npz"
                np.savez(fh, **arrays)

        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        return self._write(f"ranked/{digest}/users-{start:09d}-{stop:09d}.npz", write)

    @staticmethod
    def _part_name(part: Part) -> str:
        return f"{part}.parquet"

    @staticmethod
    def _scorer_name(part: Part, name: str) -> str:
        return f"sources/{part}-{name}.pkl"

    def _write(self, name: str, writer: Callable[[str], object]) -> Path:
        """Write ``name`` through a temporary file; a failed write leaves neither file.

        Raises:
            OSError: the write failed (e.g. the disk is full); one line naming the file, with
                the cause's ``errno``.
        """
        target = self.folder / name
        tmp = target.with_name(f".{target.name}.tmp")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            writer(str(tmp))
            os.replace(tmp, target)
        except OSError as error:
            tmp.unlink(missing_ok=True)
            raise OSError(error.errno, f"cannot write run file {target}: "
                          f"{error.strerror or error}") from error
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return target
