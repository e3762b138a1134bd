"""Pretraining examples for BERT: sentence pairs for NSP, packed sequences, and MLM masking.

* :func:`create_nsp_examples` follows BERT's ``create_pretraining_data.py``: walk each document,
  gather sentences up to a target length, cut them into segment A and segment B; with probability
  0.5 replace B by text from another document (label NotNext). 10% of examples get a shorter
  random target length, so the model also sees short inputs.
* :func:`create_sop_examples` is ALBERT's sentence-order prediction (Lan et al. 2019,
  arXiv:1909.11942): both segments always come from one document, consecutive; half the pairs are
  kept in order (label 0), half are swapped (label 1). NotNext pairs from another document can be
  told apart by their topic alone; a swapped pair only by its coherence. The labels ride in the
  same field as NSP's, so the batcher and the model's 2-way NSP head serve SOP unchanged.
* :func:`pack_sequences` is what RoBERTa (Liu et al. 2019, arXiv:1907.11692) trains on without
  NSP: the text packed contiguously (across documents, with a ``[SEP]`` in between) into one
  segment of up to ``max_seq_length`` tokens, so almost no position is padding.
* :func:`mask_tokens` picks 15% of the non-special tokens; of those, 80% become ``[MASK]``, 10% a
  random (non-special) token and 10% stay unchanged. The model must predict the original token at
  every picked position, and cannot know which positions were left unchanged.
* :class:`PretrainingBatcher` assembles padded batches. The mask of an example is drawn from a
  generator seeded by ``(seed, epoch, example index)``: a new mask every epoch (RoBERTa's dynamic
  masking; ``static_masking=True`` keeps one mask for all epochs), independent of which batch or
  process holds the example. So a resumed run, or the same global batch split over several
  processes, sees exactly the same masks.
"""
from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from lepton_lib.attention.tiny_models import IGNORE_INDEX
from lepton_lib.bert.tokenization import WordPieceTokenizer
from lepton_lib.core.checks import check_positive_int

__all__ = [
    "PretrainingExample", "tokenize_documents", "create_nsp_examples", "create_sop_examples", "pack_sequences", "mask_tokens",
    "ExampleStream", "PretrainingBatcher",
]


@dataclass(frozen=True)
class PretrainingExample:
    """Token ids of segment A and B (B empty for a packed single-segment example) and the pair label.

    ``is_random_next`` is the label of the pair task: for NSP, B comes from another document; for
    SOP (:func:`create_sop_examples`), A and B are swapped. ``int(is_random_next)`` is the class.
    """

    tokens_a: tuple[int, ...]
    tokens_b: tuple[int, ...] = ()
    is_random_next: bool = False

    def __len__(self) -> int:  # with [CLS] and the [SEP]s
        return len(self.tokens_a) + len(self.tokens_b) + (3 if self.tokens_b else 2)


def tokenize_documents(documents: Sequence[Sequence[str]], tokenizer: WordPieceTokenizer) -> list[list[list[int]]]:
    """Documents of sentences -> documents of token-id lists (empty sentences and documents dropped)."""
    out = []
    for document in documents:
        sentences = [tokenizer.convert_tokens_to_ids(tokenizer.tokenize(s)) for s in document]
        sentences = [s for s in sentences if s]
        if sentences:
            out.append(sentences)
    if not out:
        raise ValueError("documents hold no text: every sentence is empty after tokenization")
    return out


def _check_length(max_seq_length: int, minimum: int) -> None:
    if isinstance(max_seq_length, bool) or not isinstance(max_seq_length, int) or max_seq_length < minimum:
        raise ValueError(f"max_seq_length must be an int >= {minimum}, got {max_seq_length!r}")


