"""Meaningless input raises a ValueError that names the argument (issue 16, items 2, 4 and 5).

Each test gives a call a bad value that used to return a meaningless result (a negative epsilon,
an accuracy of 3.5, an exabyte allocation, "offline" for ``LEPTON_OFFLINE=0``) or a raw library
error, and checks the message names the argument.
"""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

pytestmark = pytest.mark.usefixtures("single_thread")


# --- privacy -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("steps", [-4, 0, 2.5, True])
def test_dp_epsilon_refuses_a_step_count_that_is_not_positive(steps) -> None:
    pytest.importorskip("opacus")
    from lepton_lib.scale import dp_epsilon

    with pytest.raises(ValueError, match=r"steps must be a positive int, got"):
        dp_epsilon(1.0, 0.01, steps, 1e-5)


@pytest.mark.parametrize("sigma", [math.nan, math.inf, -1.0])
def test_dp_epsilon_refuses_a_noise_multiplier_that_is_not_finite(sigma: float) -> None:
    pytest.importorskip("opacus")
    from lepton_lib.scale import dp_epsilon

    with pytest.raises(ValueError, match=r"noise_multiplier must be a finite number >= 0, got"):
        dp_epsilon(sigma, 0.01, 10, 1e-5)


def test_dp_epsilon_without_noise_is_still_infinite() -> None:
    pytest.importorskip("opacus")
    from lepton_lib.scale import dp_epsilon

    assert dp_epsilon(0.0, 0.01, 10, 1e-5) == math.inf


def _dp_problem() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    return nn.Linear(3, 2), torch.randn(8, 3), torch.randint(0, 2, (8,))


BAD_DP_SGD = {
    "epochs=-1": (dict(epochs=-1), "epochs must be a positive int"),
    "epochs=0": (dict(epochs=0), "epochs must be a positive int"),
    "epochs=1.5": (dict(epochs=1.5), "epochs must be a positive int"),
    "max_norm=nan": (dict(max_norm=math.nan), "max_norm must be a finite number > 0"),
    "max_norm=inf": (dict(max_norm=math.inf), "max_norm must be a finite number > 0"),
    "max_norm=0": (dict(max_norm=0.0), "max_norm must be a finite number > 0"),
    "noise_multiplier=inf": (dict(noise_multiplier=math.inf), "noise_multiplier must be a finite number >= 0"),
    "noise_multiplier=nan": (dict(noise_multiplier=math.nan), "noise_multiplier must be a finite number >= 0"),
    "lr=nan": (dict(lr=math.nan), "lr must be a finite number"),
}


@pytest.mark.parametrize("bad", list(BAD_DP_SGD), ids=list(BAD_DP_SGD))
def test_dp_sgd_refuses_meaningless_settings_and_leaves_the_model_unchanged(bad: str) -> None:
    from lepton_lib.scale import dp_sgd

    overrides, message = BAD_DP_SGD[bad]
    model, x, y = _dp_problem()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    settings = dict(epochs=1, batch_size=4, lr=0.1, max_norm=1.0, noise_multiplier=1.0) | overrides
    with pytest.raises(ValueError, match=message):
        dp_sgd(model, x, y, **settings)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


# --- accuracies ------------------------------------------------------------------------------------------


def _loader(labels: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    torch.manual_seed(0)
    return [(torch.randn(len(labels), 3), labels)]


def test_evaluate_refuses_labels_that_would_broadcast() -> None:
    from lepton_lib.foundations import evaluate

    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    labels = torch.tensor([[0.0], [1.0], [1.0], [0.0]])  # (B, 1): used to broadcast to (B, B)
    with pytest.raises(ValueError, match=r"labels have shape \(4, 1\), expected \(4,\)"):
        evaluate(model, _loader(labels), nn.BCEWithLogitsLoss())
    model = nn.Linear(3, 3)
    with pytest.raises(ValueError, match=r"labels have shape \(4, 1\), expected \(4,\)"):
        evaluate(model, _loader(labels.long()), nn.CrossEntropyLoss())


def test_evaluate_still_accepts_binary_and_multiclass_labels() -> None:
    from lepton_lib.foundations import evaluate

    torch.manual_seed(0)
    result = evaluate(nn.Linear(3, 1), _loader(torch.tensor([0.0, 1.0, 1.0, 0.0])), nn.BCEWithLogitsLoss())
    assert 0.0 <= result.accuracy <= 1.0
    result = evaluate(nn.Linear(3, 3), _loader(torch.tensor([0, 2, 1, 0])), nn.CrossEntropyLoss())
    assert 0.0 <= result.accuracy <= 1.0


def test_gnn_accuracy_refuses_broadcasting_labels_and_an_empty_mask() -> None:
    from lepton_lib.gnn import accuracy

    logits = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    assert accuracy(logits, torch.tensor([0, 1, 0])) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match=r"labels have shape \(3, 1\), expected \(3,\)"):
        accuracy(logits, torch.tensor([[0], [1], [0]]))
    with pytest.raises(ValueError, match=r"no nodes to score: logits has shape \(0, 2\)"):
        accuracy(logits[:0], torch.tensor([], dtype=torch.long))


