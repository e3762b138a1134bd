"""Property-based tests (hypothesis) for the input validators (issue 16, item 6).

For random bad inputs to attention, graph, tokenizer and checkpoint functions: the call raises
``ValueError`` (``CheckpointError`` is one) whose message names the argument, and every object it
was given is left exactly as it was.
"""
from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from torch import nn

from lepton_lib.attention import MultiHeadAttention, scaled_dot_product_attention
from lepton_lib.bert import CheckpointError, load_checkpoint, save_checkpoint
from lepton_lib.data import check_edge_index, coalesce, to_undirected
from lepton_lib.gnn import sample_subgraph
from lepton_lib.bert import mask_tokens
from lepton_lib.attention import KVCache
from lepton_lib.bert import SPECIAL_TOKENS, WordPieceTokenizer

pytestmark = pytest.mark.usefixtures("single_thread")
FAST = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
sizes = st.integers(min_value=1, max_value=4)


# --- attention ---------------------------------------------------------------------------------------------


@FAST
@given(B=sizes, L=sizes, S=sizes, E=sizes, dims=st.lists(sizes, min_size=2, max_size=4),
       which=st.sampled_from(["key", "value"]))
def test_sdpa_refuses_a_key_or_value_of_another_shape_naming_it(B, L, S, E, dims, which) -> None:
    q, k, v = torch.randn(B, L, E), torch.randn(B, S, E), torch.randn(B, S, E)
    bad = torch.randn(*dims)
    # key must be (B, S, E) with value's S; value (B, S, Ev) with any Ev
    valid = len(dims) == 3 and dims[0] == B and (dims[1:] == [S, E] if which == "key" else dims[1] == S)
    assume(not valid)
    args = {"query": q, "key": k, "value": v} | {which: bad}
    copies = {name: t.clone() for name, t in args.items()}
    with pytest.raises(ValueError, match=rf"^{which} |\(S of key\)"):  # a length mismatch is reported on value
        scaled_dot_product_attention(**args)
    assert all(torch.equal(args[name], copies[name]) for name in args)


@FAST
@given(cached=st.integers(0, 3), new=st.integers(1, 2), mask_shape=st.lists(st.integers(1, 7), min_size=1, max_size=5),
       kind=st.sampled_from(["attn_mask", "key_padding_mask"]))
def test_mha_refuses_a_mask_of_another_shape_and_leaves_the_kv_cache_unchanged(cached, new, mask_shape, kind) -> None:
    B, H, E = 2, 2, 8
    S = cached + new
    if kind == "attn_mask":  # broadcastable to (B, H, new, S): every trailing dim 1 or equal, 2 to 4 dims
        target = (B, H, new, S)
        fits = 2 <= len(mask_shape) <= 4 and all(m in (1, t) for m, t in zip(reversed(mask_shape), reversed(target)))
    else:
        fits = tuple(mask_shape) == (B, S)
    assume(not fits)
    torch.manual_seed(0)
    mha = MultiHeadAttention(E, H).eval()
    cache = KVCache(B, H, max_length=8, head_dim=E // H)
    x = torch.randn(B, cached + new, E)
    with torch.no_grad():
        if cached:
            mha(x[:, :cached], x[:, :cached], x[:, :cached], kv_cache=cache)
        snapshot = (cache.length, cache.keys.clone(), cache.values.clone())
        step = x[:, cached:]
        with pytest.raises(ValueError, match=kind):
            mha(step, step, step, kv_cache=cache, **{kind: torch.zeros(mask_shape, dtype=torch.bool)})
    assert cache.length == snapshot[0]
    assert torch.equal(cache.keys, snapshot[1]) and torch.equal(cache.values, snapshot[2])


# --- graphs ---------------------------------------------------------------------------------------------------


edge_lists = st.lists(st.tuples(st.integers(-5, 12), st.integers(-5, 12)), min_size=1, max_size=12)


@FAST
@given(edges=edge_lists, num_nodes=st.integers(1, 8), function=st.sampled_from([coalesce, to_undirected]))
def test_graph_functions_refuse_ids_outside_the_graph(edges, num_nodes, function) -> None:
    edge_index = torch.tensor(edges, dtype=torch.long).t().contiguous()
    assume(int(edge_index.min()) < 0 or int(edge_index.max()) >= num_nodes)
    before = edge_index.clone()
    with pytest.raises(ValueError, match="edge_index contains node id"):
        function(edge_index, num_nodes)
    with pytest.raises(ValueError, match="edge_index"):
        check_edge_index(edge_index, num_nodes)
    assert torch.equal(edge_index, before)


@FAST
@given(edges=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), min_size=1, max_size=12),
       seeds=st.lists(st.integers(-2, 8), min_size=1, max_size=6))
