"""lepton_lib.bert.pretraining_data and lepton_lib.data.text: masking statistics, NSP and SOP pairs, packing,
loaders.

The masking test draws about 200,000 token decisions and checks each rate against its binomial
standard error (5 sigma), so a wrong rate (say 12% instead of 15%) fails and a correct one passes.
"""
from __future__ import annotations

import math
import os

import pytest
import torch

import torch.nn.functional as F

from lepton_lib.bert import (
    ExampleStream,
    PretrainConfig,
    PretrainingBatcher,
    PretrainingExample,
    BertConfig,
    BertForPreTraining,
    create_nsp_examples,
    create_sop_examples,
    evaluate_pretraining,
    mask_tokens,
    pack_sequences,
    pretrain,
)
from lepton_lib.bert import SPECIAL_TOKENS, WordPieceTokenizer

PAD, UNK, CLS, SEP, MASK = range(5)  # the order of SPECIAL_TOKENS in a trained vocabulary
VOCAB = 50


def within(rate: float, expected: float, n: int, sigmas: float = 5.0) -> bool:
    return abs(rate - expected) <= sigmas * math.sqrt(expected * (1 - expected) / n)


def test_masking_rates_and_that_special_and_padding_tokens_are_never_picked():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, VOCAB, (400, 512), generator=g)
    ids[:, 0], ids[:, 255], ids[:, 300:] = CLS, SEP, PAD  # specials and a long padded tail
    ids[::7, 10] = UNK
    masked, labels = mask_tokens(ids, range(5), MASK, VOCAB, g)
    special = ids < 5
    picked = labels != -100
    assert not picked[special].any()  # never a special or padding position
    assert torch.equal(masked[special], ids[special])
    assert torch.equal(labels[picked], ids[picked])  # the target is the original token
    assert torch.equal(masked[~picked], ids[~picked])  # nothing else changes
    n_eligible, n_picked = int((~special).sum()), int(picked.sum())
    assert within(n_picked / n_eligible, 0.15, n_eligible)
    became_mask = int((masked[picked] == MASK).sum())
    unchanged = int((masked[picked] == ids[picked]).sum())
    other = n_picked - became_mask - unchanged
    assert within(became_mask / n_picked, 0.8, n_picked)
    # 10% kept on purpose, plus the random draws that happen to hit the original id (1 in 45 here).
    p_same = 0.1 + 0.1 / (VOCAB - 5)
    assert within(unchanged / n_picked, p_same, n_picked)
    assert within(other / n_picked, 0.1 - 0.1 / (VOCAB - 5), n_picked)
    replaced = masked[picked & (masked != ids) & (masked != MASK)]
    assert replaced.min() >= 5  # random replacements are ordinary tokens, never [CLS]/[SEP]/[PAD]/[UNK]


def test_masking_checks_its_arguments():
    g = torch.Generator().manual_seed(0)
    with pytest.raises(ValueError, match="int64"):
        mask_tokens(torch.zeros(3), range(5), MASK, VOCAB, g)
    with pytest.raises(ValueError, match="mlm_probability"):
        mask_tokens(torch.zeros(3, dtype=torch.long), range(5), MASK, VOCAB, g, mlm_probability=1.5)
    with pytest.raises(ValueError, match="mask_id 7 must be one of special_ids"):
        mask_tokens(torch.zeros(3, dtype=torch.long), range(5), 7, VOCAB, g)


def toy_tokenizer() -> WordPieceTokenizer:
    return WordPieceTokenizer(list(SPECIAL_TOKENS) + [f"w{i}" for i in range(VOCAB - 5)])


def toy_documents(n_docs: int = 30, seed: int = 0) -> list[list[list[int]]]:
    """Documents of sentences whose ids count up, so that continuity is easy to check."""
    g = torch.Generator().manual_seed(seed)
    docs = []
    for d in range(n_docs):
        lengths = torch.randint(3, 15, (int(torch.randint(1, 12, (1,), generator=g)),), generator=g).tolist()
        start = 1000 * (d + 1)
        sentences, offset = [], 0
        for length in lengths:
            sentences.append(list(range(start + offset, start + offset + length)))
            offset += length
        docs.append(sentences)
    return docs


