"""Amazon review sequences as preprocessed by UniSRec (``<name>.train/valid/test.inter``).

Files (tab-separated): ``<name>.{train,valid,test}.inter`` with a RecBole header
``user_id:token  item_id_list:token_seq  item_id:token`` (integer indices; the history is
space-separated and at most 50 long), ``<name>.item2index`` and ``<name>.user2index``
(``original id<TAB>index``, no header) and ``<name>.text`` (``item_id:token  text:token_seq``,
keyed by the original item id).

Each user's full sequence is rebuilt as the shared README explains: train rows are all
prefixes of the sequence, so the history of the earliest one (shortest; ties broken by later
file position, as the file lists the longest first) followed by every target in order (train,
then valid, then test) is the sequence. It must end like the last row's history, else the
user's rows get a parse error. Order becomes synthetic timestamps: the n-th item of a user's
sequence is ``n`` seconds after the epoch. There are no ratings. An item's text becomes its
title (``"<title>. <category path>. <brand>."``). The published leave-one-out split is kept as
each row's ``split``: the valid and test targets are ``valid`` and ``test``, every item before
them ``train``.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from recsys_core.data import parse as P
from recsys_core.data import schema as S
from recsys_core.data.dataset import Dataset
from recsys_core.data.layout import by_stem, optional
from recsys_core.data.layout_recbole import read_atomic

NAME = "amazon-unisrec"
DESCRIPTION = ("Amazon UniSRec sequences (<name>.train|valid|test.inter + <name>.item2index "
               "+ <name>.text [+ <name>.user2index])")
_STAGES = S.SPLIT_LABELS  # the files, in order; a stage's index is its position here
_HISTORY = "item_id_list"


def _stems(directory: Path) -> list[str]:
    return sorted(p.name.removesuffix(".train.inter") for p in directory.glob("*.train.inter")
                  if all((directory / p.name.replace(".train.inter", suffix)).is_file()
                         for suffix in (".valid.inter", ".test.inter", ".text", ".item2index")))


def read(directory: Path, stem: str) -> Dataset:
    """Read the UniSRec file set ``stem`` into canonical frames with meta columns.

    Args:
        directory: the dataset directory.
        stem: the file set's name.
    """
    base = directory / stem
    users_path = base.with_name(base.name + ".user2index")
    users = optional(users_path, _index)
    items = _index(base.with_name(base.name + ".item2index"))
    sequences = rebuild_sequences([base.with_name(f"{base.name}.{s}.inter") for s in _STAGES])
    return Dataset(name=directory.name, interactions=_interactions(sequences, users, items),
                   items=_items(base.with_name(base.name + ".text")))


LAYOUT = by_stem(NAME, DESCRIPTION, _stems, read)


def _index(path: Path) -> pl.DataFrame:
    raw = P.read_table(path, "\t", columns=("key", "index"), quote=None)
    return raw.select(P.as_text("index").value.alias("index"), P.as_text("key").value)


def rebuild_sequences(paths: list[Path]) -> pl.DataFrame:
    """Rebuild each user's item sequence from prefix-style inter files.

    Args:
        paths: the train, valid and test ``.inter`` files, in that order.

    Returns:
        ``user_id`` (index), ``sequence`` (list of item indices, oldest first), ``stage``
        (aligned with ``sequence``: the index in ``paths`` of the file whose target the item
        is; 0 for the first history's items) and ``consistent`` (whether the sequence ends
        like the user's last history).
    """
    frames = []
    for stage, path in enumerate(paths):
        raw, _ = read_atomic(path)
        P.require(raw, path, (S.USER_ID, _HISTORY, S.ITEM_ID))
        frames.append(raw.select(
            P.as_text(S.USER_ID).value, P.as_text(S.ITEM_ID).value,
            pl.col(_HISTORY).str.strip_chars().str.split(" ").list.filter(pl.element() != ""),
            pl.lit(stage).alias("stage"), pl.col(P.ROW)))
    rows = pl.concat(frames).with_columns(pl.col(_HISTORY).list.len().alias("n"))
    rows = rows.sort([S.USER_ID, "stage", "n", P.ROW], descending=[False, False, False, True],
                     maintain_order=True)
    users = rows.group_by(S.USER_ID, maintain_order=True).agg(
        pl.col(_HISTORY).first().alias("prefix"), pl.col(S.ITEM_ID).alias("targets"),
        pl.col(_HISTORY).last().alias("last"), pl.col("stage"))
    sequence = pl.concat_list("prefix", "targets")
    stages = pl.concat_list(pl.col("prefix").list.eval(pl.lit(0)), "stage")
    tail = sequence.list.slice(sequence.list.len() - 1 - pl.col("last").list.len(),
                               pl.col("last").list.len())
    return users.select(S.USER_ID, sequence.alias("sequence"), stages.alias("stage"),
                        (tail == pl.col("last")).alias("consistent"))


def _interactions(sequences: pl.DataFrame, users: pl.DataFrame | None,
                  items: pl.DataFrame) -> pl.DataFrame:
    rows = (sequences.with_columns(pl.int_ranges(1, pl.col("sequence").list.len() + 1)
                                   .alias("position"))
            .explode(["sequence", "stage", "position"]).rename({"sequence": "item_index"}))
    rows = rows.join(items.rename({"index": "item_index", "key": S.ITEM_ID}), on="item_index",
                     how="left", maintain_order="left")
    if users is not None:
        rows = rows.rename({S.USER_ID: "user_index"}).join(
            users.rename({"index": "user_index", "key": S.USER_ID}), on="user_index",
            how="left", maintain_order="left")
    else:
        rows = rows.with_columns(pl.col(S.USER_ID).alias("user_index"))
    rows = rows.with_row_index(P.ROW, offset=1).with_columns(pl.col(P.ROW).cast(pl.Int64))
    unknown_user = pl.when(pl.col(S.USER_ID).is_null()).then(
        pl.format("user_id: unknown user index '{}'", pl.col("user_index")))
    unknown_item = pl.when(pl.col(S.ITEM_ID).is_null()).then(
        pl.format("item_id: unknown item index '{}'", pl.col("item_index")))
    inconsistent = pl.when(~pl.col("consistent")).then(
        pl.lit("item_id: rebuilt sequence disagrees with the user's last history"))
    item_error = pl.concat_str([unknown_item, inconsistent], separator="; ", ignore_nulls=True)
    return P.assemble(rows, {
        S.USER_ID: P.Parsed(P.as_text(S.USER_ID).value, unknown_user),
        S.ITEM_ID: P.Parsed(P.as_text(S.ITEM_ID).value,
                            pl.when(item_error != "").then(item_error)),
        S.TS: P.Parsed(pl.from_epoch(pl.col("position"), time_unit="s")),
        S.SPLIT: P.Parsed(pl.col("stage").replace_strict(range(len(_STAGES)), _STAGES)),
    }, S.INTERACTIONS_SCHEMA)


def _items(path: Path) -> pl.DataFrame:
    raw, _ = read_atomic(path)
    P.require(raw, path, (S.ITEM_ID, S.TEXT))
    return P.assemble(raw, {S.ITEM_ID: P.as_text(S.ITEM_ID), S.TITLE: P.as_text(S.TEXT)},
                      S.ITEMS_SCHEMA)
