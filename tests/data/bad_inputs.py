"""The bad-input corpus: one generic-layout dataset per class of bad input, with its outcome.

Every case starts from the same six good interactions and three good items and adds one class
of bad input (a case with an ``increment`` then appends a second load to the first's snapshot,
as ``recsys ingest --append`` would). Its expected outcome is either a one-line ``DataError``
(a regex it must match) or exact counts of the rows the warehouse quarantined and counted as
duplicates; in both cases the valid rows must reach the warehouse's clean tables.
``tests/data/test_bad_inputs.py`` asserts the outcomes and ``bench/ingest.py`` prints them as
a table, both through ``run_case``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from data_checks import ValidationResult, validate_dataset
from recsys_core.data import schema as S
from recsys_core.data.errors import DataError
from recsys_core.data.keys import DUPLICATE, SUPERSEDED
from recsys_core.data.loaders import load_dataset
from recsys_core.warehouse import Warehouse

THRESHOLD = 0.4
HEADER = "user_id,item_id,ts,rating"
GOOD = ["u1,i1,1600000000,4", "u1,i2,1600000100,3", "u2,i1,1600000200,5",
        "u2,i3,1600000300,2", "u3,i2,1600000400,1", "u3,i3,1600000500,4"]
ITEMS_HEADER = "item_id,title,text"
ITEMS = ["i1,One,first", "i2,Two,", "i3,Three,third"]
CLEAN = {"interactions": len(GOOD), "items": len(ITEMS)}
TABLES = ("interactions", "items")

Content = str | bytes | pl.DataFrame


def _csv(header: str, rows: Sequence[str], end: str = "\n") -> str:
    return end.join([header, *rows]) + end


def _files(inter: Sequence[str] = (), items: Sequence[str] = (), *, inter_header: str = HEADER,
           items_header: str = ITEMS_HEADER, end: str = "\n",
           before: Sequence[str] = ()) -> dict[str, Content]:
    return {"interactions.csv": _csv(inter_header, [*before, *GOOD, *inter], end),
            "items.csv": _csv(items_header, [*ITEMS, *items], end)}


def _increment(inter: Sequence[str], items: Sequence[str]) -> dict[str, Content]:
    return {"interactions.csv": _csv(HEADER, inter), "items.csv": _csv(ITEMS_HEADER, items)}


@dataclass(frozen=True)
class Case:
    """One class of bad input and what ingesting it must give.

    Args:
        name: the class of bad input.
        files: file name -> content (text, raw bytes, or a frame written as Parquet).
        error: a regex the one-line ``DataError`` must match; ``None`` when it must load.
        quarantined: table -> rows quarantined.
        clean: table -> rows in the warehouse's clean tables.
        reasons: table -> quarantine reason -> rows, when the case pins them down.
        duplicates: table -> rows counted as copies of a row the base snapshot held.
        increment: files of a second load appended to the first's snapshot.
    """

    name: str
    files: Mapping[str, Content]
    error: str | None = None
    quarantined: Mapping[str, int] = field(
        default_factory=lambda: {"interactions": 0, "items": 0})
    clean: Mapping[str, int] = field(default_factory=lambda: dict(CLEAN))
    reasons: Mapping[str, Mapping[str, int]] | None = None
    duplicates: Mapping[str, int] = field(
        default_factory=lambda: {"interactions": 0, "items": 0})
    increment: Mapping[str, Content] | None = None


def _q(interactions: int, items: int = 0) -> dict[str, int]:
    return {"interactions": interactions, "items": items}


def _long_text() -> str:
    return "i4,Long," + "x" * 200_000


def _parquet_list_rating() -> dict[str, Content]:
    frame = pl.DataFrame({"user_id": ["u1"], "item_id": ["i1"], "rating": [[4.0, 5.0]]})
    return {"interactions.parquet": frame, "items.csv": _csv(ITEMS_HEADER, ITEMS)}


CASES: tuple[Case, ...] = (
    Case("nulls in keys", _files([",i1,1600000600,3", "u4,,1600000700,3"], [",Nameless,"]),
         quarantined=_q(2, 1)),
    Case("bad copy of a good row (same key, a bad value), after it and before it",
         _files(["u1,i1,1600000000,11", "u2,i3,1600000300,abc"], before=["u3,i2,1600000400,-2"]),
         quarantined=_q(3), reasons={"interactions": {
             "expect_column_values_to_be_between(rating)": 2,
             "expect_column_values_to_be_null(_parse_error): rating: cannot parse 'abc' as number":
             1}, "items": {}}),
    Case("exact duplicate rows", _files(["u1,i1,1600000000,4", "u3,i3,1600000500,4",
                                         "u3,i3,1600000500,4"], ["i1,One,first"]),
         quarantined=_q(3, 1), reasons={"interactions": {"duplicate": 3},
                                        "items": {"duplicate": 1}}),
    Case("same key, different values, one load (the later row wins)",
         _files(["u1,i1,1600000000,2"], ["i2,Two renamed,"]), quarantined=_q(1, 1),
         reasons={"interactions": {"superseded": 1}, "items": {"superseded": 1}}),
    Case("same key, different values, two loads (the later load wins)", _files(),
         increment=_increment(["u1,i1,1600000000,2", "u2,i1,1600000200,5", "u4,i9,1600000900,3"],
                              ["i2,Two renamed,"]),
         quarantined=_q(2, 1), duplicates=_q(1),
         reasons={"interactions": {"expect_column_values_to_be_in_set(item_id)": 1,
                                   "superseded": 1}, "items": {"superseded": 1}}),
    Case("interactions naming unknown items",
         _files(["u4,i9,1600000600,3", "u5,i10,1600000700,3"]), quarantined=_q(2)),
    Case("ratings out of range", _files(["u4,i1,1600000600,11", "u4,i2,1600000700,-1"]),
         quarantined=_q(2)),
    Case("negative timestamps", _files(["u4,i1,-86400,3"]), quarantined=_q(1)),
    Case("future timestamps", _files(["u4,i1,4102444800,3"]), quarantined=_q(1)),
    Case("unparsable timestamps", _files(["u4,i1,yesterday,3", "u4,i2,2020-13-45,3"]),
         quarantined=_q(2)),
    Case("non-UTF-8 bytes", {
        "interactions.csv": _csv(HEADER, GOOD).encode() + b"u\xff,i1,1600000600,3\n",
        "items.csv": _csv(ITEMS_HEADER, ITEMS).encode() + b"i4,Caf\xe9 au lait,\n",
    }, quarantined=_q(1, 1)),
    Case("absurdly long text",
         _files(["u4,i4,1600000600,3", "u" * 1_000 + ",i1,1600000700,3"], [_long_text()]),
         quarantined=_q(2, 1)),
    Case("wrong column types (text in numeric columns)",
         _files(["u4,i1,1600000600,five", "u4,i2,1600000700,4.5.1"]), quarantined=_q(2)),
    Case("wrong column types (Parquet dtype)", _parquet_list_rating(),
         error=r"interactions\.parquet: column 'rating' has type List\(Float64\)"),
    Case("missing required columns", _files(inter_header="user,item_id,ts,rating"),
         error=r"interactions\.csv: missing required column 'user_id'"),
    Case("empty files", {"interactions.csv": "", "items.csv": _csv(ITEMS_HEADER, ITEMS)},
         error=r"interactions\.csv: empty file"),
    Case("header-only files", {"interactions.csv": HEADER + "\n",
                               "items.csv": _csv(ITEMS_HEADER, ITEMS)},
         error=r"interactions: table checks failed \(expect_table_row_count_to_be_between\)"),
    Case("extra unknown columns", {
        "interactions.csv": _csv(HEADER + ",device", [r + ",phone" for r in GOOD]),
        "items.csv": _csv(ITEMS_HEADER + ",colour", [r + ",red" for r in ITEMS]),
    }),
    Case("CRLF line endings", _files(end="\r\n")),
    Case("bad rows above the threshold",
         _files([f"u9,i{n},1600000600,3" for n in range(10, 16)]),
         error=r"interactions: 50\.0% of 12 rows bad \(threshold 40\.0%\)"),
)


@dataclass(frozen=True)
class Outcome:
    """What ingesting a case gave.

    Args:
        error: the ``DataError`` message, or ``None``.
        quarantined: table -> rows the case's batches quarantined (empty after an error).
        clean: table -> rows in the warehouse's clean snapshot (empty after an error).
        reasons: table -> quarantine reason -> rows (empty after an error).
        duplicates: table -> rows the batches counted as copies of a base snapshot row.
        snapshot: the clean snapshot the case ended with (``None`` after an error).
        failed: table -> failed expectation -> rows it blamed.
        example: the first quarantined row's reason that carries a parse message.
    """

    error: str | None
    quarantined: dict[str, int]
    clean: dict[str, int]
    reasons: dict[str, dict[str, int]] = field(default_factory=dict)
    duplicates: dict[str, int] = field(default_factory=dict)
    snapshot: str | None = None
    failed: dict[str, dict[str, int]] = field(default_factory=dict)
    example: str | None = None

    def describe(self, directory: Path | None = None) -> str:
        """Return a one-line summary for a table (``directory`` shortened to ``<dir>``).

        Args:
            directory: the case's directory, left out of error messages.
        """
        if self.error is not None:
            message = self.error.replace(str(directory), "<dir>") if directory else self.error
            return f"DataError: {message}"
        counts = ", ".join(f"{n} {t}" for t, n in self.quarantined.items())
        clean = ", ".join(f"{n} {t}" for t, n in self.clean.items())
        failed = "; ".join(f"{t}: " + ", ".join(f"{e} {n}" for e, n in f.items())
                           for t, f in self.failed.items())
        example = f"; e.g. {self.example}" if self.example else ""
        keyed = [f"{n} {t} {reason}" for t, found in self.reasons.items()
                 for reason, n in found.items() if reason in (DUPLICATE, SUPERSEDED)]
        keyed += [f"{n} {t} already in the base" for t, n in self.duplicates.items() if n]
        return (f"quarantined {counts}" + (f" ({failed}{example})" if failed else "")
                + (f" [{', '.join(keyed)}]" if keyed else "") + f"; clean {clean}")


def write_files(files: Mapping[str, Content], directory: Path) -> Path:
    """Write ``files`` into ``directory`` (created) and return it.

    Args:
        files: file name -> content (text, raw bytes, or a frame written as Parquet).
        directory: a new or empty folder.
    """
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        path = directory / name
        if isinstance(content, pl.DataFrame):
            content.write_parquet(path)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_bytes(content.encode())
    return directory


def run_case(case: Case, directory: Path, warehouse: Warehouse,
             threshold: float = THRESHOLD) -> Outcome:
    """Write, load, validate and warehouse ``case`` (then its increment); return what happened.

    Args:
        case: the case.
        directory: a new or empty folder for its files (the increment's go next to it).
        warehouse: where the clean rows go.
        threshold: the quarantine threshold.
    """
    before = set(warehouse.batches()["batch_id"])
    try:
        results = [_validated(write_files(case.files, directory), threshold)]
        snapshot = warehouse.load(results[0].dataset, results[0].quarantine)
        if case.increment is not None:
            folder = directory.with_name(directory.name + "-increment")
            known = warehouse.items(snapshot)[S.ITEM_ID].to_list()
            results.append(_validated(write_files(case.increment, folder), threshold, known))
            snapshot = warehouse.append(results[1].dataset, results[1].quarantine,
                                        base=snapshot)
    except DataError as exc:
        return Outcome(str(exc), {}, {})
    batches = warehouse.batches().filter(~pl.col("batch_id").is_in(list(before)))
    reasons, duplicates, failed = {}, {}, {}
    for table in TABLES:
        rows = pl.concat([warehouse.quarantined(table, b) for b in batches["batch_id"]])
        reasons[table] = dict(rows.group_by("reason").len().sort("reason").iter_rows())
        duplicates[table] = int(batches[f"n_duplicate_{table}"].sum())
        counts = sum((Counter(r.reports[table].summary()["failed_expectations"])
                      for r in results), Counter())
        if counts:
            failed[table] = dict(counts)
    labels = {e for table in failed.values() for e in table} | {DUPLICATE, SUPERSEDED}
    examples = [reason for r in results for frame in r.quarantine.values()
                for reason in frame["reason"] if reason not in labels]  # parse messages
    return Outcome(
        None,
        {t: sum(counts.values()) for t, counts in reasons.items()},
        {"interactions": warehouse.interactions(snapshot).height,
         "items": warehouse.items(snapshot).height},
        reasons, duplicates, snapshot, failed,
        examples[0] if examples else None,
    )


def _validated(directory: Path, threshold: float,
               known_item_ids: list[str] | None = None) -> ValidationResult:
    """Validate ``directory``'s dataset; an increment's (``known_item_ids``) may lack items."""
    increment = known_item_ids is not None
    result = validate_dataset(load_dataset(directory), threshold,
                              row_bounds={"items": (0, None)} if increment else None,
                              known_item_ids=known_item_ids)
    result.raise_if_failed()
    return result