def test_sample_subgraph_refuses_repeated_or_outside_seeds(edges, seeds) -> None:
    edge_index = torch.tensor(edges, dtype=torch.long).t().contiguous()
    seed_tensor = torch.tensor(seeds)
    assume(len(set(seeds)) < len(seeds) or min(seeds) < 0 or max(seeds) >= 6)
    before = seed_tensor.clone()
    with pytest.raises(ValueError, match="seeds"):
        sample_subgraph(edge_index, seed_tensor, [2], num_nodes=6)
    assert torch.equal(seed_tensor, before)


@FAST
@given(edges=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), min_size=1, max_size=12))
def test_coalesce_of_valid_edges_is_sorted_unique_and_idempotent(edges) -> None:
    edge_index = torch.tensor(edges, dtype=torch.long).t().contiguous()
    out = coalesce(edge_index, 6)
    pairs = list(zip(out[1].tolist(), out[0].tolist()))
    assert pairs == sorted(set(zip(edge_index[1].tolist(), edge_index[0].tolist())))
    assert torch.equal(coalesce(out, 6), out)


# --- tokenizer ------------------------------------------------------------------------------------------------


VOCAB = list(SPECIAL_TOKENS) + ["a", "b", "##c"]


@FAST
@given(ids=st.lists(st.integers(-10, 20), min_size=1, max_size=8))
def test_decode_refuses_ids_outside_the_vocabulary(ids) -> None:
    tokenizer = WordPieceTokenizer(VOCAB)
    assume(any(not 0 <= i < len(VOCAB) for i in ids))
    before = list(ids)
    with pytest.raises(ValueError, match=r"ids must be ints in"):
        tokenizer.decode(ids)
    assert ids == before


@FAST
@given(ids=st.lists(st.lists(st.integers(-5, 15), min_size=3, max_size=3), min_size=1, max_size=3))
def test_mask_tokens_refuses_ids_outside_the_vocabulary(ids) -> None:
    input_ids = torch.tensor(ids)
    assume(int(input_ids.min()) < 0 or int(input_ids.max()) >= 10)
    before = input_ids.clone()
    generator = torch.Generator().manual_seed(0)
    state = generator.get_state()
    with pytest.raises(ValueError, match=r"input_ids contains the id"):
        mask_tokens(input_ids, [0, 1, 2, 3, 4], 4, 10, generator)
    assert torch.equal(input_ids, before) and torch.equal(generator.get_state(), state)


# --- checkpoints ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    model(torch.randn(2, 3)).sum().backward()
    optimizer.step()
    return save_checkpoint(tmp_path_factory.mktemp("ckpt"), 1, model, optimizer)


@FAST
@given(hidden=st.integers(1, 6), out=st.integers(1, 3))
def test_load_checkpoint_refuses_a_model_of_another_shape_unchanged(saved, hidden, out) -> None:
    assume((hidden, out) != (4, 2))
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(3, hidden), nn.Linear(hidden, out))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError, match="expects|does not fit"):
        load_checkpoint(saved, model, restore_rng=False)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


@FAST
@given(file=st.sampled_from(["model.safetensors", "optimizer.safetensors", "state.json"]), fraction=st.floats(0, 0.99))
def test_a_truncated_checkpoint_file_raises_before_anything_changes(saved, tmp_path_factory, file, fraction) -> None:
    import shutil

    copy = tmp_path_factory.mktemp("damaged") / saved.name
    shutil.copytree(saved, copy)
    data = (copy / file).read_bytes()
    (copy / file).write_bytes(data[: int(len(data) * fraction)])
    torch.manual_seed(2)
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError):
        load_checkpoint(copy, model, optimizer, restore_rng=False)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert optimizer.state_dict()["state"] == {}