def doc_of(token: int) -> int:
    return token // 1000 - 1


def test_nsp_pairs_are_continuations_or_random_documents_half_and_half():
    docs = toy_documents(200)
    examples = create_nsp_examples(docs, max_seq_length=32, seed=0)
    assert len(examples) > 300
    random_next = sum(e.is_random_next for e in examples)
    assert within(random_next / len(examples), 0.5, len(examples))
    for e in examples:
        assert len(e) <= 32 and e.tokens_a and e.tokens_b
        a, b = list(e.tokens_a), list(e.tokens_b)
        assert a == list(range(a[0], a[0] + len(a)))  # A is one contiguous span of one document
        if e.is_random_next:
            assert doc_of(b[0]) != doc_of(a[0])  # B comes from another document
        else:  # B continues A (truncation only trims the outer ends)
            assert a + b == list(range(a[0], a[0] + len(a) + len(b)))
    assert create_nsp_examples(docs, 32, seed=0) == examples  # deterministic
    assert create_nsp_examples(docs, 32, seed=1) != examples



def test_sop_pairs_are_consecutive_segments_of_one_document_in_order_or_swapped_half_and_half():
    docs = toy_documents(200)
    examples = create_sop_examples(docs, max_seq_length=32, seed=0)
    assert len(examples) > 300
    swapped = sum(e.is_random_next for e in examples)
    assert within(swapped / len(examples), 0.5, len(examples))
    for e in examples:
        assert len(e) <= 32 and e.tokens_a and e.tokens_b
        first, second = (e.tokens_b, e.tokens_a) if e.is_random_next else (e.tokens_a, e.tokens_b)
        joined = list(first) + list(second)  # in reading order: one contiguous span of one document
        assert joined == list(range(joined[0], joined[0] + len(joined)))
    assert create_sop_examples(docs, 32, seed=0) == examples  # deterministic
    assert create_sop_examples(docs, 32, seed=1) != examples


def test_a_swapped_sop_pair_is_exactly_the_in_order_pair_reversed():
    docs = toy_documents(60)
    kept = create_sop_examples(docs, 24, seed=3, swap_probability=0.0)
    flipped = create_sop_examples(docs, 24, seed=3, swap_probability=1.0)
    assert not any(e.is_random_next for e in kept) and all(e.is_random_next for e in flipped)
    assert [(e.tokens_b, e.tokens_a) for e in kept] == [(e.tokens_a, e.tokens_b) for e in flipped]
    mixed = create_sop_examples(docs, 24, seed=3)  # the same segments, some of them swapped
    assert [e if not m.is_random_next else f for e, f, m in zip(kept, flipped, mixed)] == mixed
    assert 0 < sum(m.is_random_next for m in mixed) < len(mixed)


def test_sop_skips_empty_documents_and_needs_only_one_document():
    docs = toy_documents(20)
    with_empty = [[], *docs[:10], [], *docs[10:], []]
    assert create_sop_examples(with_empty, 32, seed=0) == create_sop_examples(docs, 32, seed=0)
    one = create_sop_examples([[list(range(5, 15)), list(range(15, 25))]], 32, seed=0)
    assert len(one) == 1 and sorted(one[0].tokens_a + one[0].tokens_b) == list(range(5, 25))
    # a document of one sentence is cut in two; a one-token sentence gives no pair
    assert len(create_sop_examples([[[5, 6, 7]]], 32)) == 1 and create_sop_examples([[[5]]], 32) == []


