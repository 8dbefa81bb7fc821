"""The bad-input corpus: one generic-layout dataset per class of bad input, with its outcome.

Every case starts from the same six good interactions and three good items and adds one class
of bad input. Its expected outcome is either a one-line ``DataError`` (a regex it must match)
or exact quarantine counts; in both cases the valid rows must reach the warehouse's clean
tables. ``tests/data/test_bad_inputs.py`` asserts the outcomes and ``bench/ingest.py`` prints
them as a table, both through ``run_case``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from data_checks import validate_dataset
from recsys_core.data.errors import DataError
from recsys_core.data.loaders import load_dataset
from recsys_core.warehouse import Warehouse

THRESHOLD = 0.4
HEADER = "user_id,item_id,ts,rating"
GOOD = ["u1,i1,1600000000,4", "u1,i2,1600000100,3", "u2,i1,1600000200,5",
        "u2,i3,1600000300,2", "u3,i2,1600000400,1", "u3,i3,1600000500,4"]
ITEMS_HEADER = "item_id,title,text"
ITEMS = ["i1,One,first", "i2,Two,", "i3,Three,third"]
CLEAN = {"interactions": len(GOOD), "items": len(ITEMS)}

Content = str | bytes | pl.DataFrame


def _csv(header: str, rows: Sequence[str], end: str = "\n") -> str:
    return end.join([header, *rows]) + end


def _files(inter: Sequence[str] = (), items: Sequence[str] = (), *, inter_header: str = HEADER,
           items_header: str = ITEMS_HEADER, end: str = "\n") -> dict[str, Content]:
    return {"interactions.csv": _csv(inter_header, [*GOOD, *inter], end),
            "items.csv": _csv(items_header, [*ITEMS, *items], end)}


@dataclass(frozen=True)
class Case:
    """One class of bad input and what ingesting it must give.

    Args:
        name: the class of bad input.
        files: file name -> content (text, raw bytes, or a frame written as Parquet).
        error: a regex the one-line ``DataError`` must match; ``None`` when it must load.
        quarantined: table -> rows quarantined.
        clean: table -> rows in the warehouse's clean tables.
    """

    name: str
    files: Mapping[str, Content]
    error: str | None = None
    quarantined: Mapping[str, int] = field(
        default_factory=lambda: {"interactions": 0, "items": 0})
    clean: Mapping[str, int] = field(default_factory=lambda: dict(CLEAN))


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
    Case("duplicate rows", _files(["u1,i1,1600000000,4", "u1,i1,1600000000,2"],
                                  ["i1,One again,"]), quarantined=_q(2, 1)),
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
        quarantined: table -> rows quarantined (empty after an error).
        clean: table -> rows in the warehouse's clean snapshot (empty after an error).
        failed: table -> failed expectation -> rows it blamed.
        example: the first quarantined row's reason that carries a parse message.
    """

    error: str | None
    quarantined: dict[str, int]
    clean: dict[str, int]
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
        return (f"quarantined {counts}" + (f" ({failed}{example})" if failed else "")
                + f"; clean {clean}")


def write_case(case: Case, directory: Path) -> Path:
    """Write ``case``'s files into ``directory`` (created) and return it.

    Args:
        case: the case.
        directory: a new or empty folder.
    """
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in case.files.items():
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
    """Write, load, validate and warehouse ``case``; return what happened.

    Args:
        case: the case.
        directory: a new or empty folder for its files.
        warehouse: where the clean rows go.
        threshold: the quarantine threshold.
    """
    write_case(case, directory)
    try:
        result = validate_dataset(load_dataset(directory), threshold)
        result.raise_if_failed()
        snapshot = warehouse.load(result.dataset, result.quarantine)
    except DataError as exc:
        return Outcome(str(exc), {}, {})
    failed = {t: report.summary()["failed_expectations"] for t, report in result.reports.items()}
    labels = {e for table in failed.values() for e in table}
    examples = [r for frame in result.quarantine.values() for r in frame["reason"]
                if r not in labels]  # reasons that carry a parse message
    return Outcome(
        None,
        {t: frame.height for t, frame in result.quarantine.items()},
        {"interactions": warehouse.interactions(snapshot).height,
         "items": warehouse.items(snapshot).height},
        {t: f for t, f in failed.items() if f},
        examples[0] if examples else None,
    )