def _truncate_pair(a: list[int], b: list[int], max_tokens: int) -> None:
    """Trim the longer segment until both fit: A loses tokens at its start, B at its end.

    Trimming only the outer ends keeps an IsNext pair a true continuation (BERT's script trimmed
    either end at random, which can cut a hole between A and B).
    """
    while len(a) + len(b) > max_tokens:
        if len(a) > len(b):
            del a[0]
        else:
            b.pop()


def create_nsp_examples(
    documents: Sequence[Sequence[Sequence[int]]],
    max_seq_length: int = 128,
    seed: int = 0,
    nsp_probability: float = 0.5,
    short_seq_prob: float = 0.1,
) -> list[PretrainingExample]:
    """Sentence pairs ``[CLS] A [SEP] B [SEP]`` from tokenized documents (lists of sentences of ids).

    B is the true continuation of A with probability ``1 - nsp_probability`` (label IsNext) and
    a span from another, random document otherwise (NotNext). Unlike BERT's script, a chunk of a
    single sentence drawn as IsNext takes the document's next sentence as B, or is cut in two if
    it is the document's last (BERT made every such chunk NotNext, which tilts the labels towards
    NotNext, most of all on corpora of short documents); so the labels split 50/50.
    """
    _check_length(max_seq_length, 5)
    if not 0.0 <= nsp_probability <= 1.0:
        raise ValueError(f"nsp_probability must be in [0, 1], got {nsp_probability}")
    non_empty = sum(1 for document in documents if len(document) > 0)
    if non_empty < 2:  # empty documents give no pairs and are never drawn as "another document"
        raise ValueError(f"documents must hold at least 2 documents that are not empty (NotNext pairs need "
                         f"another), got {non_empty} non-empty of {len(documents)}")
    rng = random.Random(seed)
    max_tokens = max_seq_length - 3  # [CLS] A [SEP] B [SEP]
    examples = []
    for doc_index, document in enumerate(documents):
        target = rng.randint(2, max_tokens) if rng.random() < short_seq_prob else max_tokens
        chunk: list[Sequence[int]] = []
        length, i = 0, 0
        while i < len(document):
            chunk.append(document[i])
            length += len(document[i])
            if i == len(document) - 1 or length >= target:
                random_next = rng.random() < nsp_probability
                if len(chunk) == 1 and not random_next:
                    if i + 1 < len(document):  # borrow the next sentence as B
                        i += 1
                        chunk.append(document[i])
                    elif len(chunk[0]) >= 2:  # the document's last sentence: cut it in two
                        cut = rng.randint(1, len(chunk[0]) - 1)
                        chunk = [chunk[0][:cut], chunk[0][cut:]]
                    else:
                        random_next = True
                a_end = rng.randint(1, len(chunk) - 1) if len(chunk) >= 2 else 1
                tokens_a = [t for s in chunk[:a_end] for t in s]
                if random_next:
                    other = doc_index
                    while other == doc_index or not documents[other]:
                        other = rng.randrange(len(documents))
                    start = rng.randrange(len(documents[other]))
                    tokens_b: list[int] = []
                    for sentence in documents[other][start:]:
                        tokens_b += sentence
                        if len(tokens_b) >= target - len(tokens_a):
                            break
                    i -= len(chunk) - a_end  # the unused sentences of this chunk start the next one
                else:
                    tokens_b = [t for s in chunk[a_end:] for t in s]
                _truncate_pair(tokens_a, tokens_b, max_tokens)
                if tokens_a and tokens_b:
                    examples.append(PretrainingExample(tuple(tokens_a), tuple(tokens_b), random_next))
                target = rng.randint(2, max_tokens) if rng.random() < short_seq_prob else max_tokens
                chunk, length = [], 0
            i += 1
    return examples


