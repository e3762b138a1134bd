"""Contextual word vectors (book/bert/idea): positions, the causal variant, similarities, the figure."""
from __future__ import annotations

import matplotlib
import pytest
import torch

from lepton_lib.bert import BertConfig, BertModel, SPECIAL_TOKENS, WordPieceTokenizer
from lepton_lib.bert.word_senses import sense_similarity, senses_figure, word_vector

WORDS = ["the", "bank", "of", "river", "was", "muddy", "raised", "rates", "bat", "flew", "cave", "."]
RIVER, MONEY = "the bank of the river was muddy.", "the bank raised the rates."


@pytest.fixture(scope="module")
def tokenizer() -> WordPieceTokenizer:
    return WordPieceTokenizer(list(SPECIAL_TOKENS) + WORDS)


@pytest.fixture(scope="module")
def model(tokenizer) -> BertModel:
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=32)
    return BertModel(config).eval()


def test_word_vector_is_the_last_layer_at_the_word(model, tokenizer):
    encoding = tokenizer.encode(RIVER)
    assert encoding.tokens[:3] == ["[CLS]", "the", "bank"]
    with torch.no_grad():
        hidden = model(torch.tensor([encoding.ids])).last_hidden_state[0]  # (S, H)
    torch.testing.assert_close(word_vector(model, tokenizer, RIVER), hidden[2], rtol=0, atol=0)
    torch.testing.assert_close(word_vector(model, tokenizer, RIVER, word="river"), hidden[5], rtol=0, atol=0)


def test_causal_vector_sees_only_the_left_context(model, tokenizer):
    # bidirectional: the words after "bank" change its vector; causal: "[CLS] the" is all it sees
    assert not torch.allclose(word_vector(model, tokenizer, RIVER), word_vector(model, tokenizer, MONEY), atol=1e-3)
    torch.testing.assert_close(word_vector(model, tokenizer, RIVER, causal=True),
                               word_vector(model, tokenizer, MONEY, causal=True), rtol=0, atol=1e-6)
    # a token to the left does change it
    assert not torch.allclose(word_vector(model, tokenizer, MONEY, causal=True),
                              word_vector(model, tokenizer, "of bank raised the rates.", causal=True), atol=1e-3)
    # and it is what every layer gives under an explicit mask that blocks the keys to the right
    ids = torch.tensor([tokenizer.encode(RIVER).ids])  # (1, S)
    blocked = torch.ones(ids.shape[1], ids.shape[1], dtype=torch.bool).triu(1)  # True = may not attend
    with torch.no_grad():
        x = model.embeddings(ids, torch.zeros_like(ids))
        for layer in model.encoder.layers:
            x = layer(x, src_mask=blocked)
    torch.testing.assert_close(word_vector(model, tokenizer, RIVER, word="river", causal=True), x[0, 5])


def test_sense_similarity_is_a_cosine_matrix(model, tokenizer):
    texts = [RIVER, MONEY, "the bank was muddy."]
    sim = sense_similarity(model, tokenizer, "bank", texts)
    assert sim.shape == (3, 3)
    torch.testing.assert_close(sim, sim.T)
    torch.testing.assert_close(sim.diagonal(), torch.ones(3))
    a, b = word_vector(model, tokenizer, RIVER), word_vector(model, tokenizer, MONEY)
    torch.testing.assert_close(sim[0, 1], a @ b / (a.norm() * b.norm()))


def test_senses_figure(model, tokenizer):
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    texts = [RIVER, MONEY, "the bank was muddy.", "the bank raised rates."]
    fig = senses_figure(model, tokenizer, "bank", texts)
    sim = sense_similarity(model, tokenizer, "bank", texts)
    same = (sim[0, 2] + sim[1, 3]) / 2
    other = (sim[0, 1] + sim[0, 3] + sim[2, 1] + sim[2, 3]) / 4
    assert fig.axes[0].get_title() == f"'bank': same sense {same:.2f}, different senses {other:.2f}"
    plt.close(fig)
    message = senses_figure(model, tokenizer, "bat", texts)  # a token of none of the sentences
    assert isinstance(message, str) and message.startswith("'bat' is not a single token in every sentence")


def test_bad_input_is_refused(model, tokenizer):
    with pytest.raises(ValueError, match="word must be a single token of text, got word='bat'"):
        word_vector(model, tokenizer, RIVER, word="bat")
    with pytest.raises(ValueError, match="model must be a lepton_lib.bert.BertModel"):
        word_vector(torch.nn.Linear(2, 2), tokenizer, RIVER)
    with pytest.raises(ValueError, match="texts must be a list of at least 2 sentences"):
        sense_similarity(model, tokenizer, "bank", RIVER)
    with pytest.raises(ValueError, match="texts must be 4 sentences"):
        senses_figure(model, tokenizer, "bank", [RIVER, MONEY])
