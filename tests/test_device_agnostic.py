"""The library's forward passes run on any device, and never wait for it (issue 16, item 6).

Three kinds of test, for a machine with or without a GPU:

* ``meta``: model and inputs on torch's ``meta`` device, which has shapes but no data. A forward
  pass that completes there allocated nothing on the CPU by accident (mixing a meta and a CPU tensor
  raises) and synced nothing with the device (``.item()``, ``bool(t)``, ``int(t)`` raise on meta).
* the default-device trap: inputs on the CPU, torch's default device set to ``meta``. An op whose
  output size depends on the data (``nonzero``, boolean indexing, ``unique``, ``repeat_interleave``)
  cannot run on meta, so the neighbour sampler, DP-SGD's Poisson batches and GCN/GAT's self-loop
  removal are tested this way: any tensor created without ``device=`` lands on meta, and then
  either raises when it meets a CPU tensor or leaks into the output, whose device we check. The
  results must also equal, bit for bit, those of the same call outside the trap.
* ``gpu`` (skipped without CUDA): the same passes on ``cuda``, compared with the CPU.
"""
from __future__ import annotations

import contextlib
import copy

import pytest
import torch
import torch.nn.functional as F

from lepton_lib.attention import (
    LearnedPositionalEmbedding,
    MultiHeadAttention,
    TinyTransformer,
    TinyViT,
    TransformerEncoderLayer,
    apply_rotary_embedding,
    make_sequence_task,
    scaled_dot_product_attention,
    sinusoidal_positional_encoding,
)
from lepton_lib.bert import BertConfig, BertForPreTraining, BertForSequenceClassification, BertModel
from lepton_lib.core.checks import should_check_values
from lepton_lib.data.graphs import GraphData
from lepton_lib.gnn import (
    GAT,
    GCN,
    SAGE,
    GATConv,
    GCNConv,
    Interactions,
    LightGCN,
    MatrixFactorization,
    SAGEConv,
    computation_graph,
    dense_laplacian,
    gcn_norm,
    ndcg_at_k,
    recall_at_k,
    sample_neighbors,
    sample_subgraph,
    scatter_softmax,
    split_interactions,
    to_dense_adjacency,
    top_k_items,
    train_bpr,
    train_node_classifier,
    train_sage_minibatch,
)
from lepton_lib.scale import (
    clip_per_example,
    dirichlet_label_split,
    dp_sgd,
    greedy_decode,
    local_sgd,
    noisy_average,
    per_example_gradients,
)

META = torch.device("meta")


@pytest.fixture(autouse=True)
def _values_unchecked_off_cpu(monkeypatch):
    monkeypatch.delenv("LEPTON_CHECK_VALUES", raising=False)


@contextlib.contextmanager
def default_device_trap():
    """Make ``meta`` torch's default device: a factory call without ``device=`` then builds a meta tensor."""
    with torch.device(META):
        yield


def tensors_of(value) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for item in value for t in tensors_of(item)]
    if isinstance(value, dict):
        return [t for item in value.values() for t in tensors_of(item)]
    if hasattr(value, "__dataclass_fields__"):
        return [t for name in value.__dataclass_fields__ for t in tensors_of(getattr(value, name))]
    return []


def assert_on(value, device: torch.device | str) -> None:
    found = tensors_of(value)
    assert found, "nothing to check"
    for t in found:
        assert t.device == torch.device(device), f"a result is on {t.device}, expected {device}"


def assert_same(a, b) -> None:
    """Bit for bit: the trap must not change a single CPU number."""
    for x, y in zip(tensors_of(a), tensors_of(b), strict=True):
        assert torch.equal(x, y)


def in_trap(fn, *args, **kwargs):
    """``fn`` on CPU inputs inside the trap; its results are on the CPU and equal those outside it."""
    torch.manual_seed(0)
    expected = fn(*args, **kwargs)
    torch.manual_seed(0)
    with default_device_trap():
        got = fn(*args, **kwargs)
    assert_on(got, "cpu")
    assert_same(got, expected)
    return got


