"""Tiny text models shared by the text tests (random weights: fast, still a real LM)."""

import pytest

from tfrl.text import (
    CharTokenizer,
    GenerationConfig,
    LMConfig,
    TextGenerator,
    build_lm,
    load_corpus,
)


@pytest.fixture(scope="session")
def tokenizer():
    return CharTokenizer.from_text(load_corpus())


@pytest.fixture(scope="session")
def tiny_lm(tokenizer):
    return build_lm(tokenizer.vocab_size, LMConfig(units=32, embedding_dim=8, seed=0))


@pytest.fixture(scope="session")
def generator(tiny_lm, tokenizer):
    return TextGenerator(tiny_lm, tokenizer, GenerationConfig(max_length=16, max_prompt_length=32))
