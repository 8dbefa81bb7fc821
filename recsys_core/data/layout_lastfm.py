"""Last.fm HetRec 2011 (hetrec2011-lastfm-2k): ``user_artists.dat`` + ``artists.dat``.

user_artists: tab-separated ``userID artistID weight`` (the play count becomes ``weight``,
``event`` is ``play``); the header line may be missing, fields may be padded with spaces and
lines may end in CRLF. There are no timestamps and no order (the file lists each user's
artists by artist ID), so ``ts`` is null: file order as synthetic time would teach the
sequence models to predict higher artist IDs.
artists: ``id name url pictureURL`` with a header; the name is the title. When
``colakg_llm_artist_text/`` is present (``item_map.txt``: ``<artistID> <index>`` lines,
``llm_response_item.json``: index -> description), an artist's description becomes its text.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import polars as pl

from recsys_core.data import parse as P
from recsys_core.data import schema as S
from recsys_core.data.dataset import Dataset
from recsys_core.data.errors import DataError
from recsys_core.data.layout import by_files

NAME = "lastfm-hetrec"
DESCRIPTION = "Last.fm HetRec (user_artists.dat + artists.dat [+ colakg_llm_artist_text/])"
DESCRIPTIONS = "colakg_llm_artist_text"
_FIELDS = ("userID", "artistID", "weight")
_EVENT = "play"

logger = logging.getLogger(__name__)


def read(directory: Path) -> Dataset:
    """Read a Last.fm HetRec directory into canonical frames with meta columns.

    Args:
        directory: the dataset directory.
    """
    return Dataset(name=directory.name, interactions=_plays(directory / "user_artists.dat"),
                   items=_artists(directory / "artists.dat", directory / DESCRIPTIONS))


LAYOUT = by_files(NAME, DESCRIPTION, ("user_artists.dat", "artists.dat"), read)


def _has_header(path: Path) -> bool:
    with path.open("rb") as handle:
        first = handle.readline().split(b"\t")[0].strip()
    return bool(first) and not first.isdigit()


def _plays(path: Path) -> pl.DataFrame:
    header = _has_header(path)
    raw = P.read_table(path, "\t", columns=None if header else _FIELDS, quote=None)
    P.require(raw, path, _FIELDS)
    return P.assemble(raw, {
        S.USER_ID: P.as_text("userID"),
        S.ITEM_ID: P.as_text("artistID"),
        S.TS: P.no_timestamps(),
        S.EVENT: P.Parsed(pl.lit(_EVENT)),
        S.WEIGHT: P.as_float(raw, "weight", S.WEIGHT),
    }, S.INTERACTIONS_SCHEMA)


def _artists(path: Path, descriptions: Path) -> pl.DataFrame:
    raw = P.read_table(path, "\t", quote=None)
    P.require(raw, path, ("id", "name"))
    raw = raw.with_columns(P.as_text("id").value)
    columns = {S.ITEM_ID: P.as_text("id"), S.TITLE: P.as_text("name")}
    if descriptions.is_dir():
        raw = raw.join(artist_descriptions(descriptions), on="id", how="left",
                       maintain_order="left")
        columns[S.TEXT] = P.as_text(S.TEXT)
    return P.assemble(raw, columns, S.ITEMS_SCHEMA)


def artist_descriptions(directory: Path) -> pl.DataFrame:
    """``id`` (HetRec artist id) and ``text`` (the CoLaKG LLM description) per mapped artist.

    Args:
        directory: the ``colakg_llm_artist_text`` folder.

    Raises:
        DataError: a file is missing or the JSON is not an object of strings.
    """
    mapping = P.read_table(directory / "item_map.txt", " ", columns=("id", "index"), quote=None)
    path = directory / "llm_response_item.json"
    try:
        texts = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: cannot read JSON ({str(exc).splitlines()[0]})") from exc
    if not isinstance(texts, dict) or not all(isinstance(v, str) for v in texts.values()):
        raise DataError(f"{path}: expected an object of index -> description strings")
    frame = pl.DataFrame({"index": list(texts), S.TEXT: list(texts.values())},
                         schema={"index": pl.String, S.TEXT: pl.String})
    joined = mapping.select(P.as_text("id").value, P.as_text("index").value).join(
        frame, on="index", how="inner").select("id", S.TEXT)
    missing = mapping.height - joined.height
    if missing:
        logger.warning("%s: %d mapped artists have no description", directory, missing)
    return joined.unique("id", keep="first", maintain_order=True)