# --------------------------------------------------------------------------- #
# The helper                                                                   #
# --------------------------------------------------------------------------- #
def test_values_are_checked_on_the_cpu_and_only_on_request_elsewhere(monkeypatch):
    assert should_check_values(torch.zeros(2))
    assert not should_check_values(torch.zeros(2, device=META))
    monkeypatch.setenv("LEPTON_CHECK_VALUES", "1")
    assert should_check_values(torch.zeros(2, device=META))


def test_an_opted_in_value_check_reads_the_device(monkeypatch):
    """With LEPTON_CHECK_VALUES=1 the checks run off the CPU too: on meta they must try to read values."""
    monkeypatch.setenv("LEPTON_CHECK_VALUES", "1")
    model = TinyTransformer(vocab_size=7, max_length=8).to(META)
    with pytest.raises(RuntimeError, match="meta"):
        model(torch.zeros(2, 5, dtype=torch.long, device=META))


# --------------------------------------------------------------------------- #
# Attention                                                                    #
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("implementation", ["auto", "fast", "reference"])
def test_scaled_dot_product_attention_on_meta(implementation):
    q = torch.randn(2, 3, 5, 8, device=META)
    mask = torch.ones(5, 5, dtype=torch.bool, device=META)
    out = scaled_dot_product_attention(q, q, q, attn_mask=mask, implementation=implementation)
    assert out.shape == (2, 3, 5, 8) and out.device == META
    causal = scaled_dot_product_attention(q, q, q, is_causal=True, implementation=implementation)
    assert causal.device == META


def test_fast_attention_with_a_fully_masked_row_is_unchanged():
    """The empty-row guard now always runs (no sync): rows with keys are untouched, empty rows are 0."""
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 4, 8), torch.randn(2, 6, 8), torch.randn(2, 6, 8)
    mask = torch.rand(2, 4, 6) > 0.3
    mask[:, 0] = True
    full = scaled_dot_product_attention(q, k, v, attn_mask=mask, implementation="fast")
    assert torch.equal(full, F.scaled_dot_product_attention(q, k, v, attn_mask=mask))
    mask[1, 2] = False
    out = scaled_dot_product_attention(q, k, v, attn_mask=mask, implementation="fast")
    assert torch.equal(out[1, 2], torch.zeros(8))
    torch.testing.assert_close(out, scaled_dot_product_attention(q, k, v, attn_mask=mask, implementation="reference"))


@pytest.mark.parametrize("is_causal", [False, True])
@pytest.mark.parametrize("padded", [False, True])
def test_multi_head_attention_on_meta(is_causal, padded):
    mha = MultiHeadAttention(16, 4).to(META)
    x = torch.randn(2, 5, 16, device=META, requires_grad=True)
    padding = torch.zeros(2, 5, dtype=torch.bool, device=META) if padded else None
    out, weights = mha(x, x, x, key_padding_mask=padding, is_causal=is_causal, need_weights=True)
    assert out.shape == (2, 5, 16) and weights.shape == (2, 4, 5, 5)
    out.sum().backward()
    assert x.grad.device == META


@pytest.mark.parametrize("norm_first", [False, True])
def test_transformer_encoder_layer_on_meta(norm_first):
    layer = TransformerEncoderLayer(16, 4, 32, dropout=0.1, norm_first=norm_first, batch_first=True).to(META)
    x = torch.randn(2, 5, 16, device=META)
    padding = torch.zeros(2, 5, dtype=torch.bool, device=META)
    assert layer(x, src_key_padding_mask=padding).device == META
    assert layer(x, is_causal=True).device == META


def test_positional_encodings_on_meta():
    assert sinusoidal_positional_encoding(6, 8, device=META).device == META
    embedding = LearnedPositionalEmbedding(10, 8).to(META)
    assert embedding(torch.arange(6, device=META)).shape == (6, 8)
    x = torch.randn(2, 6, 8, device=META)
    assert apply_rotary_embedding(x).device == META
    assert apply_rotary_embedding(x, positions=torch.arange(3, 9, device=META)).device == META