def _consecutive_segments(document: Sequence[Sequence[int]], max_tokens: int, short_seq_prob: float,
                          rng: random.Random) -> list[tuple[list[int], list[int]]]:
    """Cut one document into chunks of about a target length, each split in two consecutive segments.

    A chunk of one sentence borrows the document's next sentence, or, if it is the last, is cut in
    two (a one-token last sentence gives no pair). Segments are trimmed at their outer ends only.
    """
    def draw() -> int:
        return rng.randint(2, max_tokens) if rng.random() < short_seq_prob else max_tokens

    pairs: list[tuple[list[int], list[int]]] = []
    target, chunk, length, i = draw(), [], 0, 0
    while i < len(document):
        chunk.append(list(document[i]))
        length += len(document[i])
        if i == len(document) - 1 or length >= target:
            if len(chunk) == 1 and i + 1 < len(document):
                i += 1
                chunk.append(list(document[i]))
            if len(chunk) >= 2:
                a_end = rng.randint(1, len(chunk) - 1)
                first, second = [t for s in chunk[:a_end] for t in s], [t for s in chunk[a_end:] for t in s]
            else:
                cut = rng.randint(1, len(chunk[0]) - 1) if len(chunk[0]) >= 2 else 0
                first, second = chunk[0][:cut], chunk[0][cut:]
            _truncate_pair(first, second, max_tokens)
            if first and second:
                pairs.append((first, second))
            target, chunk, length = draw(), [], 0
        i += 1
    return pairs


