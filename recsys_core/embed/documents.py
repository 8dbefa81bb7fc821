"""Item documents: the text an item is embedded from (title, text, categories, tags)."""

from __future__ import annotations

import hashlib
import string
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from recsys_core.data import schema as S

TAGS = "tags"


class DocumentTemplate(BaseModel):
    """How an item's fields become one text (frozen; round-trips through ``model_dump``).

    Args:
        parts: format strings naming item fields (any items column, plus ``tags``); a part
            is left out when any field it names is empty, so missing text leaves no ``None``
            or dangling label behind.
        separator: between parts (its leading ``.`` is dropped after a part that already
            ends a sentence).
        list_separator: between the entries of list fields (categories, tags).
        max_tags: most tags kept per item (the most frequent first).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    parts: tuple[str, ...] = (
        "{title}", "{text}", "Categories: {categories}", "Tags: {tags}",
    )
    separator: str = ". "
    list_separator: str = ", "
    max_tags: int = Field(default=20, ge=0)


def render_document(fields: Mapping[str, object], template: DocumentTemplate | None = None
                    ) -> str:
    """Render one item's fields through ``template``.

    Args:
        fields: field name -> value (str, number, list of str, or None).
        template: the template; defaults to ``DocumentTemplate()``.
    """
    template = template or DocumentTemplate()
    rendered: list[str] = []
    for part in template.parts:
        names = [name for _, name, _, _ in string.Formatter().parse(part) if name]
        values = {name: _text(fields.get(name), template) for name in names}
        if any(not value for value in values.values()):
            continue
        text = part.format(**values).strip()
        if text:
            rendered.append(text)
    return _join(rendered, template.separator)


def item_documents(
    items: pl.DataFrame,
    template: DocumentTemplate | None = None,
    tags: Mapping[str, Sequence[str]] | None = None,
) -> list[str]:
    """One document per row of ``items``, in row order.

    Args:
        items: canonical items (``item_id``, ``title``, optional ``text``, ``categories``;
            any other column a template names, and an optional ``tags`` list column).
        template: the template; defaults to ``DocumentTemplate()``.
        tags: item_id -> tags, added after any ``tags`` column (see ``tags_by_item``).
    """
    template = template or DocumentTemplate()
    documents = []
    for row in items.iter_rows(named=True):
        item_tags = _as_list(row.get(TAGS))
        if tags is not None:
            item_tags = item_tags + list(tags.get(str(row[S.ITEM_ID]), ()))
        row[TAGS] = _unique(item_tags)[: template.max_tags]
        documents.append(render_document(row, template))
    return documents


def tags_by_item(frame: pl.DataFrame, item_col: str = S.ITEM_ID, tag_col: str = "tag",
                 max_tags: int | None = None) -> dict[str, list[str]]:
    """Tags per item from a long (item, tag) frame, most frequent first, case-folded dupes out.

    Args:
        frame: one row per tag application (e.g. MovieLens ``tags.csv``).
        item_col: the item ID column.
        tag_col: the tag column.
        max_tags: most tags kept per item; ``None`` keeps all.
    """
    counts: dict[str, Counter] = {}
    spelling: dict[tuple[str, str], str] = {}
    for item, tag in frame.select(pl.col(item_col).cast(pl.String), tag_col).iter_rows():
        if tag is None or not str(tag).strip():
            continue
        tag = str(tag).strip()
        key = tag.casefold()
        counts.setdefault(item, Counter())[key] += 1
        spelling.setdefault((item, key), tag)
    return {
        item: [spelling[(item, key)] for key, _ in counter.most_common(max_tags)]
        for item, counter in counts.items()
    }


def document_hash(text: str) -> str:
    """Content hash of a document (the embedding cache's key beside the encoder ID).

    Args:
        text: the document.
    """
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


def _text(value: object, template: DocumentTemplate) -> str:
    if isinstance(value, list | tuple | pl.Series):
        return template.list_separator.join(_unique(_as_list(value)))
    if value is None:
        return ""
    return " ".join(str(value).split())


def _as_list(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, Iterable):
        return [str(v).strip() for v in value if v is not None and str(v).strip()]
    return [str(value)]


def _unique(values: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for value in values:
        key = value.casefold()
        if key not in seen:
            seen.add(key)
            out.append(value)
    return out


def _join(parts: list[str], separator: str) -> str:
    if not parts:
        return ""
    text = parts[0]
    for part in parts[1:]:
        sep = separator
        if text[-1] in ".!?" and separator.startswith("."):
            sep = separator.lstrip(".")
        text += (sep or " ") + part
    return text