# --- environment and metrics -------------------------------------------------------------------------------


@pytest.mark.parametrize("value, offline", [("0", False), ("false", False), ("No", False), ("", False),
                                            ("off", False), ("1", True), ("true", True), ("YES", True),
                                            ("on", True)])
def test_lepton_offline_is_parsed_as_a_boolean(monkeypatch, value: str, offline: bool) -> None:
    from lepton_lib.data.download import offline_from_env

    monkeypatch.setenv("LEPTON_OFFLINE", value)
    assert offline_from_env() is offline


def test_lepton_offline_unset_means_online_and_nonsense_raises(monkeypatch) -> None:
    from lepton_lib.data.download import offline_from_env

    monkeypatch.delenv("LEPTON_OFFLINE", raising=False)
    assert offline_from_env() is False
    monkeypatch.setenv("LEPTON_OFFLINE", "maybe")
    with pytest.raises(ValueError, match=r"LEPTON_OFFLINE must be one of .*got 'maybe'"):
        offline_from_env()


def test_fetch_downloads_when_lepton_offline_is_0(monkeypatch, tmp_path) -> None:
    from lepton_lib.data import download

    calls = []
    monkeypatch.setenv("LEPTON_OFFLINE", "0")
    monkeypatch.delenv("LEPTON_DATA_DIR", raising=False)
    monkeypatch.setattr(download.pooch, "retrieve", lambda *a, **k: calls.append(a) or (_ for _ in ()).throw(
        OSError("no network in tests")))
    from lepton_lib.data.registry import RemoteFile

    remote = RemoteFile("x/file.bin", "https://example.invalid/file.bin", "0" * 64)
    with pytest.raises(Exception):
        download.fetch(remote, cache=tmp_path)
    assert calls, "LEPTON_OFFLINE=0 must allow the download step"


def test_confusion_matrix_refuses_a_label_that_would_need_a_huge_matrix() -> None:
    from lepton_lib.foundations import confusion_matrix

    with pytest.raises(ValueError, match=r"y_true contains the label 1000000000"):
        confusion_matrix([0, 10**9], [0, 0])
    with pytest.raises(ValueError, match=r"num_classes=1000000000 would need"):
        confusion_matrix([0, 1], [0, 0], num_classes=10**9)
    assert confusion_matrix([0, 2], [0, 0]).tolist() == [[1, 0, 0], [0, 0, 0], [1, 0, 0]]


# --- graph and data inputs (item 4) ------------------------------------------------------------------------


def test_sample_subgraph_refuses_duplicate_or_out_of_range_seeds() -> None:
    from lepton_lib.gnn import sample_subgraph

    edges = torch.tensor([[0, 1, 2, 3], [1, 2, 3, 0]])
    sub = sample_subgraph(edges, torch.tensor([1, 3]), [2], num_nodes=4, generator=torch.Generator().manual_seed(0))
    assert sub.num_seeds == 2 and sub.node_ids[:2].tolist() == [1, 3]
    with pytest.raises(ValueError, match=r"seeds must not repeat a node, got 1 twice or more"):
        sample_subgraph(edges, torch.tensor([1, 3, 1]), [2], num_nodes=4)
    with pytest.raises(ValueError, match=r"seeds must lie in \[0, 3\], got ids in \[-1, 3\]"):
        sample_subgraph(edges, torch.tensor([-1, 3]), [2], num_nodes=4)