def test_tiny_models_on_meta():
    model = TinyTransformer(vocab_size=7, max_length=12, d_model=16, num_heads=2).to(META)
    tokens = torch.zeros(2, 5, dtype=torch.long, device=META)
    logits = model(tokens)
    assert logits.shape == (2, 5, 7)
    logits.sum().backward()
    assert model.attention_maps(tokens).shape == (2, 2, 2, 5, 5)
    vit = TinyViT(image_size=8, patch_size=4, num_classes=3, d_model=16, num_heads=2).to(META)
    assert vit(torch.randn(2, 1, 8, 8, device=META)).shape == (2, 3)


@pytest.mark.parametrize("use_cache", [False, True])
def test_greedy_decoding_on_meta(use_cache):
    model = TinyTransformer(vocab_size=7, max_length=12, d_model=16, num_heads=2).to(META)
    prompt = torch.zeros(2, 3, dtype=torch.long, device=META)
    assert greedy_decode(model, prompt, 4, use_cache=use_cache).shape == (2, 4)


def test_sequence_task_draws_with_the_generator_wherever_the_default_device_is():
    in_trap(lambda: make_sequence_task("sort", 4, 5, 6, generator=torch.Generator().manual_seed(0)))


# --------------------------------------------------------------------------- #
# BERT                                                                         #
# --------------------------------------------------------------------------- #
def _bert_inputs(device):
    ids = torch.zeros(2, 6, dtype=torch.long, device=device)
    mask = torch.ones(2, 6, dtype=torch.long, device=device)
    types = torch.zeros(2, 6, dtype=torch.long, device=device)
    return ids, mask, types


def test_bert_forward_passes_on_meta():
    config = BertConfig.preset("tiny", vocab_size=50, max_position_embeddings=16)
    ids, mask, types = _bert_inputs(META)
    out = BertModel(config).to(META)(ids, mask, types, output_attentions=True)
    assert out.last_hidden_state.shape == (2, 6, 128) and out.pooler_output.device == META
    assert BertForSequenceClassification(config).to(META)(ids, mask, types).shape == (2, 2)
    pretraining = BertForPreTraining(config, predict_masked_only=False).to(META)
    mlm_labels = torch.full((2, 6), -100, dtype=torch.long, device=META)
    out = pretraining(ids, mask, types, mlm_labels=mlm_labels, nsp_labels=torch.zeros(2, dtype=torch.long, device=META))
    assert out.loss.device == META and out.masked_count.device == META
    out.loss.backward()


def test_bert_with_masked_only_predictions_follows_its_inputs():
    """``predict_masked_only`` gathers the masked rows (a data-dependent size): tested in the trap."""
    torch.manual_seed(0)
    model = BertForPreTraining(BertConfig.preset("tiny", vocab_size=50, max_position_embeddings=16)).eval()
    ids, mask, types = _bert_inputs("cpu")
    mask[1, 4:] = 0
    labels = torch.full((2, 6), -100, dtype=torch.long)
    labels[:, 2] = 7
    out = in_trap(model, ids, mask, types, mlm_labels=labels, nsp_labels=torch.tensor([0, 1]))
    assert out.num_masked == 2


# --------------------------------------------------------------------------- #
# Graphs                                                                       #
# --------------------------------------------------------------------------- #
def _graph(device="cpu"):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(6, 5, generator=generator)
    edge_index = torch.tensor([[0, 1, 1, 2, 3, 4, 5, 0, 2], [1, 0, 2, 1, 4, 3, 0, 5, 2]])
    return x.to(device), edge_index.to(device)


