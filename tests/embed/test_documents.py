from __future__ import annotations

import polars as pl
import pytest

from recsys_core.data.vocab import Vocabulary
from recsys_core.embed import (
    DocumentTemplate,
    document_hash,
    item_documents,
    item_documents_for,
    render_document,
    tags_by_item,
)


def test_render_drops_empty_parts_and_joins_sentences() -> None:
    fields = {"title": "Toy Story (1995)", "text": "A cowboy doll.  Feels\nthreatened.",
              "categories": ["Animation", "Comedy", "animation"], "tags": []}
    assert render_document(fields) == (
        "Toy Story (1995). A cowboy doll. Feels threatened. Categories: Animation, Comedy"
    )
    assert render_document({"title": "Heat", "text": None}) == "Heat"
    assert render_document({}) == ""


def test_item_documents_with_tags_and_custom_template() -> None:
    items = pl.DataFrame({
        "item_id": ["1", "2"],
        "title": ["Toy Story", "Heat"],
        "text": [None, "A heist."],
        "categories": [["Animation"], None],
    })
    tags = {"1": ["pixar", "Pixar", "fun", "toys"], "3": ["ignored"]}
    docs = item_documents(items, DocumentTemplate(max_tags=2), tags=tags)
    assert docs == ["Toy Story. Categories: Animation. Tags: pixar, fun", "Heat. A heist."]
    template = DocumentTemplate(parts=("{title}", "({categories})"), separator=" ")
    assert item_documents(items, template) == ["Toy Story (Animation)", "Heat"]


def test_tags_by_item_most_frequent_first() -> None:
    frame = pl.DataFrame({"movieId": [1, 1, 1, 1, 2], "tag": ["fun", "Pixar", "pixar", None, "x"]})
    assert tags_by_item(frame, item_col="movieId") == {"1": ["Pixar", "fun"], "2": ["x"]}
    assert tags_by_item(frame, item_col="movieId", max_tags=1)["1"] == ["Pixar"]


def test_document_hash_is_stable_and_content_based() -> None:
    assert document_hash("abc") == document_hash("abc")
    assert document_hash("abc") != document_hash("abd")
    assert len(document_hash("")) == 32


def test_item_documents_follow_the_vocabulary() -> None:
    items = pl.DataFrame({"item_id": ["1", "2", "3"], "title": ["A", "B", "C"]})
    assert item_documents_for(items, Vocabulary(["3", "1"])) == ["C", "A"]
    with pytest.raises(ValueError, match="no row"):
        item_documents_for(items, Vocabulary(["1", "9"]))