@pytest.mark.parametrize("function", ["coalesce", "to_undirected"])
@pytest.mark.parametrize("bad", [[[0, 5], [1, 0]], [[0, -1], [1, 0]]], ids=["too large", "negative"])
def test_coalesce_and_to_undirected_refuse_ids_outside_the_graph(function: str, bad) -> None:
    import lepton_lib.data.edges as graph_utils

    edge_index = torch.tensor(bad)
    before = edge_index.clone()
    with pytest.raises(ValueError, match=r"edge_index contains node id -?\d, but the graph has 4 nodes"):
        getattr(graph_utils, function)(edge_index, 4)
    assert torch.equal(edge_index, before)
    assert graph_utils.coalesce(torch.tensor([[1, 0, 1], [0, 1, 0]]), 4).tolist() == [[1, 0], [0, 1]]


def test_sample_neighbors_needs_num_nodes_for_an_empty_edge_index() -> None:
    from lepton_lib.gnn import sample_neighbors

    empty = torch.zeros(2, 0, dtype=torch.long)
    with pytest.raises(ValueError, match=r"num_nodes must be given when edge_index has no edges"):
        sample_neighbors(empty, torch.tensor([0]), 2)
    assert sample_neighbors(empty, torch.tensor([0]), 2, num_nodes=3).shape == (2, 0)


@pytest.mark.parametrize("seed", range(20))
def test_create_nsp_examples_skips_empty_documents_in_every_seed(seed: int) -> None:
    from lepton_lib.bert import create_nsp_examples

    documents = [[[5, 6, 7], [8, 9]], [], [[10, 11], [12, 13, 14]], [[15, 16, 17, 18]]]
    examples = create_nsp_examples(documents, max_seq_length=12, seed=seed)
    assert examples and all(e.tokens_a and e.tokens_b for e in examples)


def test_create_nsp_examples_without_an_unused_document_pair_raises() -> None:
    from lepton_lib.bert import create_nsp_examples

    with pytest.raises(ValueError, match=r"at least 2 documents that are not empty .*got 1 non-empty of 3"):
        create_nsp_examples([[[5, 6, 7]], [], []], max_seq_length=12)


def test_create_nsp_examples_is_unchanged_without_empty_documents() -> None:
    from lepton_lib.bert import create_nsp_examples

    documents = [[[5, 6, 7], [8, 9]], [[10, 11], [12, 13, 14]], [[15, 16, 17, 18]]]
    pairs = [(e.tokens_a, e.tokens_b, e.is_random_next) for e in create_nsp_examples(documents, 12, seed=7)]
    assert pairs == [((5, 6, 7), (15, 16, 17, 18), True), ((8, 9), (15, 16, 17, 18), True),  # stored before the fix
                     ((10, 11), (5, 6, 7, 8, 9), True), ((12,), (13, 14), False), ((15, 16, 17, 18), (5, 6, 7), True)]


@pytest.mark.parametrize("ids, found", [([[4, 9, 30]], 30), ([[4, -2, 7]], -2)])
def test_mask_tokens_checks_ids_against_the_vocabulary(ids, found: int) -> None:
    from lepton_lib.bert import mask_tokens

    input_ids = torch.tensor(ids)
    before = input_ids.clone()
    with pytest.raises(ValueError, match=rf"input_ids contains the id {found}, outside the vocabulary \[0, 29\]"):
        mask_tokens(input_ids, [0, 1, 2, 3], 3, 30, torch.Generator().manual_seed(0))
    assert torch.equal(input_ids, before)
    with pytest.raises(ValueError, match=r"special_ids must lie in \[0, 9\]"):
        mask_tokens(torch.tensor([[4, 5]]), [0, 1, 2, 30], 2, 10, torch.Generator().manual_seed(0))


# --- clear errors instead of raw library ones (item 5) -----------------------------------------------------


def _tiny_bert():
    from lepton_lib.bert import BertConfig, BertForPreTraining

    torch.manual_seed(0)
    return BertForPreTraining(BertConfig(vocab_size=20, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                                         intermediate_size=16, max_position_embeddings=16))