def test_sage_and_graph_operations_on_meta():
    x, edge_index = _graph(META)
    x.requires_grad_(True)
    out = SAGEConv(5, 3).to(META)(x, edge_index)
    assert out.shape == (6, 3)
    SAGE(5, 4, 3).to(META)(x, edge_index).sum().backward()
    assert x.grad.device == META
    loops, weight = gcn_norm(edge_index, 6, add_loops=False)
    assert loops.device == META and weight.device == META
    assert scatter_softmax(torch.randn(9, 2, device=META), edge_index[1], 6).device == META
    assert to_dense_adjacency(edge_index, 6).device == META
    assert dense_laplacian(edge_index, 6, normalized=True).device == META


def test_graph_layers_refuse_an_edge_index_on_another_device():
    x, edge_index = _graph()
    with pytest.raises(ValueError, match="edge_index is on meta, expected x's device cpu"):
        SAGEConv(5, 3)(x, edge_index.to(META))


@pytest.mark.parametrize("make", [lambda: GCNConv(5, 3), lambda: GATConv(5, 3, heads=2), lambda: SAGEConv(5, 3),
                                  lambda: GCN(5, 4, 3), lambda: GAT(5, 2, 3, heads=2), lambda: SAGE(5, 4, 3)])
def test_graph_layers_and_models_follow_their_inputs(make):
    """GCN and GAT drop existing self-loops by boolean indexing (a data-dependent size): the trap."""
    torch.manual_seed(0)
    in_trap(make().eval(), *_graph())


def test_dense_matrices_follow_their_inputs():
    _, edge_index = _graph()
    in_trap(to_dense_adjacency, edge_index, 6)
    in_trap(dense_laplacian, edge_index, 6, normalized=True)


def test_the_neighbour_sampler_follows_its_inputs():
    _, edge_index = _graph()
    nodes, seeds = torch.tensor([0, 2, 5]), torch.tensor([2, 4])
    in_trap(lambda: sample_neighbors(edge_index, nodes, 1, generator=torch.Generator().manual_seed(3)))
    in_trap(sample_neighbors, edge_index, nodes, 1)  # the global generator
    in_trap(lambda: sample_subgraph(edge_index, seeds, [2, 1], 6, generator=torch.Generator().manual_seed(3)))


def _graph_data() -> GraphData:
    x, edge_index = _graph()
    masks = [torch.tensor([i % 3 == k for i in range(6)]) for k in range(3)]
    return GraphData("toy", x, edge_index, torch.tensor([0, 1, 2, 0, 1, 2]), *masks)


def test_computation_graphs_and_minibatch_training_follow_their_inputs():
    data = _graph_data()
    in_trap(computation_graph, data, data.train_mask, num_hops=2)

    torch.manual_seed(0)
    initial = SAGE(5, 4, 3)  # built outside the trap, where its parameters land on the CPU

    def train():
        model = copy.deepcopy(initial)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        losses = train_sage_minibatch(model, data, optimizer, 2, [2, 2], 1, torch.Generator().manual_seed(0))
        return torch.tensor(losses, device="cpu"), *model.parameters()

    in_trap(train)


# --------------------------------------------------------------------------- #
# Recommendation                                                               #
# --------------------------------------------------------------------------- #
def _interactions(device="cpu") -> Interactions:
    users = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2, 2], device=device)
    items = torch.tensor([0, 1, 2, 1, 3, 4, 0, 2, 3, 4], device=device)
    return Interactions(users, items, 3, 5)


def test_recommendation_models_on_meta():
    mf = MatrixFactorization(3, 5, dim=4).to(META)
    scores = mf.scores(torch.tensor([0, 2], device=META))
    assert scores.shape == (2, 5)
    top = top_k_items(scores, 2, exclude=torch.zeros(2, 5, dtype=torch.bool, device=META))
    assert top.shape == (2, 2) and top.device == META


def test_light_gcn_follows_its_inputs():
    """torch has no sparse matrix product on meta (``aten::addmm`` for SparseMeta): the trap instead."""
    torch.manual_seed(0)
    model = LightGCN(_interactions(), dim=4, num_layers=2)
    in_trap(model.embeddings)
    in_trap(model.scores, torch.tensor([0, 2]))


