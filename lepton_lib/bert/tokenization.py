"""WordPiece tokenization as in BERT-uncased (Devlin et al. 2019, arXiv:1810.04805).

Text becomes token ids in two stages:

1. **Pre-tokenization** (``basic_tokenize``, in ``lepton_lib.bert.basic_tokenizer``) splits raw text into words: drop control characters,
   turn every kind of whitespace into a space, put spaces around CJK ideographs (Chinese has no
   spaces, so each character becomes a word), lower-case, strip accents (Unicode NFD, then drop the
   combining marks: "Café" -> "cafe"), and cut every punctuation character out as its own word.
2. **WordPiece** (``WordPieceTokenizer.wordpiece``) splits each word into the longest vocabulary
   entries, left to right: "unaffable" -> ``un ##aff ##able``, where ``##`` marks a piece that
   continues a word. A word that cannot be covered, or is longer than 100 characters, becomes
   ``[UNK]`` as a whole.

``train_wordpiece_vocab`` learns a vocabulary from a corpus. Google never published its WordPiece
training code; like Hugging Face's ``tokenizers`` trainer, we grow the vocabulary by merging the
most frequent adjacent pair of pieces (the byte-pair-encoding rule of Sennrich et al. 2016) and keep
WordPiece's ``##`` notation and greedy longest-match encoding. The output matches the Hugging Face
``tokenizers`` library token for token on the real 30,522-entry ``bert-base-uncased`` vocabulary
(see ``tests/test_tokenization.py``).
"""
from __future__ import annotations

import heapq
import numbers
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from lepton_lib.bert.basic_tokenizer import basic_tokenize
from lepton_lib.core.checks import check_positive_int

__all__ = [
    "SPECIAL_TOKENS",
    "Encoding",
    "train_wordpiece_vocab",
    "WordPieceTokenizer",
]

PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
SPECIAL_TOKENS = (PAD, UNK, CLS, SEP, MASK)  # the order a freshly trained vocabulary uses (ids 0..4)
MAX_CHARS_PER_WORD = 100  # longer words become [UNK] without trying WordPiece (as BERT does)
_SPECIAL_SPLIT = re.compile("(" + "|".join(re.escape(t) for t in SPECIAL_TOKENS) + ")")
# What decoding with cleanup undoes, applied to each token with its leading space (as Hugging Face does).
_CLEANUP = ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"), (" 'm", "'m"),
            (" do not", " don't"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"))


# --- encodings --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Encoding:
    """One encoded input: ``[CLS] A [SEP]`` or ``[CLS] A [SEP] B [SEP]``.

    ``token_type_ids`` (the segment of each token) are 0 up to and including the first ``[SEP]``
    and 1 after it.
    """

    tokens: list[str]
    ids: list[int]
    token_type_ids: list[int]

    def __len__(self) -> int:
        return len(self.ids)


# --- vocabulary training ----------------------------------------------------------------------------


def _merge_symbols(symbols: list[str], left: str, right: str, merged: str) -> list[str]:
    out, i = [], 0
    while i < len(symbols):
        if i + 1 < len(symbols) and symbols[i] == left and symbols[i + 1] == right:
            out.append(merged)
            i += 2
        else:
            out.append(symbols[i])
            i += 1
    return out


def train_wordpiece_vocab(
    texts: Iterable[str],
    vocab_size: int,
    min_frequency: int = 2,
    special_tokens: Sequence[str] = SPECIAL_TOKENS,
    lowercase: bool = True,
) -> list[str]:
    """Learn a WordPiece vocabulary (a list, index = token id) from ``texts``.

    Start from every character (``##c`` for a character inside a word), then repeatedly add the
    merge of the most frequent adjacent pair of pieces, counted over all words weighted by their
    frequency, until the vocabulary has ``vocab_size`` entries or no pair occurs ``min_frequency``
    times. Ties go to the alphabetically first pair, so training is deterministic. Pair counts are
    updated incrementally (only the words containing the merged pair are re-counted) and a heap
    with lazy deletion finds the best pair.
    """
    check_positive_int("vocab_size", vocab_size)
    word_counts: Counter[str] = Counter()
    for text in texts:
        for part in _SPECIAL_SPLIT.split(text):  # special tokens in the text ("[UNK]") are not words
            if part not in SPECIAL_TOKENS:
                word_counts.update(w for w in basic_tokenize(part, lowercase=lowercase) if len(w) <= MAX_CHARS_PER_WORD)
    if not word_counts:
        raise ValueError("texts is empty: no word to learn a vocabulary from")
    words = sorted(word_counts)
    freqs = [word_counts[w] for w in words]
    splits = [[w[0]] + ["##" + c for c in w[1:]] for w in words]
    vocab = list(dict.fromkeys(special_tokens))
    alphabet = sorted({s for symbols in splits for s in symbols})
    vocab += [s for s in alphabet if s not in vocab]
    if len(vocab) > vocab_size:
        raise ValueError(
            f"vocab_size={vocab_size} is smaller than the {len(special_tokens)} special tokens plus the "
            f"{len(alphabet)} distinct characters of the corpus ({len(vocab)} entries)"
        )

    pair_counts: defaultdict[tuple[str, str], int] = defaultdict(int)
    where: defaultdict[tuple[str, str], set[int]] = defaultdict(set)  # pair -> indices of words holding it
    for i, symbols in enumerate(splits):
        for pair in zip(symbols, symbols[1:]):
            pair_counts[pair] += freqs[i]
            where[pair].add(i)
    heap = [(-count, pair) for pair, count in pair_counts.items()]
    heapq.heapify(heap)
    known = set(vocab)
    while len(vocab) < vocab_size and heap:
        negative_count, pair = heapq.heappop(heap)
        if pair_counts.get(pair, 0) != -negative_count:
            continue  # a stale entry: this pair's count changed after it was pushed
        if -negative_count < min_frequency:
            break
        left, right = pair
        merged = left + right[2:]  # "##" continuation marks only survive at the front
        if merged not in known:
            vocab.append(merged)
            known.add(merged)
        changed: set[tuple[str, str]] = set()
        for i in sorted(where.pop(pair)):
            old = splits[i]
            for p in zip(old, old[1:]):
                pair_counts[p] -= freqs[i]
                where[p].discard(i)
                changed.add(p)
            new = splits[i] = _merge_symbols(old, left, right, merged)
            for p in zip(new, new[1:]):
                pair_counts[p] += freqs[i]
                where[p].add(i)
                changed.add(p)
        pair_counts.pop(pair, None)
        for p in changed:
            count = pair_counts.get(p, 0)
            if count > 0:
                heapq.heappush(heap, (-count, p))
            else:
                pair_counts.pop(p, None)
                where.pop(p, None)
    return vocab


# --- the tokenizer ----------------------------------------------------------------------------------


class WordPieceTokenizer:
    """BERT's tokenizer: ``basic_tokenize`` then greedy longest-match WordPiece over ``vocab``.

    ``vocab`` is a list of tokens (index = id) or a ``{token: id}`` dict holding the five special
    tokens ``[PAD] [UNK] [CLS] [SEP] [MASK]``.
    """

    def __init__(self, vocab: Sequence[str] | dict[str, int], lowercase: bool = True,
                 strip_accents: bool | None = None, split_cjk: bool = True) -> None:
        if isinstance(vocab, dict):
            token_to_id = dict(vocab)
        else:
            token_to_id = {}
            for i, token in enumerate(vocab):
                token_to_id.setdefault(token, i)
        if not token_to_id or sorted(token_to_id.values()) != list(range(len(token_to_id))):
            raise ValueError(f"vocab must map {len(token_to_id)} distinct tokens to the ids 0..n-1 without gaps")
        missing = [t for t in SPECIAL_TOKENS if t not in token_to_id]
        if missing:
            raise ValueError(f"vocab lacks the special tokens {missing}; expected all of {list(SPECIAL_TOKENS)}")
        self.token_to_id = token_to_id
        self.id_to_token = {i: t for t, i in token_to_id.items()}
        self.lowercase, self.strip_accents, self.split_cjk = lowercase, strip_accents, split_cjk
        self.pad_id, self.unk_id, self.cls_id, self.sep_id, self.mask_id = (token_to_id[t] for t in SPECIAL_TOKENS)
        self.special_ids = frozenset((self.pad_id, self.unk_id, self.cls_id, self.sep_id, self.mask_id))
        self._pieces_of: dict[str, list[str]] = {}  # word -> pieces: running text repeats its words a lot

    # --- construction and storage ---

    @classmethod
    def from_vocab_file(cls, path: str | Path, **kwargs) -> WordPieceTokenizer:
        """Read a ``vocab.txt`` (one token per line, line number = id), as BERT ships it."""
        lines = Path(path).read_text(encoding="utf-8").split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        return cls([line.rstrip("\r") for line in lines], **kwargs)

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int, min_frequency: int = 2, lowercase: bool = True,
              ) -> WordPieceTokenizer:
        """Learn a vocabulary with :func:`train_wordpiece_vocab` and return a tokenizer using it."""
        return cls(train_wordpiece_vocab(texts, vocab_size, min_frequency, lowercase=lowercase), lowercase=lowercase)

    def save_vocab(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text("".join(self.id_to_token[i] + "\n" for i in range(len(self))), encoding="utf-8")
        return path

    def __len__(self) -> int:
        return len(self.token_to_id)

    @property
    def vocab_size(self) -> int:
        return len(self.token_to_id)

    # --- text -> tokens ---

    def wordpiece(self, word: str) -> list[str]:
        """Greedy longest-match-first split of one pre-tokenized word (``[UNK]`` if impossible)."""
        if len(word) > MAX_CHARS_PER_WORD:
            return [UNK]
        pieces, start = [], 0
        while start < len(word):
            end = len(word)
            while end > start:  # try the longest candidate first, then shorten it by one character
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.token_to_id:
                    break
                end -= 1
            if end == start:  # not even one character matches: the whole word is unknown
                return [UNK]
            pieces.append(piece)
            start = end
        return pieces

    def tokenize(self, text: str) -> list[str]:
        """Word pieces of ``text`` (no special tokens added).

        A special token written in the text, such as ``[MASK]`` or ``[UNK]``, stays one token (it
        is matched exactly, before normalisation, as Hugging Face does for special tokens).
        """
        if not isinstance(text, str):
            raise ValueError(f"text must be a str, got {type(text).__name__}")
        pieces: list[str] = []
        for part in _SPECIAL_SPLIT.split(text):
            if part in SPECIAL_TOKENS:
                pieces.append(part)
            elif part:
                pieces += self._tokenize_plain(part)
        return pieces

    def _tokenize_plain(self, text: str) -> list[str]:
        pieces = []
        for word in basic_tokenize(text, self.lowercase, self.strip_accents, self.split_cjk):
            cached = self._pieces_of.get(word)
            if cached is None:
                cached = self.wordpiece(word)
                if len(self._pieces_of) < 200_000:
                    self._pieces_of[word] = cached
            pieces += cached
        return pieces

    def convert_tokens_to_ids(self, tokens: Sequence[str]) -> list[int]:
        return [self.token_to_id.get(t, self.unk_id) for t in tokens]

    def encode(self, text: str, pair: str | None = None, max_length: int | None = None,
               truncation: bool = False) -> Encoding:
        """``[CLS] text [SEP]`` or ``[CLS] text [SEP] pair [SEP]`` as tokens, ids and segment ids.

        An input longer than ``max_length`` raises unless ``truncation=True``, which removes tokens
        from the end of the longer segment until it fits (BERT's ``truncate_seq_pair``).
        """
        segments = []
        for name, value in (("text", text), ("pair", pair)):
            if value is None and name == "pair":
                continue
            if not isinstance(value, str):
                raise ValueError(f"{name} must be a str, got {type(value).__name__}")
            tokens = self.tokenize(value)
            if not tokens:
                raise ValueError(f"{name} is empty after normalisation (got {value[:40]!r}); expected some text")
            segments.append(tokens)
        n_special = len(segments) + 1
        if max_length is not None:
            if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < n_special + len(segments):
                raise ValueError(f"max_length must be an int >= {n_special + len(segments)}, got {max_length!r}")
            total = sum(map(len, segments)) + n_special
            if total > max_length and not truncation:
                raise ValueError(
                    f"the input has {total} tokens, more than max_length={max_length}; pass truncation=True to cut it"
                )
            while sum(map(len, segments)) + n_special > max_length:
                longest = max(range(len(segments)), key=lambda k: (len(segments[k]), k))
                segments[longest] = segments[longest][:-1]
        tokens, types = [CLS], [0]
        for segment_id, segment in enumerate(segments):
            tokens += segment + [SEP]
            types += [segment_id] * (len(segment) + 1)
        return Encoding(tokens, self.convert_tokens_to_ids(tokens), types)

    def encode_batch(self, texts: Sequence[str], pairs: Sequence[str] | None = None, max_length: int = 128,
                     truncation: bool = True) -> dict[str, torch.Tensor]:
        """Encode and pad to the longest input: ``input_ids``, ``token_type_ids``, ``attention_mask`` (B, S).

        ``attention_mask`` is 1 on real tokens and 0 on padding (the Hugging Face convention).
        """
        if isinstance(texts, str) or not len(texts):
            raise ValueError(f"texts must be a non-empty sequence of str, got {type(texts).__name__}")
        if pairs is not None and len(pairs) != len(texts):
            raise ValueError(f"pairs has {len(pairs)} entries, expected one per text ({len(texts)})")
        encodings = [self.encode(t, None if pairs is None else pairs[i], max_length, truncation)
                     for i, t in enumerate(texts)]
        width = max(map(len, encodings))
        ids = torch.full((len(encodings), width), self.pad_id, dtype=torch.long)
        types = torch.zeros_like(ids)
        mask = torch.zeros_like(ids)
        for row, enc in enumerate(encodings):
            ids[row, : len(enc)] = torch.tensor(enc.ids)
            types[row, : len(enc)] = torch.tensor(enc.token_type_ids)
            mask[row, : len(enc)] = 1
        return {"input_ids": ids, "token_type_ids": types, "attention_mask": mask}

    # --- ids -> text ---

    def decode(self, ids: Sequence[int] | torch.Tensor, skip_special_tokens: bool = True,
               cleanup: bool = True) -> str:
        """Join word pieces back into text (lower-cased, accents stripped: decoding cannot undo those).

        ``cleanup`` removes the space that tokenization put before punctuation and in contractions
        (" ." -> ".", " n't" -> "n't"), as the Hugging Face decoder does.
        """
        if isinstance(ids, torch.Tensor) or hasattr(ids, "tolist"):  # a tensor or a NumPy array
            ids = ids.tolist()
        ids = [int(i) if isinstance(i, numbers.Integral) else i for i in ids]  # NumPy integers too
        bad = [i for i in ids if not isinstance(i, int) or i not in self.id_to_token]
        if bad:
            raise ValueError(f"ids must be ints in [0, {len(self)}), got {bad[:5]}")
        tokens = [self.id_to_token[i] for i in ids if not (skip_special_tokens and i in self.special_ids)]
        pieces = []
        for position, token in enumerate(tokens):
            if position > 0:  # a "##" piece continues the previous word; any other token starts a new one
                token = token[2:] if token.startswith("##") else " " + token
            if cleanup:
                for before, after in _CLEANUP:
                    token = token.replace(before, after)
            pieces.append(token)
        return "".join(pieces)
