"""A tiny random BERT (hidden 32, 2 layers) and its word-piece tokenizer, built in code."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import BertConfig, BertModel, BertTokenizer

WORDS = (
    "the a an of and in on to is was it this that with for movie film story love war space "
    "cat dog sat mat stock market fell rose drama comedy action adventure animation horror "
    "toy jumanji heat pixar fun magic game old men romance crime thriller sci fi categories "
    "tags watched"
).split()
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
LETTERS = "abcdefghijklmnopqrstuvwxyz0123456789"
PUNCT = list(".,;:()!?'-")


def build_tiny_model(folder: Path, seed: int = 0) -> Path:
    """Save a random 2-layer BERT with hidden size 32 and a word-piece tokenizer to ``folder``."""
    vocab = SPECIAL + WORDS + PUNCT + list(LETTERS) + [f"##{c}" for c in LETTERS]
    tokenizer = BertTokenizer(vocab={token: i for i, token in enumerate(vocab)})
    tokenizer.model_max_length = 64
    config = BertConfig(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=64, pad_token_id=0,
    )
    torch.manual_seed(seed)
    model = BertModel(config)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
