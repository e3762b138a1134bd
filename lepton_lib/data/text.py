"""Text corpora for pretraining and labelled sentences for fine-tuning, all available offline.

Pretraining corpora come as *documents*, each a list of sentences, because BERT's next-sentence task
needs to know which sentence follows which, and where a document ends:

* WikiText-2 (Merity et al. 2016, arXiv:1609.07843): Wikipedia articles, already tokenised, rare
  words replaced by ``<unk>``; the book's copy has the validation and test splits (the training
  split is over the data folder's size limit). ``@-@`` style tokens are joined back.
* Tiny Shakespeare (Karpathy's char-rnn): the plays as one text; a "document" is a run of speeches.
* Python's standard-library docstrings, read with ``ast`` from the installed Python (no network,
  but the text depends on the Python version).

Fine-tuning sets: SST-2 (Socher et al. 2013, the GLUE version of Wang et al. 2019; train and dev,
the test labels are not public) and MR sentence polarity (Pang & Lee 2005, Latin-1; it has no
official split, so :func:`load_mr` makes a fixed, seeded one).
"""
from __future__ import annotations

import ast
import csv
import random
import re
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from lepton_lib.core.checks import check_positive_int

from .download import fetch

__all__ = [
    "LabelledSentences", "split_sentences", "load_wikitext2", "wikitext2_documents", "tiny_shakespeare_documents",
    "stdlib_docstring_documents", "load_corpus", "load_sst2", "load_mr", "normalize_for_overlap",
    "evaluation_sentences", "PretrainingText", "unlabelled_pretraining_text",
]

CORPORA = ("wikitext2", "tiny_shakespeare", "stdlib_docstrings")


@dataclass(frozen=True)
class LabelledSentences:
    """Sentences and their labels (0 = negative, 1 = positive)."""

    texts: list[str]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, n: int, seed: int = 0) -> LabelledSentences:
        """``n`` examples drawn without replacement, in a seeded random order."""
        if not 0 < n <= len(self):
            raise ValueError(f"n must be in [1, {len(self)}], got {n}")
        order = random.Random(seed).sample(range(len(self)), n)
        return LabelledSentences([self.texts[i] for i in order], [self.labels[i] for i in order])


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")


def split_sentences(paragraph: str) -> list[str]:
    """Split after ``.``, ``!`` or ``?`` when the next word starts with a capital or a digit.

    Crude (it splits "Mr. Smith"), but enough to build sentence pairs; BERT used a proper sentence
    splitter on Wikipedia.
    """
    return [s.strip() for s in _SENTENCE_END.split(paragraph.strip()) if s.strip()]


# --- pretraining corpora -----------------------------------------------------------------------------


_WIKITEXT_JOINS = ((" @-@ ", "-"), (" @,@ ", ","), (" @.@ ", "."))


def load_wikitext2(split: str = "valid", detokenize: bool = True) -> list[str]:
    """The non-empty lines of WikiText-2 ``split`` ("valid" or "test"), stripped.

    ``detokenize`` joins "1 @,@ 000" back to "1,000" and "well @-@ known" to "well-known", and
    writes ``<unk>`` as ``[UNK]`` (so the tokenizer maps it to its unknown token).
    """
    if split not in ("valid", "test"):
        raise ValueError(f"split must be 'valid' or 'test' (the train split is not in the book's data), got {split!r}")
    lines = []
    for line in fetch(f"wikitext2/{split}.txt").read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line:
            continue
        if detokenize:
            for old, new in _WIKITEXT_JOINS:
                line = line.replace(old, new)
            line = line.replace("<unk>", "[UNK]")
        lines.append(line)
    return lines


def wikitext2_documents(split: str = "valid") -> list[list[str]]:
    """Articles of WikiText-2 as lists of sentences; ``split`` may also be "valid+test".

    An article starts at a top-level heading `` = Title = ``; section headings (`` = = ... = = ``)
    are dropped, paragraphs are cut into sentences.
    """
    splits = split.split("+")
    documents: list[list[str]] = []
    for part in splits:
        for line in load_wikitext2(part):
            if re.fullmatch(r"= [^=].*[^=] =", line):  # a new article
                documents.append([])
            elif line.startswith("="):  # a section heading
                continue
            elif documents:
                documents[-1].extend(split_sentences(line))
    return [d for d in documents if d]


