"""Ingestion benchmark: load, validate, warehouse and build features for every shared dataset.

For each dataset folder under ``--data`` (default ``../shared/data``) whose layout is
recognised, times the four ingestion stages and counts rows read, valid and quarantined per
table; the warehouse is a fresh DuckDB file in a temporary folder. Then runs the bad-input
corpus (``tests/data/bad_inputs.py``, the same cases the tests assert) and prints what each
class of bad input gives. Both tables are markdown.

    python bench/ingest.py
    python bench/ingest.py --data /path/to/datasets --threshold 0.2
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the corpus lives with its tests: tests/data/bad_inputs.py

from data_checks import validate_dataset  # noqa: E402
from recsys_core.data.errors import DataError  # noqa: E402
from recsys_core.data.loaders import detect_layout, load_dataset  # noqa: E402
from recsys_core.warehouse import Warehouse, build_features  # noqa: E402
from tests.data.bad_inputs import CASES, THRESHOLD, run_case  # noqa: E402


@dataclass(frozen=True)
class Row:
    dataset: str
    layout: str
    seconds: dict[str, float]
    tables: dict[str, dict[str, int]]
    users: int
    snapshot: str


def bench_dataset(path: Path, warehouse: Warehouse, threshold: float) -> Row:
    layout = detect_layout(path).name
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    data = load_dataset(path)
    seconds["load"] = time.perf_counter() - start
    start = time.perf_counter()
    result = validate_dataset(data, threshold)
    seconds["validate"] = time.perf_counter() - start
    result.raise_if_failed()
    start = time.perf_counter()
    snapshot = warehouse.load(result.dataset, result.quarantine)
    seconds["warehouse"] = time.perf_counter() - start
    start = time.perf_counter()
    features = build_features(warehouse, snapshot)
    seconds["features"] = time.perf_counter() - start
    tables = {t: {k: v for k, v in counts.items() if k.startswith("rows_")}
              for t, counts in result.summary["tables"].items()}
    return Row(path.name, layout, seconds, tables, len(features.user_vocab), snapshot)


def markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    return "\n".join(lines)


def dataset_table(rows: list[Row]) -> str:
    header = ["dataset", "layout", "interactions read / valid / quarantined",
              "items read / valid / quarantined", "users", "load s", "validate s",
              "warehouse s", "features s", "snapshot"]

    def counts(row: Row, table: str) -> str:
        c = row.tables[table]
        return f"{c['rows_read']:,} / {c['rows_valid']:,} / {c['rows_quarantined']:,}"

    return markdown(header, [
        [r.dataset, r.layout, counts(r, "interactions"), counts(r, "items"), f"{r.users:,}",
         *(f"{r.seconds[s]:.2f}" for s in ("load", "validate", "warehouse", "features")),
         r.snapshot] for r in rows])


def bad_input_table(directory: Path) -> str:
    warehouse = Warehouse(directory / "bad-inputs.duckdb")
    rows = []
    for number, case in enumerate(CASES):
        folder = directory / f"case-{number:02d}"
        outcome = run_case(case, folder, warehouse)
        expected = ("error" if case.error else
                    f"quarantine {case.quarantined['interactions']}+{case.quarantined['items']}")
        rows.append([case.name, expected, outcome.describe(folder).replace("|", "\\|")])
    return markdown(["bad input", "expected", "outcome (6 good interactions, 3 good items)"],
                    rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--threshold", type=float, default=0.2,
                        help="largest acceptable share of bad rows per table")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    for handler in logging.getLogger().handlers:  # GE sets INFO on some of its loggers
        handler.setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        warehouse = Warehouse(Path(tmp) / "warehouse.duckdb")
        rows = []
        folders = sorted(p for p in args.data.iterdir() if p.is_dir()) if args.data.is_dir() \
            else []
        for folder in folders:
            try:
                rows.append(bench_dataset(folder, warehouse, args.threshold))
            except DataError as exc:
                print(f"skipped {folder.name}: {exc}")
        print(f"## Ingestion of the datasets in {args.data}\n")
        print(dataset_table(rows) if rows else "(no dataset found)")
        print(f"\n## Bad-input corpus (threshold {THRESHOLD:.0%})\n")
        print(bad_input_table(Path(tmp)))


if __name__ == "__main__":
    main()