def test_recommendation_pipeline_follows_its_inputs():
    data = _interactions()
    train, test = in_trap(split_interactions, data, 0.3, seed=1)
    in_trap(Interactions.to_mask, train)

    torch.manual_seed(0)
    initial = LightGCN(train, dim=4, num_layers=1)

    def fit():
        model = copy.deepcopy(initial)
        losses = train_bpr(model, train, epochs=2, batch_size=4, seed=0)
        return torch.tensor(losses, device="cpu"), *model.parameters()

    in_trap(fit)
    top = torch.tensor([[0, 1], [2, 3], [4, 0]])
    relevant = test.to_mask()
    in_trap(lambda: torch.tensor([recall_at_k(top, relevant), ndcg_at_k(top, relevant)], device="cpu"))


# --------------------------------------------------------------------------- #
# Privacy                                                                      #
# --------------------------------------------------------------------------- #
def _classifier(device="cpu"):
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)).to(device)


def test_dp_sgd_step_pieces_on_meta():
    model = _classifier(META)
    x, y = torch.randn(5, 4, device=META), torch.zeros(5, dtype=torch.long, device=META)
    grads = per_example_gradients(model, x, y)
    clipped, norms = clip_per_example(grads, 1.0)
    update = noisy_average(clipped, 1.0, 1.1, 5.0)
    assert norms.device == META and all(g.device == META for g in update.values())


def test_noise_comes_from_the_generator_and_lands_on_the_gradients_device():
    grads = {"w": torch.zeros(3, 2, 2)}
    update = in_trap(lambda: noisy_average(grads, 1.0, 1.0, 3.0, generator=torch.Generator().manual_seed(0)))
    assert update["w"].abs().sum() > 0


def test_dp_sgd_and_federated_training_follow_their_inputs():
    generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(12, 4, generator=generator), torch.randint(0, 3, (12,), generator=generator)

    initial = _classifier()

    def private():
        model, steps, _ = dp_sgd(copy.deepcopy(initial), x, y, epochs=2, batch_size=3, lr=0.1, max_norm=1.0,
                                 noise_multiplier=1.0)
        return torch.tensor(steps, device="cpu"), *model.parameters()

    def local():
        return tuple(local_sgd(copy.deepcopy(initial), x, y, 2, 0.1, 4, torch.Generator().manual_seed(1)).parameters())

    in_trap(private)
    in_trap(local)
    in_trap(dirichlet_label_split, y, 2, 1.0)


# --------------------------------------------------------------------------- #
# CUDA: the same passes on a GPU, compared with the CPU                       #
# --------------------------------------------------------------------------- #
CUDA = torch.device("cuda")


def _close(cpu, gpu, atol=1e-4, rtol=1e-4):
    for a, b in zip(tensors_of(cpu), tensors_of(gpu), strict=True):
        assert b.device.type == "cuda"
        torch.testing.assert_close(b.cpu(), a, atol=atol, rtol=rtol)


@pytest.mark.gpu
def test_gnn_on_cuda():
    x, edge_index = _graph()
    for make in (lambda: GCN(5, 4, 3), lambda: GAT(5, 2, 3, heads=2), lambda: SAGE(5, 4, 3)):
        torch.manual_seed(0)
        model = make().eval()
        expected = model(x, edge_index)
        _close(expected, model.to(CUDA)(x.to(CUDA), edge_index.to(CUDA)))
    seeds = torch.tensor([2, 4])
    cpu = sample_subgraph(edge_index, seeds, [2, 1], 6, generator=torch.Generator().manual_seed(3))
    gpu = sample_subgraph(edge_index.to(CUDA), seeds.to(CUDA), [2, 1], 6, generator=torch.Generator().manual_seed(3))
    assert torch.equal(gpu.node_ids.cpu(), cpu.node_ids) and torch.equal(gpu.edge_index.cpu(), cpu.edge_index)
    _close(dense_laplacian(edge_index, 6, normalized=True), dense_laplacian(edge_index.to(CUDA), 6, normalized=True))