def test_sop_examples_feed_the_batcher_and_the_pair_head():
    tokenizer = toy_tokenizer()
    g = torch.Generator().manual_seed(0)
    docs = [[torch.randint(5, VOCAB, (int(n),), generator=g).tolist() for n in torch.randint(2, 9, (6,), generator=g)]
            for _ in range(8)]
    examples = create_sop_examples(docs, 24, seed=0)
    batcher = PretrainingBatcher(examples, tokenizer, seed=0)
    batch = batcher([(0, i) for i in range(len(examples))])
    assert batch["nsp_labels"].tolist() == [int(e.is_random_next) for e in examples]
    torch.manual_seed(0)
    model = BertForPreTraining(BertConfig.preset("tiny", vocab_size=VOCAB, max_position_embeddings=32))
    out = model(**batch)
    assert out.nsp_logits.shape == (len(examples), 2) and torch.isfinite(out.nsp_loss_sum)

def mixed_examples() -> list[PretrainingExample]:
    """SOP pairs and packed single segments in one list (what ``mask_pair_labels`` builds)."""
    docs = toy_documents(12)
    return create_sop_examples(docs[:6], 24, seed=0) + pack_sequences(docs[6:], 24, SEP)


def tiny_pair_model_for(vocab_size: int) -> BertForPreTraining:
    torch.manual_seed(0)
    config = BertConfig.preset("tiny", vocab_size=vocab_size, max_position_embeddings=32, hidden_dropout_prob=0.0,
                               attention_probs_dropout_prob=0.0)
    return BertForPreTraining(config)


def test_examples_without_a_pair_get_label_minus_100_and_the_pair_loss_leaves_them_out():
    examples = mixed_examples()
    paired = [bool(e.tokens_b) for e in examples]
    assert 0 < sum(paired) < len(examples)
    ids = {t for e in examples for t in (*e.tokens_a, *e.tokens_b)}
    tokenizer = WordPieceTokenizer(list(SPECIAL_TOKENS) + [f"w{i}" for i in range(max(ids) - 4)])
    batcher = PretrainingBatcher(examples, tokenizer, seed=0)
    batch = batcher([(0, i) for i in range(len(examples))])
    assert batch["nsp_labels"].tolist() == [int(e.is_random_next) if e.tokens_b else -100 for e in examples]
    model = tiny_pair_model_for(tokenizer.vocab_size).eval()
    out = model(**batch)
    keep = torch.tensor(paired)
    only_pairs = F.cross_entropy(out.nsp_logits[keep], batch["nsp_labels"][keep])  # mean over the labelled pairs
    assert out.nsp_loss.item() == pytest.approx(only_pairs.item(), rel=1e-6)
    assert out.nsp_loss_sum.item() == pytest.approx(only_pairs.item() * sum(paired), rel=1e-6)
    # the packed examples' pair logits do not move the loss; a batch of packed examples only has pair loss 0
    assert model(**batcher([(0, i) for i, p in enumerate(paired) if not p])).nsp_loss.item() == 0.0
    # held-out pair accuracy counts the labelled pairs only
    accuracy = evaluate_pretraining(model, batcher)["nsp_accuracy"]
    correct = int((out.nsp_logits.argmax(-1) == batch["nsp_labels"])[keep].sum())
    assert accuracy == correct / sum(paired)


def test_the_training_loop_averages_the_pair_loss_over_labelled_pairs_across_micro_batches():
    examples = mixed_examples()
    ids = {t for e in examples for t in (*e.tokens_a, *e.tokens_b)}
    tokenizer = WordPieceTokenizer(list(SPECIAL_TOKENS) + [f"w{i}" for i in range(max(ids) - 4)])
    batcher = PretrainingBatcher(examples, tokenizer, seed=0)
    config = PretrainConfig(steps=1, batch_size=len(examples), grad_accum_steps=1, lr=1e-3, warmup_steps=0,
                            progress=False)
    batch = batcher([(0, i) for i in range(len(examples))])
    expected = tiny_pair_model_for(tokenizer.vocab_size)(**batch)
    keep = torch.tensor([bool(e.tokens_b) for e in examples])
    pairs_only = F.cross_entropy(expected.nsp_logits[keep], batch["nsp_labels"][keep]).item()
    for accumulation in (1, 2) if len(examples) % 2 == 0 else (1,):
        log = pretrain(tiny_pair_model_for(tokenizer.vocab_size), batcher,
                       PretrainConfig(**{**config.__dict__, "grad_accum_steps": accumulation}))
        assert log.nsp_loss[0] == pytest.approx(pairs_only, rel=1e-5)  # not diluted by the packed examples
        assert log.mlm_loss[0] == pytest.approx(expected.mlm_loss.item(), rel=1e-5)