def tiny_shakespeare_documents(lines_per_document: int = 60) -> list[list[str]]:
    """Tiny Shakespeare as documents of about ``lines_per_document`` lines, cut between speeches.

    A "sentence" is one verse line; the speaker's name is prefixed to the first line of a speech.
    """
    text = fetch("tiny_shakespeare/input.txt").read_text(encoding="utf-8")
    documents: list[list[str]] = [[]]
    for speech in text.strip().split("\n\n"):
        speaker, *verse = speech.strip().split("\n")
        if not verse:
            continue
        lines = [f"{speaker} {verse[0].strip()}"] + [v.strip() for v in verse[1:] if v.strip()]
        if len(documents[-1]) >= lines_per_document:
            documents.append([])
        documents[-1].extend(lines)
    return [d for d in documents if d]


def stdlib_docstring_documents(max_files: int | None = None) -> list[list[str]]:
    """Docstrings of the installed Python's standard library: one document per module file.

    Each module, class and function docstring is split into paragraphs and sentences. Files are
    read in sorted order; test suites and private modules are skipped.
    """
    root = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in root.glob("*.py") if not p.name.startswith("_"))
    documents = []
    for path in files[:max_files]:
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError):
            continue
        sentences = []
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)
                for paragraph in (doc or "").split("\n\n"):
                    sentences += split_sentences(" ".join(paragraph.split()))
        if len(sentences) >= 2:
            documents.append(sentences)
    return documents


def load_corpus(name: str) -> list[list[str]]:
    """Documents of one corpus by name: ``wikitext2`` (valid+test), ``tiny_shakespeare``, ``stdlib_docstrings``."""
    if name == "wikitext2":
        return wikitext2_documents("valid+test")
    if name == "tiny_shakespeare":
        return tiny_shakespeare_documents()
    if name == "stdlib_docstrings":
        return stdlib_docstring_documents()
    raise ValueError(f"corpus must be one of {CORPORA}, got {name!r}")


# --- labelled sentences ---------------------------------------------------------------------------------


