from __future__ import annotations

import json
from pathlib import Path

import pytest

from recsys_core.embed import packaged_model_path, resolve_model_path
from recsys_core.embed.source import default_max_length, model_fingerprint


def test_packaged_names_resolve_to_the_packaged_model() -> None:
    packaged = packaged_model_path()
    assert (packaged / "config.json").is_file()
    assert resolve_model_path("all-MiniLM-L6-v2") == packaged
    assert resolve_model_path("sentence-transformers/all-MiniLM-L6-v2") == packaged
    assert default_max_length(packaged) == 256  # sentence_bert_config.json max_seq_length


def test_local_folder_and_unknown_name(tiny_model_dir: Path) -> None:
    assert resolve_model_path(str(tiny_model_dir)) == tiny_model_dir.resolve()
    assert default_max_length(tiny_model_dir) == 64
    with pytest.raises(FileNotFoundError, match="not packaged"):
        resolve_model_path("nobody/no-such-model-anywhere")


def test_a_path_that_is_no_model_folder_says_so(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"^encoder '\S+/missing': no such folder$"):
        resolve_model_path(str(tmp_path / "missing"))
    (tmp_path / "weights.bin").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="weights.bin': not a folder$"):
        resolve_model_path(str(tmp_path / "weights.bin"))
    with pytest.raises(FileNotFoundError, match="holds no config.json"):
        resolve_model_path(str(tmp_path))


def test_fingerprint_follows_file_content(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"hidden_size": 8}))
    first = model_fingerprint(tmp_path)
    assert model_fingerprint(tmp_path) == first
    (tmp_path / "config.json").write_text(json.dumps({"hidden_size": 1024}))
    assert model_fingerprint(tmp_path) != first


@pytest.mark.parametrize("path", ["/no/such/encoder", "./no-such-encoder", "~/no-such-enc",
                                  "models/bert/v2"])
def test_a_missing_encoder_path_is_named_as_a_path(path: str) -> None:
    with pytest.raises(FileNotFoundError, match=f"^encoder '{path}': no such folder$"):
        resolve_model_path(path)