@pytest.mark.gpu
def test_gnn_training_on_cuda_follows_the_cpu_run():
    """A CPU generator draws the same batches and neighbours wherever the graph lives."""
    runs = []
    for device in ("cpu", CUDA):
        cpu = _graph_data()
        data = GraphData("toy", *(getattr(cpu, name).to(device) for name in
                                  ("x", "edge_index", "y", "train_mask", "val_mask", "test_mask")))
        torch.manual_seed(0)
        model = SAGE(5, 4, 3).to(device)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        losses = train_sage_minibatch(model, data, optimizer, 2, [2, 2], 1, torch.Generator().manual_seed(0))
        result = train_node_classifier(model, data, optimizer, 3, num_hops=2)
        runs.append(torch.tensor(losses + result.train_loss + [result.test_accuracy]))
    torch.testing.assert_close(runs[1], runs[0], atol=1e-4, rtol=1e-4)


@pytest.mark.gpu
def test_recommendation_on_cuda():
    results = []
    for device in ("cpu", CUDA):
        data = _interactions(device)
        train, test = split_interactions(data, 0.3, seed=1)
        torch.manual_seed(0)
        model = LightGCN(train, dim=4, num_layers=2).to(device)
        losses = train_bpr(model, train, epochs=2, batch_size=4, seed=0)
        top = top_k_items(model.scores(), 2, exclude=train.to_mask())
        relevant = test.to_mask()
        results.append((torch.tensor(losses), top, torch.tensor([recall_at_k(top, relevant), ndcg_at_k(top, relevant)])))
    (cpu_losses, cpu_top, cpu_metrics), (gpu_losses, gpu_top, gpu_metrics) = results
    torch.testing.assert_close(gpu_losses, cpu_losses, atol=1e-4, rtol=1e-4)
    assert torch.equal(gpu_top.cpu(), cpu_top)
    torch.testing.assert_close(gpu_metrics, cpu_metrics)


@pytest.mark.gpu
def test_privacy_on_cuda():
    generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(12, 4, generator=generator), torch.randint(0, 3, (12,), generator=generator)
    trained = []
    for device in ("cpu", CUDA):
        model, _, _ = dp_sgd(_classifier(device), x.to(device), y.to(device), epochs=2, batch_size=3, lr=0.1,
                             max_norm=1.0, noise_multiplier=1.0)
        trained.append(list(model.parameters()))
    _close(trained[0], trained[1])
    split = dirichlet_label_split(y.to(CUDA), 2, 1.0)
    assert all(part.device.type == "cuda" for part in split)


@pytest.mark.gpu
def test_bert_on_cuda():
    torch.manual_seed(0)
    model = BertForPreTraining(BertConfig.preset("tiny", vocab_size=50, max_position_embeddings=16)).eval()
    ids, mask, types = _bert_inputs("cpu")
    ids[:, 1:] = torch.arange(5) + 3
    mask[1, 4:] = 0
    labels = torch.full((2, 6), -100, dtype=torch.long)
    labels[:, 2] = 7
    expected = model(ids, mask, types, mlm_labels=labels, nsp_labels=torch.tensor([0, 1]))
    model.to(CUDA)
    got = model(ids.to(CUDA), mask.to(CUDA), types.to(CUDA), mlm_labels=labels.to(CUDA),
                nsp_labels=torch.tensor([0, 1], device=CUDA))
    _close(expected.loss, got.loss)
    _close(expected.mlm_logits, got.mlm_logits)
    assert got.num_masked == expected.num_masked == 2


@pytest.mark.gpu
def test_inference_on_cuda():
    torch.manual_seed(0)
    model = TinyTransformer(vocab_size=7, max_length=12, d_model=16, num_heads=2).eval()
    prompt = torch.tensor([[1, 2, 3], [4, 5, 6]])
    expected = greedy_decode(model, prompt, 5, use_cache=True)
    model.to(CUDA)
    for use_cache in (False, True):
        assert torch.equal(greedy_decode(model, prompt.to(CUDA), 5, use_cache=use_cache).cpu(), expected)
