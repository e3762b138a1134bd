"""BERT's pre-tokenization ("BasicTokenizer"): raw text -> words and punctuation, before WordPiece.

``basic_tokenize`` drops control characters, turns every kind of whitespace into a space, puts
spaces around CJK ideographs (Chinese has no spaces, so each character becomes a word), lower-cases,
strips accents (Unicode NFD, then drop the combining marks: "Café" -> "cafe") and cuts every
punctuation character out as its own word. The character classes follow Google's BERT and Hugging
Face's ``tokenizers`` (``tests/test_tokenization.py`` compares the whole tokenizer with theirs).
"""
from __future__ import annotations

import unicodedata
from functools import lru_cache

__all__ = ["basic_tokenize"]


def _is_whitespace(char: str) -> bool:
    return char in " \t\n\r" or unicodedata.category(char) == "Zs"


def _is_control(char: str) -> bool:
    if char in "\t\n\r":  # whitespace, kept as such
        return False
    return unicodedata.category(char) in ("Cc", "Cf")


def _is_punctuation(char: str) -> bool:
    cp = ord(char)
    # ASCII symbols such as $ + < = > ^ ` | ~ are not Unicode punctuation (P*), but BERT splits them too.
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def _is_cjk_ideograph(cp: int) -> bool:
    """The CJK Unified Ideograph blocks BERT splits (not Hangul, Hiragana or Katakana, which use spaces)."""
    return (
        0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF or 0x2A700 <= cp <= 0x2B73F
        or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F
    )


_KEEP, _DROP, _SPACE, _CJK, _PUNCT = range(5)


@lru_cache(maxsize=1 << 16)
def _char_kind(char: str) -> int:
    """What pre-tokenization does with one character (cached: a corpus uses few distinct characters)."""
    cp = ord(char)
    if cp == 0 or cp == 0xFFFD or _is_control(char):  # NUL, the replacement character, controls: dropped
        return _DROP
    if _is_whitespace(char):
        return _SPACE
    if _is_cjk_ideograph(cp):
        return _CJK
    return _PUNCT if _is_punctuation(char) else _KEEP


def _normalize_word(word: str, lowercase: bool, strip_accents: bool) -> str:
    if lowercase:  # character by character, as Rust does: no final-sigma rule ("ΟΔΟΣ" -> "οδοσ")
        word = word.lower() if word.isascii() else "".join(c.lower() for c in word)
    if strip_accents and not word.isascii():
        # NFD splits "é" into "e" + a combining acute accent (category Mn), which we drop.
        word = "".join(c for c in unicodedata.normalize("NFD", word) if unicodedata.category(c) != "Mn")
    return word


def basic_tokenize(text: str, lowercase: bool = True, strip_accents: bool | None = None,
                   split_cjk: bool = True) -> list[str]:
    """Split ``text`` into words and punctuation, as BERT's ``BasicTokenizer``.

    ``strip_accents=None`` follows ``lowercase`` (the uncased model does both).
    """
    if not isinstance(text, str):
        raise ValueError(f"text must be a str, got {type(text).__name__}")
    strip_accents = lowercase if strip_accents is None else strip_accents
    cleaned = []
    for char in text:
        kind = _char_kind(char)
        if kind == _DROP:
            continue
        if kind == _SPACE:
            cleaned.append(" ")
        elif kind == _CJK and split_cjk:
            cleaned.append(f" {char} ")  # every ideograph becomes a word of its own
        else:
            cleaned.append(char)
    words = []
    for word in "".join(cleaned).split():
        current = ""
        for char in _normalize_word(word, lowercase, strip_accents):
            if _char_kind(char) == _PUNCT:  # each punctuation character is a word of its own
                if current:
                    words.append(current)
                words.append(char)
                current = ""
            else:
                current += char
        if current:
            words.append(current)
    return words
