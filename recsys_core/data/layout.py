"""What a dataset layout is, and the two ways a directory is recognised as one.

Each ``layout_*`` module reads one directory layout into canonical frames and names itself
with a ``LAYOUT``: recognised by fixed file names (``by_files``), or by exactly one file set
sharing a stem (``by_stem``: ``<name>.inter`` + ``<name>.item``, ...). ``loaders.LAYOUTS``
tries them in order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from recsys_core.data.dataset import Dataset
from recsys_core.data.errors import DataError


@dataclass(frozen=True)
class Layout:
    """A directory layout a dataset can come in.

    Args:
        name: short name (``generic``, ``movielens-latest``, ``recbole``, ...).
        description: the files it expects, for error messages.
        detect: whether a directory is in this layout.
        load: read such a directory.
    """

    name: str
    description: str
    detect: Callable[[Path], bool]
    load: Callable[[Path], Dataset]


def by_files(name: str, description: str, files: Sequence[str],
             read: Callable[[Path], Dataset]) -> Layout:
    """A layout detected when the directory holds every one of ``files``.

    Args:
        name: the layout's name.
        description: the files it expects.
        files: file names that must all be present.
        read: reads such a directory.
    """
    def detect(directory: Path) -> bool:
        return all((directory / file).is_file() for file in files)

    return Layout(name, description, detect, read)


def by_stem(name: str, description: str, stems: Callable[[Path], list[str]],
            read: Callable[[Path, str], Dataset]) -> Layout:
    """A layout of one file set sharing a stem; a directory with none or several is not one.

    Args:
        name: the layout's name.
        description: the files it expects.
        stems: the stems of the complete file sets in a directory.
        read: reads the file set of one stem in a directory.
    """
    def load(directory: Path) -> Dataset:
        found = stems(directory)
        if len(found) != 1:
            raise DataError(f"{directory}: not a {description} directory")
        return read(directory, found[0])

    return Layout(name, description, lambda directory: len(stems(directory)) == 1, load)


def optional(path: Path, read: Callable[[Path], pl.DataFrame]) -> pl.DataFrame | None:
    """``read(path)`` when the file is there (an optional table), else None.

    Args:
        path: the table's file.
        read: reads it.
    """
    return read(path) if path.is_file() else None