BAD_PRETRAINING = {
    "mlm_labels out of range": (dict(mlm_labels=torch.tensor([[-100, 25, -100]])),
                                r"mlm_labels must hold -100 or ids in \[0, 19\], got 25"),
    "mlm_labels float": (dict(mlm_labels=torch.tensor([[-100.0, 5.0, -100.0]])),
                         r"mlm_labels must be an int64 tensor, got torch.float32"),
    "nsp_labels out of range": (dict(nsp_labels=torch.tensor([2])), r"nsp_labels must hold 0 or 1, got 2"),
    "nsp_labels float": (dict(nsp_labels=torch.tensor([1.0])),
                         r"nsp_labels must be an int64 tensor, got torch.float32"),
    "token_type_ids float": (dict(token_type_ids=torch.tensor([[0.0, 0.0, 1.0]])),
                             r"token_type_ids must be an int64 tensor, got torch.float32"),
}


@pytest.mark.parametrize("bad", list(BAD_PRETRAINING), ids=list(BAD_PRETRAINING))
def test_bert_pretraining_refuses_bad_labels_and_segment_ids_by_name(bad: str) -> None:
    overrides, message = BAD_PRETRAINING[bad]
    inputs = dict(input_ids=torch.tensor([[2, 7, 3]]), mlm_labels=torch.tensor([[-100, 7, -100]]),
                  nsp_labels=torch.tensor([1])) | overrides
    with pytest.raises(ValueError, match=message):
        _tiny_bert()(**inputs)


def test_load_pretrained_names_a_truncated_weights_file_and_a_corrupt_config(tmp_path) -> None:
    from lepton_lib.bert import load_pretrained, save_pretrained

    save_pretrained(_tiny_bert(), tmp_path)
    weights = tmp_path / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"model.safetensors cannot be read as safetensors \(truncated or corrupted"):
        load_pretrained(tmp_path)
    weights.write_bytes(data)
    config = tmp_path / "config.json"
    config.write_text(config.read_text()[:-20])
    with pytest.raises(ValueError, match=r"config.json is not valid JSON"):
        load_pretrained(tmp_path)


def test_average_states_refuses_states_with_other_keys_or_shapes() -> None:
    from lepton_lib.scale import average_states

    a = {"w": torch.ones(2), "b": torch.zeros(1)}
    with pytest.raises(ValueError, match=r"states\[1\] has other keys than states\[0\]: missing \['b'\]"):
        average_states([a, {"w": torch.ones(2)}], [1.0, 1.0])
    with pytest.raises(ValueError, match=r"states\[1\]\['w'\] has shape \(3,\), states\[0\]\['w'\] has \(2,\)"):
        average_states([a, {"w": torch.ones(3), "b": torch.zeros(1)}], [1.0, 1.0])
    assert torch.equal(average_states([a, a], [1.0, 3.0])["w"], torch.ones(2))


@pytest.mark.parametrize("args", [(8.0, 2), (8, 2.0), ("8", 2)])
def test_attention_constructors_refuse_non_integer_sizes(args) -> None:
    from lepton_lib.attention import MultiHeadAttention
    from lepton_lib.attention import TransformerEncoderLayer

    with pytest.raises(ValueError, match=r"(embed_dim|num_heads) must be a positive int, got"):
        MultiHeadAttention(*args)
    with pytest.raises(ValueError, match=r"(d_model|nhead) must be a positive int, got"):
        TransformerEncoderLayer(*args, dim_feedforward=16)
    with pytest.raises(ValueError, match=r"dim_feedforward must be a positive int, got 16.0"):
        TransformerEncoderLayer(8, 2, dim_feedforward=16.0)


@pytest.mark.parametrize("field, value, message", [
    ("lr", -1.0, r"lr must be a finite number > 0, got -1.0"),
    ("lr", math.nan, r"lr must be a finite number > 0, got nan"),
    ("eps", 0.0, r"eps must be a finite number > 0"),
    ("weight_decay", -0.1, r"weight_decay must be a finite number >= 0"),
    ("max_grad_norm", -1.0, r"max_grad_norm must be None or a finite number > 0"),
    ("betas", (0.9, 1.5), r"betas must be two numbers in \[0, 1\), got \(0.9, 1.5\)"),
    ("checkpoint_every", -1, r"checkpoint_every must be None or a positive int, got -1"),
    ("checkpoint_every", 0, r"checkpoint_every must be None or a positive int, got 0"),
])
def test_pretrain_config_refuses_meaningless_hyper_parameters(field: str, value, message: str) -> None:
    from lepton_lib.bert import PretrainConfig

    extra = {"checkpoint_dir": "unused"} if field == "checkpoint_every" else {}
    with pytest.raises(ValueError, match=message):
        PretrainConfig(**{field: value}, **extra)


