"""Read a dataset directory by auto-detecting its layout (or generate the synthetic data).

The frames returned are canonical (``schema``) plus two meta columns, ``_row`` and
``_parse_error`` (see ``parse``): rows whose values could not be parsed are kept with a null
canonical value and an error message, for the validator to quarantine. Strip the meta columns
with ``parse.strip_meta`` (the validator does) before training.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from recsys_core.data import (
    layout_amazon,
    layout_generic,
    layout_lastfm,
    layout_ml1m,
    layout_ml100k,
    layout_movielens,
    layout_recbole,
)
from recsys_core.data import schema as S
from recsys_core.data.dataset import Dataset
from recsys_core.data.errors import DataError
from recsys_core.data.files import preview
from recsys_core.data.layout import Layout
from recsys_core.data.parse import META_COLUMNS, PARSE_ERROR, ROW, strip_meta
from recsys_core.data.synthetic import SyntheticConfig, generate

__all__ = ["LAYOUTS", "META_COLUMNS", "PARSE_ERROR", "ROW", "SYNTHETIC", "DataError", "Layout",
           "check_dataset", "detect_layout", "has_times", "load_dataset", "read_dataset",
           "strip_meta", "synthetic_config"]

logger = logging.getLogger(__name__)

SYNTHETIC = "synthetic"
"""``--data`` value of the built-in synthetic data (``synthetic:N``: about N interactions)."""


# Most specific first: a UniSRec folder also holds RecBole-style ``*.inter`` files.
LAYOUTS: tuple[Layout, ...] = tuple(
    m.LAYOUT for m in (layout_amazon, layout_lastfm, layout_ml100k, layout_ml1m,
                       layout_movielens, layout_recbole, layout_generic)
)


def detect_layout(path: str | Path) -> Layout:
    """Return the first layout in ``LAYOUTS`` that matches the directory ``path``.

    Args:
        path: a dataset directory.

    Raises:
        DataError: ``path`` is not a directory or matches no layout.
    """
    directory = Path(path).expanduser().resolve()
    if not directory.is_dir():
        raise DataError(f"{directory}: not a directory")
    for layout in LAYOUTS:
        if layout.detect(directory):
            return layout
    found = ", ".join(sorted(p.name for p in directory.iterdir())) or "nothing"
    supported = "; ".join(layout.description for layout in LAYOUTS)
    raise DataError(f"{directory}: unknown dataset layout (found: {found}; supported: {supported})")


def load_dataset(path: str | Path) -> Dataset:
    """Read a dataset directory into canonical frames (plus ``_row``/``_parse_error``).

    Args:
        path: a dataset directory in one of the ``LAYOUTS``.

    Raises:
        DataError: unknown layout, unreadable file or missing required column (one line).
    """
    layout = detect_layout(path)
    dataset = layout.load(Path(path).expanduser().resolve())
    logger.info("loaded %s (%s layout): %d interactions, %d items", dataset.name, layout.name,
                dataset.interactions.height, dataset.items.height)
    return dataset


def read_dataset(data: str) -> Dataset:
    """The built-in synthetic data or a dataset directory (layout auto-detected).

    Args:
        data: ``synthetic`` (about 60k interactions), ``synthetic:N`` (about N interactions,
            users and items growing with N), or a directory path.
    """
    if data == SYNTHETIC:
        return generate(SyntheticConfig())
    size = _synthetic_size(data)
    if size is not None:
        return generate(synthetic_config(size))
    return load_dataset(data)


def check_dataset(data: str, records: int = 1000) -> str:
    """Check cheaply that ``read_dataset(data)`` can read ``data``; return what it would read.

    The synthetic size is parsed; a directory's layout is detected and each of its files read
    with the layout's own readers, first ``records`` records only (``files.preview``): so a
    missing or unreadable file, a bad header or a missing required column raises here, in one
    line, as it would in ``read_dataset``. Bad values further down are for validation to find.
    The check logs nothing (what the readers would say of a sample would mislead).

    Args:
        data: as for ``read_dataset``.
        records: records read per file.

    Returns:
        ``synthetic`` or the directory's layout name.

    Raises:
        DataError: not a directory, unknown layout, unreadable file or missing column.
        ValueError: a bad synthetic size.
    """
    if data == SYNTHETIC or _synthetic_size(data) is not None:
        return SYNTHETIC
    return _preview(data, records)[0].name


def has_times(data: str, records: int = 1000) -> bool:
    """Whether ``data``'s interactions carry times, judged on a preview as ``check_dataset``.

    A layout without any (Last.fm HetRec) gives every row a null ``ts``.

    Args:
        data: as for ``read_dataset``.
        records: records read per file.
    """
    if data == SYNTHETIC or _synthetic_size(data) is not None:
        return True
    return bool(_preview(data, records)[1].interactions[S.TS].is_not_null().any())


def _preview(data: str, records: int) -> tuple[Layout, Dataset]:
    layout = detect_layout(data)
    with preview(records), _silenced(logging.getLogger("recsys_core.data")):
        return layout, layout.load(Path(data).expanduser().resolve())


def _synthetic_size(data: str) -> int | None:
    if not data.startswith(f"{SYNTHETIC}:"):
        return None
    size = data.split(":", 1)[1]
    if not size.isdigit() or int(size) < 100:
        raise ValueError(f"bad synthetic size {size!r}: use synthetic:N with N >= 100")
    return int(size)


@contextmanager
def _silenced(quiet: logging.Logger) -> Iterator[None]:
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        quiet.setLevel(level)


def synthetic_config(n_interactions: int, seed: int = 42) -> SyntheticConfig:
    """Synthetic sizes for about ``n_interactions``: 30 per user, 40 per item on average.

    Args:
        n_interactions: target number of interactions.
        seed: generator seed.
    """
    return SyntheticConfig(n_users=max(10, n_interactions // 30),
                           n_items=max(10, n_interactions // 40),
                           n_interactions=n_interactions, seed=seed)