def create_sop_examples(
    documents: Sequence[Sequence[Sequence[int]]],
    max_seq_length: int = 128,
    seed: int = 0,
    swap_probability: float = 0.5,
    short_seq_prob: float = 0.1,
) -> list[PretrainingExample]:
    """Sentence-order pairs ``[CLS] A [SEP] B [SEP]`` (ALBERT, arXiv:1909.11942) from tokenized documents.

    A and B are two consecutive segments of one document, cut at a sentence boundary as in
    :func:`create_nsp_examples`. With probability ``swap_probability`` they are swapped: the example
    is ``(B, A)`` with ``is_random_next=True`` (label 1, "swapped"); otherwise ``(A, B)``, label 0,
    "in order" (the same class numbers as NSP's IsNext 0 / NotNext 1). The swap draw comes after the
    cut, so the same seed gives the same segments whatever ``swap_probability`` is. Empty documents
    give no pairs and draw nothing; one document suffices (no pair needs another document).
    """
    _check_length(max_seq_length, 5)
    for name, value in (("swap_probability", swap_probability), ("short_seq_prob", short_seq_prob)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    non_empty = sum(1 for document in documents if len(document) > 0)
    if non_empty < 1:
        raise ValueError(f"documents must hold at least 1 document that is not empty, got {len(documents)} "
                         f"documents, all empty")
    rng = random.Random(seed)
    examples = []
    for document in documents:
        if not document:
            continue
        for first, second in _consecutive_segments(document, max_seq_length - 3, short_seq_prob, rng):
            swapped = rng.random() < swap_probability
            pair = (second, first) if swapped else (first, second)
            examples.append(PretrainingExample(tuple(pair[0]), tuple(pair[1]), swapped))
    return examples


def pack_sequences(documents: Sequence[Sequence[Sequence[int]]], max_seq_length: int, sep_id: int,
                   whole_sentences: bool = False) -> list[PretrainingExample]:
    """Pack the token stream into single-segment examples of at most ``max_seq_length`` tokens.

    Sentences are taken in order, across document boundaries (marked by ``sep_id``). By default
    every example is filled to the brim, a sentence that does not fit continuing in the next
    example. With ``whole_sentences=True`` a sentence is moved whole to the next example instead
    (RoBERTa's FULL-SENTENCES; only a sentence longer than the budget is cut), which keeps
    sentences intact at the price of some padding when sequences are short.
    """
    _check_length(max_seq_length, 3)
    budget = max_seq_length - 2  # [CLS] ... [SEP]
    examples: list[PretrainingExample] = []
    current: list[int] = []

    def flush() -> None:
        while current and current[-1] == sep_id:  # no dangling document separator at the end
            current.pop()
        while current and current[0] == sep_id:
            current.pop(0)
        if current:
            examples.append(PretrainingExample(tuple(current)))
        current.clear()

    for document in documents:
        if current:  # a document boundary inside a packed sequence
            current.append(sep_id)
        for sentence in document:
            piece = list(sentence)
            while piece:
                room = budget - len(current)
                if whole_sentences and len(piece) > room and current and len(piece) <= budget:
                    flush()
                    continue
                current.extend(piece[:room])
                piece = piece[room:]
                if len(current) >= budget:
                    flush()
    flush()
    return examples


def mask_tokens(
    input_ids: Tensor,
    special_ids: Sequence[int],
    mask_id: int,
    vocab_size: int,
    generator: torch.Generator,
    mlm_probability: float = 0.15,
) -> tuple[Tensor, Tensor]:
    """BERT's masking of ``input_ids`` (any shape): return ``(masked_ids, labels)``.

    Each token whose id is not in ``special_ids`` is picked with probability ``mlm_probability``;
    a picked token becomes ``mask_id`` (80%), a random non-special id (10%) or stays (10%).
    ``labels`` holds the original id at picked positions and -100 everywhere else.
    """
    if not isinstance(input_ids, Tensor) or input_ids.dtype != torch.long:
        raise ValueError(f"input_ids must be an int64 tensor, got {getattr(input_ids, 'dtype', type(input_ids))}")
    if not 0.0 < mlm_probability < 1.0:
        raise ValueError(f"mlm_probability must be in (0, 1), got {mlm_probability}")
    check_positive_int("vocab_size", vocab_size)
    special = torch.tensor(sorted(set(special_ids)), dtype=torch.long)
    if special.numel() and (int(special[0]) < 0 or int(special[-1]) >= vocab_size):
        raise ValueError(f"special_ids must lie in [0, {vocab_size - 1}] (vocab_size={vocab_size}), "
                         f"got {special.tolist()}")
    if input_ids.numel():  # an id outside the vocabulary would be kept as a label, or index out of range later
        low, high = int(input_ids.min()), int(input_ids.max())
        if low < 0 or high >= vocab_size:
            raise ValueError(f"input_ids contains the id {low if low < 0 else high}, outside the vocabulary "
                             f"[0, {vocab_size - 1}] (vocab_size={vocab_size})")
    if mask_id not in special.tolist():
        raise ValueError(f"mask_id {mask_id} must be one of special_ids {special.tolist()}")
    eligible = ~torch.isin(input_ids, special)
    picked = (torch.rand(input_ids.shape, generator=generator) < mlm_probability) & eligible
    labels = torch.where(picked, input_ids, torch.full_like(input_ids, IGNORE_INDEX))
    action = torch.rand(input_ids.shape, generator=generator)
    # Random replacements come from the ordinary vocabulary: never [CLS], [SEP], [PAD], [MASK] or [UNK].
    ordinary = torch.ones(vocab_size, dtype=torch.bool)
    ordinary[special] = False
    candidates = ordinary.nonzero().squeeze(1)
    random_ids = candidates[torch.randint(len(candidates), input_ids.shape, generator=generator)]
    masked = torch.where(picked & (action < 0.8), torch.full_like(input_ids, mask_id), input_ids)
    masked = torch.where(picked & (action >= 0.8) & (action < 0.9), random_ids, masked)
    return masked, labels


class ExampleStream:
    """The example indices of every global batch: epoch ``e`` visits all examples in a shuffled
    order seeded by ``(seed, e)``; batches run on across epoch boundaries.

    ``batch(step)`` returns ``(epoch, index)`` pairs: a pure function of ``step``, so training can
    stop and resume anywhere without saving the data loader.
    """

    def __init__(self, num_examples: int, batch_size: int, seed: int = 0) -> None:
        if num_examples < 1 or batch_size < 1:
            raise ValueError(f"num_examples and batch_size must be >= 1, got {num_examples}, {batch_size}")
        self.num_examples, self.batch_size, self.seed = num_examples, batch_size, seed
        self._orders: dict[int, list[int]] = {}

    def _order(self, epoch: int) -> list[int]:
        if epoch not in self._orders:
            generator = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
            self._orders = {epoch: torch.randperm(self.num_examples, generator=generator).tolist()}
        return self._orders[epoch]

    def batch(self, step: int) -> list[tuple[int, int]]:
        start = step * self.batch_size
        out = []
        for position in range(start, start + self.batch_size):
            epoch, offset = divmod(position, self.num_examples)
            out.append((epoch, self._order(epoch)[offset]))
        return out

    def epoch_of(self, step: int) -> float:
        return step * self.batch_size / self.num_examples


class PretrainingBatcher:
    """Turn ``(epoch, index)`` pairs into a padded, masked batch of tensors for ``BertForPreTraining``."""

    def __init__(self, examples: Sequence[PretrainingExample], tokenizer: WordPieceTokenizer, seed: int = 0,
                 mlm_probability: float = 0.15, static_masking: bool = False) -> None:
        if not examples:
            raise ValueError("examples is empty")
        self.examples, self.seed = examples, seed
        self.mlm_probability, self.static_masking = mlm_probability, static_masking
        self.cls_id, self.sep_id, self.pad_id, self.mask_id = (
            tokenizer.cls_id, tokenizer.sep_id, tokenizer.pad_id, tokenizer.mask_id)
        self.special_ids, self.vocab_size = sorted(tokenizer.special_ids), tokenizer.vocab_size
        self.has_pairs = any(e.tokens_b for e in examples)

    def encode(self, example: PretrainingExample) -> tuple[list[int], list[int]]:
        """Ids and segment ids of ``[CLS] A [SEP] (B [SEP])``."""
        ids = [self.cls_id, *example.tokens_a, self.sep_id]
        types = [0] * len(ids)
        if example.tokens_b:
            ids += [*example.tokens_b, self.sep_id]
            types += [1] * (len(example.tokens_b) + 1)
        return ids, types

    def mask_seed(self, epoch: int, index: int) -> int:
        return (self.seed * 1_000_003 + (0 if self.static_masking else epoch)) * 10_000_019 + index

    def __call__(self, items: Sequence[tuple[int, int]]) -> dict[str, Tensor]:
        """``input_ids, token_type_ids, attention_mask, mlm_labels`` (B, S) and ``nsp_labels`` (B,).

        ``nsp_labels`` only when some example has a pair; -100 for the examples that have none.
        """
        encoded = [self.encode(self.examples[index]) for _, index in items]
        width = max(len(ids) for ids, _ in encoded)
        batch = {name: torch.zeros(len(items), width, dtype=torch.long)
                 for name in ("input_ids", "token_type_ids", "attention_mask")}
        batch["input_ids"].fill_(self.pad_id)
        batch["mlm_labels"] = torch.full((len(items), width), IGNORE_INDEX, dtype=torch.long)
        for row, ((epoch, index), (ids, types)) in enumerate(zip(items, encoded)):
            generator = torch.Generator().manual_seed(self.mask_seed(epoch, index))
            masked, labels = mask_tokens(torch.tensor(ids), self.special_ids, self.mask_id, self.vocab_size,
                                         generator, self.mlm_probability)
            n = len(ids)
            batch["input_ids"][row, :n] = masked
            batch["token_type_ids"][row, :n] = torch.tensor(types)
            batch["attention_mask"][row, :n] = 1
            batch["mlm_labels"][row, :n] = labels
        if self.has_pairs:  # an example without segment B (packed among pairs) has no pair label: -100, ignored
            batch["nsp_labels"] = torch.tensor([int(self.examples[i].is_random_next) if self.examples[i].tokens_b
                                                else IGNORE_INDEX for _, i in items])
        return batch