def test_with_every_pair_labelled_the_pair_loss_is_the_batch_mean_bit_for_bit():
    """The loss before pair-label masking existed (HEAD 19038db: ``cross_entropy(sum) / batch size``), exactly."""
    tokenizer = toy_tokenizer()
    g = torch.Generator().manual_seed(1)
    docs = [[torch.randint(5, VOCAB, (int(n),), generator=g).tolist() for n in torch.randint(2, 9, (6,), generator=g)]
            for _ in range(8)]
    examples = create_nsp_examples(docs, 24, seed=0)
    batch = PretrainingBatcher(examples, tokenizer, seed=0)([(0, i) for i in range(len(examples))])
    assert (batch["nsp_labels"] != -100).all()
    out = tiny_pair_model_for(VOCAB)(**batch)
    before = F.cross_entropy(out.nsp_logits.float(), batch["nsp_labels"], reduction="sum") / len(examples)
    assert torch.equal(out.nsp_loss, before)
    assert torch.equal(out.loss, out.mlm_loss + before)


@pytest.mark.parametrize("whole_sentences", [False, True])
def test_packing_keeps_every_token_in_order(whole_sentences):
    docs = toy_documents(40)
    packed = pack_sequences(docs, max_seq_length=20, sep_id=SEP, whole_sentences=whole_sentences)
    assert all(len(e) <= 20 and not e.tokens_b for e in packed)
    stream = [t for e in packed for t in e.tokens_a if t != SEP]
    assert stream == [t for d in docs for s in d for t in s]
    # documents are separated by [SEP] inside a packed sequence, never at its ends
    assert all(e.tokens_a[-1] != SEP and e.tokens_a[0] != SEP for e in packed)
    one_per_sentence = sum(len(s) + 2 for d in docs for s in d) / (20 * sum(len(d) for d in docs))
    packed_fill = sum(len(e) for e in packed[:-1]) / (20 * (len(packed) - 1))
    if whole_sentences:  # no sentence is split between two sequences (all are shorter than 18 here)
        starts = {s[0] for d in docs for s in d}
        assert all(e.tokens_a[0] in starts for e in packed)
        assert packed_fill > one_per_sentence + 0.15
    else:  # every sequence but the last is full, up to a dropped boundary [SEP]
        assert packed_fill > 0.99


def test_stream_visits_each_example_once_per_epoch_and_is_a_function_of_the_step():
    stream = ExampleStream(num_examples=10, batch_size=4, seed=3)
    items = [item for step in range(5) for item in stream.batch(step)]  # 20 items = 2 epochs
    assert sorted(i for e, i in items if e == 0) == list(range(10))
    assert sorted(i for e, i in items if e == 1) == list(range(10))
    assert [i for e, i in items if e == 0] != [i for e, i in items if e == 1]  # reshuffled
    assert ExampleStream(10, 4, seed=3).batch(3) == stream.batch(3)


def test_batcher_layout_and_dynamic_versus_static_masks():
    tokenizer = toy_tokenizer()
    examples = [PretrainingExample((5, 6, 7), (8, 9), False), PretrainingExample(tuple(range(5, 45)), (), False)]
    batcher = PretrainingBatcher(examples, tokenizer, seed=0)
    batch = batcher([(0, 0), (0, 1)])
    assert batch["input_ids"].shape == (2, 42)
    assert batch["input_ids"][0, :8].tolist()[0] == CLS and batch["input_ids"][0, 4] == SEP
    assert batch["token_type_ids"][0, :8].tolist() == [0, 0, 0, 0, 0, 1, 1, 1]
    assert batch["attention_mask"][0].tolist() == [1] * 8 + [0] * 34
    assert torch.all(batch["input_ids"][0, 8:] == PAD) and torch.all(batch["mlm_labels"][0, 8:] == -100)
    assert batch["nsp_labels"].tolist() == [0, -100]  # the packed example has no pair: its label is ignored
    # A mask depends on (epoch, example) only: not on the batch's other members or their order.
    alone = batcher([(0, 1)])
    assert torch.equal(alone["input_ids"][0], batch["input_ids"][1])
    assert not torch.equal(batcher([(1, 1)])["mlm_labels"], alone["mlm_labels"])  # a new epoch, a new mask
    static = PretrainingBatcher(examples, tokenizer, seed=0, static_masking=True)
    assert torch.equal(static([(1, 1)])["mlm_labels"], static([(0, 1)])["mlm_labels"])


