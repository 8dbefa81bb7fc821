"""A corrupted MovieLens ratings file: every valid row reaches the clean table, every other row
is in quarantine with its reason, and nothing else happens to any row.

The corruption: null users, unknown movies, ratings out of range, unparsable timestamps, bad
copies of good rows (same key, rating out of range; before and after the good row), exact
duplicates of good rows and re-ratings (same key, another valid rating, after the original).
Each injected row's fate is known from how it was built, so the expected clean table and the
expected reason of every quarantined source row are written down before the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from data_checks import validate_dataset
from recsys_core.data import schema as S
from recsys_core.data.loaders import load_dataset
from recsys_core.warehouse import Warehouse

COLUMNS = ("userId", "movieId", "rating", "timestamp")
NULL_USER = "expect_column_values_to_not_be_null(user_id)"
UNKNOWN_ITEM = "expect_column_values_to_be_in_set(item_id)"
OUT_OF_RANGE = "expect_column_values_to_be_between(rating)"
BAD_TS = ("expect_column_values_to_not_be_null(ts); expect_column_values_to_be_null"
          "(_parse_error): ts: cannot parse 'yesterday' as timestamp")


@dataclass(frozen=True)
class Corruption:
    """How many rows of each kind to inject."""

    null_users: int = 20
    unknown_items: int = 20
    out_of_range: int = 20
    bad_ts: int = 20
    bad_copies: int = 20
    duplicates: int = 30
    re_ratings: int = 10


@dataclass(frozen=True)
class Corrupted:
    """The file's rows (in order), the clean rows expected and each bad source row's reason."""

    rows: pl.DataFrame
    clean: list[tuple[str, str, int, float]]
    reasons: dict[int, str]


def corrupt(valid: pl.DataFrame, corruption: Corruption, seed: int = 7) -> Corrupted:
    """Inject ``corruption`` into ``valid`` (text columns ``COLUMNS``, unique keys)."""
    rng = np.random.default_rng(seed)
    n = valid.height
    records = [dict(zip(COLUMNS, row, strict=True)) for row in valid.iter_rows()]
    originals = rng.choice(n, corruption.bad_copies + corruption.duplicates
                           + corruption.re_ratings, replace=False).tolist()
    copies = originals[:corruption.bad_copies]
    duplicated = originals[corruption.bad_copies:corruption.bad_copies + corruption.duplicates]
    re_rated = originals[corruption.bad_copies + corruption.duplicates:]
    fates = dict.fromkeys(duplicated, "duplicate") | dict.fromkeys(re_rated, "superseded")
    # (position, record, fate): fate is "clean" or the reason that source row is quarantined
    placed = [(float(i), r, fates.get(i, "clean")) for i, r in enumerate(records)]

    def anywhere() -> float:
        return float(rng.uniform(-1, n))

    def any_record() -> dict[str, str]:
        return dict(records[int(rng.integers(n))])

    for _ in range(corruption.null_users):
        placed.append((anywhere(), any_record() | {"userId": ""}, NULL_USER))
    for k in range(corruption.unknown_items):
        placed.append((anywhere(), any_record() | {"movieId": f"99999{k}"}, UNKNOWN_ITEM))
    for k in range(corruption.out_of_range):
        rating = "11" if k % 2 else "-1"
        placed.append((anywhere(), any_record() | {"userId": f"new{k}", "rating": rating},
                       OUT_OF_RANGE))
    for _ in range(corruption.bad_ts):
        placed.append((anywhere(), any_record() | {"timestamp": "yesterday"}, BAD_TS))
    for k, i in enumerate(copies):  # half right before the good row, half right after it
        placed.append((i + (-0.5 if k % 2 else 0.5), records[i] | {"rating": "12"},
                       OUT_OF_RANGE))
    for i in duplicated:
        placed.append((float(rng.uniform(i + 0.25, n)), dict(records[i]), "clean"))
    for i in re_rated:
        rating = "0.5" if records[i]["rating"] != "0.5" else "5.0"
        placed.append((float(rng.uniform(i + 0.25, n)), records[i] | {"rating": rating},
                       "clean"))
    placed.sort(key=lambda entry: entry[0])
    rows = pl.DataFrame([r for _, r, _ in placed], schema=dict.fromkeys(COLUMNS, pl.String))
    clean = sorted((r["userId"], r["movieId"], int(r["timestamp"]), float(r["rating"]))
                   for _, r, fate in placed if fate == "clean")
    reasons = {row: fate for row, (_, _, fate) in enumerate(placed, start=1) if fate != "clean"}
    return Corrupted(rows, clean, reasons)


def write_movielens(directory: Path, rows: pl.DataFrame, movies: pl.DataFrame) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    rows.write_csv(directory / "ratings.csv")
    movies.write_csv(directory / "movies.csv")
    return directory


def ingest_and_check(directory: Path, corrupted: Corrupted, warehouse: Warehouse,
                     n_valid: int, corruption: Corruption) -> dict[str, int]:
    result = validate_dataset(load_dataset(directory), threshold=0.2)
    result.raise_if_failed()
    snapshot = warehouse.load(result.dataset, result.quarantine)
    batch = warehouse.batches().row(-1, named=True)["batch_id"]
    clean = warehouse.interactions(snapshot).select(
        S.USER_ID, S.ITEM_ID, pl.col(S.TS).dt.epoch("s"), S.RATING).rows()
    assert len(clean) == n_valid == len(corrupted.clean)
    assert sorted(clean) == corrupted.clean  # every valid row, exactly once, its last value
    quarantined = warehouse.quarantined("interactions", batch)
    assert dict(zip(quarantined["_row"], quarantined["reason"], strict=True)) == corrupted.reasons
    counts = dict(quarantined.group_by("reason").len().iter_rows())
    assert counts == {
        NULL_USER: corruption.null_users, UNKNOWN_ITEM: corruption.unknown_items,
        OUT_OF_RANGE: corruption.out_of_range + corruption.bad_copies,
        BAD_TS: corruption.bad_ts, "duplicate": corruption.duplicates,
        "superseded": corruption.re_ratings}
    table = result.summary["tables"]["interactions"]
    assert table["rows_read"] == corrupted.rows.height == len(clean) + quarantined.height
    assert (table["rows_valid"], table["rows_duplicate"], table["rows_superseded"]) == (
        n_valid, corruption.duplicates, corruption.re_ratings)
    return {"input": corrupted.rows.height, "clean": len(clean), **counts}


def small_movielens(n_users: int = 150, n_movies: int = 400,
                    n_ratings: int = 3_000) -> tuple[pl.DataFrame, pl.DataFrame]:
    rng = np.random.default_rng(3)
    pairs = rng.choice(n_users * n_movies, n_ratings, replace=False)
    ratings = pl.DataFrame({
        "userId": [str(p // n_movies + 1) for p in pairs],
        "movieId": [str(p % n_movies + 1) for p in pairs],
        "rating": [f"{r:.1f}" for r in rng.integers(1, 11, n_ratings) / 2],
        "timestamp": [str(t) for t in 1_500_000_000 + rng.integers(0, 10**8, n_ratings)],
    })
    movies = pl.DataFrame({"movieId": [str(m) for m in range(1, n_movies + 1)],
                           "title": [f"Movie {m} (2000)" for m in range(1, n_movies + 1)],
                           "genres": ["Drama|Comedy"] * n_movies})
    return ratings, movies


def test_corrupted_movielens_keeps_every_valid_row(tmp_path: Path) -> None:
    ratings, movies = small_movielens()
    corruption = Corruption()
    corrupted = corrupt(ratings, corruption)
    directory = write_movielens(tmp_path / "ml-corrupted", corrupted.rows, movies)
    counts = ingest_and_check(directory, corrupted, Warehouse(tmp_path / "wh.duckdb"),
                              ratings.height, corruption)
    assert counts["input"] == 3_000 + 20 * 5 + 30 + 10


def test_corrupted_ml_latest_small_keeps_all_100k_valid_rows(shared_data: Path,
                                                            tmp_path: Path) -> None:
    source = shared_data / "ml-latest-small"
    ratings = pl.read_csv(source / "ratings.csv", infer_schema=False).head(100_000)
    movies = pl.read_csv(source / "movies.csv", infer_schema=False)
    corruption = Corruption(null_users=100, unknown_items=100, out_of_range=100, bad_ts=100,
                            bad_copies=100, duplicates=30, re_ratings=30)
    corrupted = corrupt(ratings, corruption)
    directory = write_movielens(tmp_path / "ml-corrupted", corrupted.rows, movies)
    counts = ingest_and_check(directory, corrupted, Warehouse(tmp_path / "wh.duckdb"),
                              100_000, corruption)
    assert counts["clean"] == 100_000
