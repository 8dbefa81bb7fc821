from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from recsys_core import pipeline
from recsys_core.data import schema as S
from recsys_core.runstore import RunStore, run_key
from recsys_core.scoring import TrainOptions


def _pairs(frame: pl.DataFrame) -> set[tuple[str, str]]:
    return set(frame.select(S.USER_ID, S.ITEM_ID).iter_rows())


@pytest.mark.parametrize("protocol", ["stratified", "temporal", "leave_last", "cold_items"])
def test_parts_never_leak_into_each_other(features, tmp_path, protocol: str) -> None:
    store = RunStore.prepare(features, protocol, 42, tmp_path)
    train, test = _pairs(store.frame("train")), _pairs(store.frame("test"))
    fit, valid = _pairs(store.frame("fit")), _pairs(store.frame("valid"))
    assert test and valid
    assert not train & test and not fit & valid
    assert fit | valid == train  # validation is carved from train only
    assert not (fit | valid) & test
    if protocol == "cold_items":
        test_items = {i for _, i in test}
        assert not test_items & {i for _, i in train}


def test_run_folder_is_stable_and_data_uses_the_run_vocabularies(features, tmp_path) -> None:
    a = RunStore.prepare(features, "stratified", 42, tmp_path)
    assert a.folder.name == run_key(features.snapshot_id, "stratified", 42)
    assert a.folder != RunStore.prepare(features, "stratified", 43, tmp_path).folder
    data = a.data("fit")
    assert data.users == features.user_vocab and data.items == features.item_vocab
    assert data.matrix.nnz == a.frame("fit").select(S.USER_ID, S.ITEM_ID).unique().height
    assert data.item_embeddings is None


def test_embeddings_are_stored_per_encoder_without_leftovers(features, tmp_path) -> None:
    store = RunStore.prepare(features, "stratified", 42, tmp_path)
    vectors = np.random.default_rng(0).random((len(features.item_vocab), 4), dtype=np.float32)
    path_a = store.save_embeddings(vectors, "encoder-a")
    path_b = store.save_embeddings(vectors * 2, "encoder-b")
    assert path_a != path_b
    np.testing.assert_array_equal(store.data("train", path_a).item_embeddings, vectors)
    assert not list(store.folder.rglob(".*.tmp"))


@pytest.mark.parametrize(("als_params", "reused"), [({"factors": 8}, True),
                                                   ({"factors": 16}, False)])
def test_projector_reuses_the_run_s_als_only_when_configs_match(
        features, tmp_path, als_params: dict, reused: bool) -> None:
    store = RunStore.prepare(features, "stratified", 42, tmp_path)
    vectors = np.random.default_rng(0).random((len(features.item_vocab), 4), dtype=np.float32)
    embeddings = store.save_embeddings(vectors, "encoder")
    options = TrainOptions(seed=5)
    als = RunStore.load_scorer(pipeline.train_source(store, "als", als_params, "train", options))
    als.user_factors[:] = 0.0  # a marker no fresh fit would produce
    store.save_scorer(als, "train")
    projector = RunStore.load_scorer(pipeline.train_source(
        store, "projector", {"als": {"factors": 8}, "max_epochs": 2}, "train", options,
        embeddings))
    assert (not projector.als.user_factors.any()) is reused


def test_the_store_names_every_path_it_writes(features, tmp_path) -> None:
    store = RunStore.prepare(features, "stratified", 42, tmp_path)
    assert all(store.has_part(part) for part in ("train", "test", "fit", "valid"))
    next(store.folder.glob("test.*")).unlink()
    assert not store.has_part("test") and store.has_part("train")
    assert store.model_dir.parent == store.folder
    options = TrainOptions(seed=5)
    path = pipeline.train_source(store, "mostpop", {}, "fit", options)
    assert path == store.scorer_path("fit", "mostpop") and path.is_file()
    assert not store.scorer_path("train", "mostpop").exists()


def test_ranked_shards_round_trip_per_ranking(features, tmp_path) -> None:
    store = RunStore.prepare(features, "stratified", 42, tmp_path)
    lists = {"all": {"fused": np.arange(6).reshape(2, 3),
                     "als": np.zeros((2, 3), dtype=np.int64)},
             "cold_candidates": {"fused": np.ones((2, 3), dtype=np.int64)}}
    first = store.save_ranked("ranking-a", 0, 2, lists)
    assert first.name == "users-000000000-000000002.npz"
    assert store.save_ranked("ranking-a", 2, 4, lists).parent == first.parent
    assert store.save_ranked("ranking-b", 0, 2, lists).parent != first.parent
    loaded = np.load(first)
    np.testing.assert_array_equal(loaded["all/fused"], lists["all"]["fused"])
    np.testing.assert_array_equal(loaded["cold_candidates/fused"],
                                  lists["cold_candidates"]["fused"])
    assert set(loaded.files) == {"all/fused", "all/als", "cold_candidates/fused"}
    assert not list(store.folder.rglob(".*.tmp"))


def test_disk_full_while_writing_run_files_leaves_no_half_file_and_a_rerun_completes(
        features, tmp_path, monkeypatch) -> None:
    import errno

    from tasks.common import retry_on_io

    real = pl.DataFrame.write_parquet
    calls: list[str] = []

    def fills_the_disk(frame: pl.DataFrame, path, *args, **kwargs) -> None:
        calls.append(str(path))
        if len(calls) == 3:  # the third part: some bytes land, then the disk is full
            with open(path, "wb") as handle:
                handle.write(b"PAR1 partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        real(frame, path, *args, **kwargs)

    monkeypatch.setattr(pl.DataFrame, "write_parquet", fills_the_disk)
    with pytest.raises(OSError) as failed:
        RunStore.prepare(features, "stratified", 42, tmp_path)
    message = str(failed.value)
    assert failed.value.errno == errno.ENOSPC and "\n" not in message
    assert "cannot write run file" in message and "fit.parquet" in message
    assert "No space left on device" in message
    folder = tmp_path / run_key(features.snapshot_id, "stratified", 42)
    assert not list(folder.rglob(".*.tmp"))  # no half-written file left
    assert sorted(p.name for p in folder.iterdir()) == ["test.parquet", "train.parquet"]
    for part in folder.iterdir():
        pl.read_parquet(part)  # what is there is whole

    class Failed:
        def result(self):
            raise failed.value

    assert retry_on_io(None, None, Failed()) is False  # a full disk is not retried
    monkeypatch.undo()
    store = RunStore.prepare(features, "stratified", 42, tmp_path)  # space again: completes
    reference = RunStore.prepare(features, "stratified", 42, tmp_path / "fresh")
    for part in ("train", "test", "fit", "valid"):
        assert store.frame(part).equals(reference.frame(part))
    assert store.meta == reference.meta


def test_a_run_holds_users_by_its_list_or_its_rows(features, tmp_path) -> None:
    store = RunStore.prepare(features, "stratified", 42, tmp_path)
    user = str(features.user_vocab.ids[5])
    assert store.holds_users([user, "nobody"]) and not store.holds_users(["nobody"])
    assert [s.folder for s in RunStore.under(tmp_path)] == [store.folder]
    (store.folder / "users.json").unlink()  # a run stopped before its user list
    assert store.holds_users([user]) and not store.holds_users(["nobody"])
    (store.folder / ".items.parquet.tmp").write_bytes(b"half")  # killed mid-write
    assert store.holds_users(["nobody"])
    store.delete()
    assert RunStore.under(tmp_path) == []