def test_bad_arguments_raise():
    docs = toy_documents(5)
    with pytest.raises(ValueError, match="max_seq_length must be an int >= 5"):
        create_nsp_examples(docs, max_seq_length=4)
    with pytest.raises(ValueError, match="at least 2 documents"):
        create_nsp_examples(docs[:1])
    with pytest.raises(ValueError, match="max_seq_length must be an int >= 5, got 4"):
        create_sop_examples(docs, max_seq_length=4)
    for name in ("swap_probability", "short_seq_prob"):
        with pytest.raises(ValueError, match=f"{name} must be a number in \\[0, 1\\], got 1.5"):
            create_sop_examples(docs, **{name: 1.5})
    with pytest.raises(ValueError, match="documents must hold at least 1 document that is not empty, got 2"):
        create_sop_examples([[], []])
    with pytest.raises(ValueError, match="examples is empty"):
        PretrainingBatcher([], toy_tokenizer())


# --- loaders ------------------------------------------------------------------------------------------


needs_data = pytest.mark.skipif(not os.environ.get("LEPTON_DATA_DIR"), reason="needs $LEPTON_DATA_DIR")


@needs_data
def test_labelled_sentence_loaders_have_the_published_sizes():
    from lepton_lib.data.text import load_mr, load_sst2

    train, dev = load_sst2("train"), load_sst2("dev")
    assert (len(train), len(dev)) == (67_349, 872)
    assert set(dev.labels) == {0, 1} and sum(dev.labels) == 444  # GLUE SST-2 dev: 444 positive, 428 negative
    mr_train, mr_test = load_mr("train"), load_mr("test")
    assert len(mr_train) + len(mr_test) == 10_662 and len(mr_test) == 1066
    assert sum(mr_train.labels) + sum(mr_test.labels) == 5331  # 5,331 positive and 5,331 negative snippets
    assert load_mr("test", seed=1).texts != mr_test.texts and load_mr("test").texts == mr_test.texts
    assert any("é" in t for t in mr_train.texts + mr_test.texts)  # Latin-1 decoded
    with pytest.raises(ValueError, match="GLUE's test labels are hidden"):
        load_sst2("test")


@needs_data
def test_wikitext_documents_are_articles_of_sentences():
    from lepton_lib.data.text import wikitext2_documents

    docs = wikitext2_documents("valid")
    assert 50 < len(docs) < 70  # the validation split holds 60 articles
    first = docs[0]
    assert first[0].startswith("Homarus gammarus")
    assert all(not s.startswith("=") for d in docs for s in d)
    assert "@-@" not in " ".join(first) and "<unk>" not in " ".join(first)


@needs_data
def test_shakespeare_and_docstring_corpora_are_documents_of_sentences():
    from lepton_lib.data.text import load_corpus, stdlib_docstring_documents, tiny_shakespeare_documents

    plays = tiny_shakespeare_documents(lines_per_document=60)
    assert plays[0][0].startswith("First Citizen: Before we proceed")
    assert all(len(d) >= 60 for d in plays[:-1]) and sum(map(len, plays)) > 20_000
    docstrings = stdlib_docstring_documents(max_files=8)  # the first modules of the installed Python
    assert docstrings and all(len(d) >= 2 and all(s.strip() for s in d) for d in docstrings)
    with pytest.raises(ValueError, match="corpus must be one of"):
        load_corpus("bookcorpus")