def load_sst2(split: str = "train") -> LabelledSentences:
    """SST-2 (GLUE): "train" (67,349 phrases and sentences) or "dev" (872 sentences)."""
    if split not in ("train", "dev"):
        raise ValueError(f"split must be 'train' or 'dev' (GLUE's test labels are hidden), got {split!r}")
    with open(fetch(f"sst2/{split}.tsv"), encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    header, rows = rows[0], rows[1:]
    if header != ["sentence", "label"]:
        raise ValueError(f"sst2/{split}.tsv has header {header}, expected ['sentence', 'label']")
    return LabelledSentences([r[0] for r in rows], [int(r[1]) for r in rows])


def load_mr(split: str = "train", test_fraction: float = 0.1, seed: int = 0) -> LabelledSentences:
    """MR sentence polarity (5,331 positive and 5,331 negative snippets), split by a seeded shuffle.

    MR has no official split (papers report 10-fold cross-validation); here ``test_fraction`` of
    the shuffled examples form "test" and the rest "train".
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    examples = []
    for label, name in ((1, "pos"), (0, "neg")):
        text = fetch(f"mr_sentence_polarity/rt-polarity.{name}").read_text(encoding="latin-1")
        # split on "\n" only: str.splitlines() would also cut at the Latin-1 byte 0x85 (NEL) inside lines
        examples += [(line.strip(), label) for line in text.split("\n") if line.strip()]
    random.Random(seed).shuffle(examples)
    n_test = round(len(examples) * test_fraction)
    chosen = examples[:n_test] if split == "test" else examples[n_test:]
    return LabelledSentences([t for t, _ in chosen], [y for _, y in chosen])


# --- pretraining text with every evaluation sentence held out ---------------------------------------------

PRETRAINING_SOURCES = (*CORPORA, "sst2_train", "mr_train")
_WORD = re.compile(r"\w+")


def normalize_for_overlap(sentence: str) -> str:
    """``sentence`` lower-cased and reduced to its words (runs of letters and digits) joined by one space.

    Punctuation is dropped because SST-2 and MR hold the same reviews tokenised differently (SST-2 writes
    "it 's" and two backquotes, MR "it's" and a double quote): with lower-casing and whitespace collapsing
    alone, 351 of SST-2's 872 dev sentences are found in MR's training split; with this normalisation, 604.
    """
    return " ".join(_WORD.findall(sentence.lower()))


def evaluation_sentences() -> frozenset[str]:
    """Every sentence a downstream evaluation of the book scores, normalised by :func:`normalize_for_overlap`.

    That is SST-2's dev split and MR's test split as ``load_task`` takes them (``load_mr("test")`` with
    its default fraction and seed); the chapters that evaluate on a subset of SST-2 dev are covered.
    """
    return frozenset(normalize_for_overlap(s) for s in load_sst2("dev").texts + load_mr("test").texts)


class _EvaluationOverlap:
    """Does a normalised sentence equal, lie inside, or contain an evaluation sentence (word-aligned)?

    "Inside": a set of every contiguous word span of every evaluation sentence (a few hundred thousand
    strings). "Contains": each evaluation sentence of at least ``min_contained_words`` words is filed under
    its rarest word (fewest evaluation sentences holding it); only those filed under one of the sentence's
    words are compared.
    """

    def __init__(self, evaluation: frozenset[str], min_contained_words: int) -> None:
        self.spans: set[str] = set()
        frequency: dict[str, int] = {}
        for sentence in evaluation:
            words = sentence.split()
            for i in range(len(words)):
                for j in range(i + 1, len(words) + 1):
                    self.spans.add(" ".join(words[i:j]))
            for word in set(words):
                frequency[word] = frequency.get(word, 0) + 1
        self.by_rare_word: dict[str, list[str]] = {}
        for sentence in sorted(evaluation):
            if len(sentence.split()) >= min_contained_words:
                rarest = min(set(sentence.split()), key=lambda w: (frequency[w], w))
                self.by_rare_word.setdefault(rarest, []).append(f" {sentence} ")

    def __call__(self, sentence: str) -> bool:
        if not sentence or sentence in self.spans:  # no words at all, equal, or inside one
            return True
        padded = f" {sentence} "
        return any(e in padded for w in set(sentence.split()) for e in self.by_rare_word.get(w, ()))


@dataclass(frozen=True)
class PretrainingText:
    """Documents for pretraining, and how many sentences of each source were kept and dropped."""

    documents: list[list[str]]
    kept: dict[str, int]
    dropped: dict[str, int]


def _source_documents(source: str) -> list[list[str]]:
    if source == "sst2_train":
        return [[s] for s in load_sst2("train").texts]
    if source == "mr_train":
        return [[s] for s in load_mr("train").texts]
    return load_corpus(source)


def unlabelled_pretraining_text(sources: tuple[str, ...] | list[str] = ("wikitext2", "tiny_shakespeare",
                                                                        "sst2_train", "mr_train"),
                                min_contained_words: int = 2) -> PretrainingText:
    """Pretraining documents from ``sources``, the labels thrown away, every evaluation sentence held out.

    Task-adaptive pretraining (Gururangan et al. 2020, arXiv:2004.10964) adds the tasks' own *unlabelled*
    training text; "sst2_train" and "mr_train" are those sentences (SST-2's train split, phrases included;
    MR's train split as :func:`load_mr` cuts it). They are independent snippets, so each is its own
    one-sentence document: packing puts a document separator between two of them, and no pair objective
    is told that one review continues another (NSP/SOP builders cut a one-sentence document in two,
    a pair whose halves really are in order).

    The rule, after :func:`normalize_for_overlap`: a sentence of any source is dropped if it equals an
    evaluation sentence (:func:`evaluation_sentences`), is a word-aligned part of one, or contains one of
    at least ``min_contained_words`` words; a sentence with no word is dropped too. The default 2 leaves
    out SST-2 dev's one-word sentences "bad ." and "cool ?" from the "contains" test only: with 1, every
    sentence with the word "bad" or "cool" is dropped (about 900 more of SST-2 train, 200 of MR train,
    76 of WikiText-2 and Tiny Shakespeare). A dropped sentence cuts its document in two, so no pair spans the gap.
    ``dropped`` and ``kept`` count sentences per source.
    """
    if isinstance(sources, str) or not sources or not set(sources) <= set(PRETRAINING_SOURCES) \
            or len(set(sources)) != len(sources):
        raise ValueError(f"sources must be a non-empty sequence of distinct names from {PRETRAINING_SOURCES}, "
                         f"got {sources!r}")
    check_positive_int("min_contained_words", min_contained_words)
    overlaps = _EvaluationOverlap(evaluation_sentences(), min_contained_words)
    documents: list[list[str]] = []
    kept, dropped = {}, {}
    for source in sources:
        kept[source] = dropped[source] = 0
        for document in _source_documents(source):
            piece: list[str] = []
            for sentence in document:
                if overlaps(normalize_for_overlap(sentence)):
                    dropped[source] += 1
                    if piece:
                        documents.append(piece)
                    piece = []
                else:
                    kept[source] += 1
                    piece.append(sentence)
            if piece:
                documents.append(piece)
    return PretrainingText(documents, kept, dropped)