def test_decode_accepts_numpy_integers() -> None:
    import numpy as np

    from lepton_lib.bert import SPECIAL_TOKENS, WordPieceTokenizer

    tokenizer = WordPieceTokenizer(list(SPECIAL_TOKENS) + ["hello", "world"])
    ids = [len(SPECIAL_TOKENS), len(SPECIAL_TOKENS) + 1]
    assert tokenizer.decode(np.array(ids)) == tokenizer.decode(ids) == "hello world"
    assert tokenizer.decode([np.int64(i) for i in ids]) == "hello world"
    with pytest.raises(ValueError, match=r"ids must be ints in"):
        tokenizer.decode([1.5])


def test_a_decoder_tgt_mask_with_the_default_tgt_is_causal_names_both_arguments() -> None:
    from lepton_lib.attention import TransformerDecoderLayer

    torch.manual_seed(0)
    layer = TransformerDecoderLayer(8, 2, 16).eval()
    x = torch.randn(1, 3, 8)
    mask = torch.ones(3, 3, dtype=torch.bool).triu(1)  # True = may NOT attend, as nn.TransformerDecoderLayer
    with pytest.raises(ValueError, match=r"tgt_mask \(shape \(3, 3\)\) was given with tgt_is_causal=True .*"
                                         r"pass tgt_is_causal=False"):
        layer(x, x, tgt_mask=mask)
    assert torch.allclose(layer(x, x, tgt_mask=mask, tgt_is_causal=False), layer(x, x))


@pytest.mark.parametrize("size", [0, -1])
def test_load_task_refuses_an_empty_training_set_instead_of_using_all(size):
    from lepton_lib.bert import load_task

    with pytest.raises(ValueError, match=r"train_size must be an int in \[1, 67349 \(sst2's training sentences\)\], got"):
        load_task("sst2", train_size=size)
    with pytest.raises(ValueError, match=r"dev_size must be an int in \[1, 872 \(sst2's evaluation sentences\)\], got 0"):
        load_task("sst2", train_size=10, dev_size=0)
    with pytest.raises(ValueError, match=r"train_size must be an int in \[1, 67349 .*got 70000"):
        load_task("sst2", train_size=70_000)


@pytest.mark.parametrize(("module", "argv", "message"), [
    ("lepton_lib.bert.pretraining_recipe", ["--checkpoint-every", "0", "--out", "x"],
     "argument --checkpoint-every: expected an int >= 1, got '0'"),
    ("lepton_lib.bert.pretraining_recipe", ["--lr", "nan", "--out", "x"], "argument --lr: expected a finite number > 0"),
    ("lepton_lib.bert.fine_tuning_recipe", ["--pretrained", "ours", "--out", "x"],
     "argument --pretrained: expected NAME=DIR (e.g. ours=runs/pretrain/final), got 'ours'"),
    ("lepton_lib.bert.fine_tuning_recipe", ["--epochs", "0", "--minilm", "--out", "x"],
     "argument --epochs: expected an int >= 1, got '0'"),
    ("lepton_lib.scale.compression_recipe", ["--transfer-size", "-5", "--out", "x"],
     "argument --transfer-size: expected an int >= 1, got '-5'"),
    ("lepton_lib.scale.ddp_demo", ["--global-batch", "2.5", "--out", "x"],
     "argument --global-batch: expected an int >= 1, got '2.5'"),
])
def test_command_lines_name_the_bad_flag_before_any_work(module, argv, message, capsys, tmp_path, monkeypatch):
    import importlib

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        importlib.import_module(module).main(argv)
    assert exit_info.value.code == 2  # argparse's usage error
    assert message in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # refused before writing anything
