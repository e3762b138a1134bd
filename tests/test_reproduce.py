"""Stored results are regenerable: every book/*/results/*.json has a command, and a tiny run of it works.

``tools/results.toml`` lists every stored result with the command that re-creates it (``make reproduce``,
hours on 2 cores, never run here). This file checks, in well under three minutes on two busy cores:

* the registry: every stored JSON file has an entry, every entry's file exists, the dry run lists them all,
  each stored record carries ``command``, ``recorded`` and ``machine``, and was made by the registry's
  command up to where files go;
* the tiny version of every command (``tiny`` in the registry: few steps, few examples, one seed) runs,
  into a temporary folder, and writes a record with the stored record's keys and the command and date;
* where a tiny run can be compared meaningfully, its numbers land within a stated tolerance of a value
  fixed by a stated rule (e.g. the same recipe gives the same held-out loss *before* training).

The tiny commands run inside this process (``tools/reproduce.py``'s ``run_inline`` calls the entry point's
``main`` with the command's arguments), which spares an interpreter start and ``import torch`` per command.
Nothing is skipped: a missing dataset (``$LEPTON_DATA_DIR``) makes the runs that need it fail.
"""
from __future__ import annotations

import datetime
import importlib.util
import json
import math
import shlex
import statistics
import subprocess
import sys
import time
import traceback
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load_tool():
    spec = importlib.util.spec_from_file_location("reproduce_tool", ROOT / "tools" / "reproduce.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tool = _load_tool()
ENTRIES = tool.load_registry()
BY_NAME = {e["name"]: e for e in ENTRIES}
STORED = [e for e in ENTRIES if "path" in e]


def _stored(name: str) -> dict:
    return json.loads((ROOT / BY_NAME[name]["path"]).read_text())


# ------------------------------------------------------------------------------------------ registry
def test_every_stored_result_has_a_command_and_every_command_a_stored_result() -> None:
    assert tool.uncovered(ENTRIES) == []
    assert sorted(e["path"] for e in STORED) == tool.stored_results()


def test_dry_run_lists_every_stored_result_with_its_command_and_needs() -> None:
    """`python tools/reproduce.py --dry-run` (what `make reproduce DRY_RUN=1` runs): nothing run, every JSON
    file under book/*/results/ named with its command, what it needs and when and where it was recorded."""
    done = subprocess.run([sys.executable, "tools/reproduce.py", "--dry-run"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for path in tool.stored_results():
        assert path in out, f"the dry run does not list {path}"
    for entry in ENTRIES:
        assert f"command:  {entry['command']}" in out
        if entry.get("needs"):
            assert f"needs:    {', '.join(entry['needs'])}" in out
        if "path" in entry:
            record = _stored(entry["name"])
            assert f"recorded {record['recorded']} on {record['machine']['gpu'] or record['machine']['cpu']}" in out
    assert "NO COMMAND" not in out and "NOT STORED" not in out


def test_dry_run_fails_for_a_stored_result_without_a_command(tmp_path: Path) -> None:
    registry = tmp_path / "results.toml"
    text = (ROOT / "tools" / "results.toml").read_text()
    registry.write_text(text[: text.index("[[result]]\nname = \"case_studies\"")])  # drop the last entry
    done = subprocess.run([sys.executable, "tools/reproduce.py", "--dry-run", "--registry", str(registry)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "NO COMMAND: book/cases/results/case_studies.json" in done.stdout


def test_only_runs_a_result_after_what_it_needs() -> None:
    names = [e["name"] for e in tool.plan(ENTRIES, ["finetune_grid"])]
    assert names == ["pretrain_book", "pretrain_long_nsp", "pretrain_long_no_nsp", "finetune_grid"]
    assert [e["name"] for e in tool.plan(ENTRIES, ["compression"])] == ["compression"]
    with pytest.raises(ValueError, match="unknown result"):
        tool.plan(ENTRIES, ["no_such_result"])


@pytest.mark.parametrize("name", [e["name"] for e in STORED])
def test_stored_record_has_command_date_and_machine(name: str) -> None:
    record = _stored(name)
    assert isinstance(record.get("command"), str) and record["command"].startswith("python ")
    datetime.date.fromisoformat(record["recorded"])  # ISO date
    assert record["machine"]["cpu"] and record["machine"]["torch"]


# Options that only say where files go (or where a cache of identical weights was kept).
_WHERE_FILES_GO = {"--out", "--json", "--record", "--teacher-cache"}


def _what_is_computed(command: str) -> list[str]:
    """The command without the options that name output files, with every path reduced to <path>."""
    tokens, kept, skip = shlex.split(command), [], False
    for token in tokens:
        if skip:
            skip = False
        elif token in _WHERE_FILES_GO:
            skip = True
        elif "/" in token and not token.startswith("benchmarks/"):
            name, sep, _ = token.partition("=")
            kept.append(f"{name}=<path>" if sep else "<path>")
        else:
            kept.append(token)
    return kept


@pytest.mark.parametrize("name", [e["name"] for e in STORED])
def test_stored_record_was_made_by_the_registry_command(name: str) -> None:
    """Up to output paths (the stored records keep the /tmp folders they were first written to)."""
    stored = tool.current_command(_stored(name)["command"])  # records made before lepton_lib 2.0's moves
    assert _what_is_computed(stored) == _what_is_computed(BY_NAME[name]["command"])


def test_renamed_modules_exist_and_old_commands_map_to_them() -> None:
    for old, new in tool.RENAMED_MODULES.items():
        assert importlib.util.find_spec(new) is not None, new
        assert tool.current_command(f"python -m {old} --out x") == f"python -m {new} --out x"
    assert tool.current_command("python benchmarks/lepton_lib.pretrain --x") == "python benchmarks/lepton_lib.pretrain --x"


def test_compare_outcome_applies_the_stated_bounds() -> None:
    stored = {"a": {"x": {"mean": 0.70}, "y": {"mean": 0.60}}, "n": 3, "s": "same", "z": float("nan")}
    close = {"a": {"x": {"mean": 0.705}, "y": {"mean": 0.60}}, "n": 3, "s": "same", "z": float("nan")}
    far = {"a": {"x": {"mean": 0.72}, "y": {"mean": 0.60}}, "n": 4, "s": "other", "z": 1.0}
    specs = [{"key": "a.*.mean", "abs": 0.01}, {"key": "n", "abs": 0}, {"key": "s", "abs": 0}, {"key": "z", "rel": 0.1}]
    assert tool.compare_outcome(stored, close, specs) == []
    problems = tool.compare_outcome(stored, far, specs)
    assert [p.split(":")[0] for p in problems] == ["a.x.mean", "n", "s", "z"]


def test_shape_differences_names_missing_and_new_keys() -> None:
    stored = {"a": 1, "b": {"c": [1.0, 2.0]}, "d": None, "bag of words, 1500 sentences": {"accuracy": 0.7}}
    assert tool.shape_differences(stored, {"a": 2, "b": {"c": [3.0]}, "d": {"e": 1},
                                           "bag of words, 16 sentences": {"accuracy": 0.5}}) == []
    assert sorted(tool.shape_differences(stored, {"a": "x", "b": {}, "f": 1, "bag of words, 16 sentences": {}})) == [
        "a: number in the stored record, string in the new one", "b.c: missing from the new record",
        "bag of words, 1500 sentences.accuracy: missing from the new record", "d: missing from the new record",
        "f: not in the stored record"]


DEMO_SCRIPT = """
import json, sys
from pathlib import Path
out = sys.argv[sys.argv.index("--out") + 1]
if Path("fail").exists():
    sys.exit(3)
Path(out).parent.mkdir(parents=True, exist_ok=True)
record = {"command": "python make_demo.py " + " ".join(sys.argv[1:]), "recorded": "2026-01-01",
          "machine": {"cpu": "demo"}, "value": float(Path("value.txt").read_text()), "seconds": 1.0}
Path(out).write_text(json.dumps(record))
"""

DEMO_REGISTRY = """
[[result]]
name = "demo"
path = "book/demo/results/demo.json"
kind = "outcome"
measures = "a number"
command = "python make_demo.py --out book/demo/results/demo.json"
compare = [{key = "value", abs = 0.01}]
tiny = "python make_demo.py --out {tmp}/demo.json"
"""


def test_make_reproduce_rewrites_the_stored_file_and_compares_outcomes(tmp_path: Path, monkeypatch, capsys) -> None:
    """The whole loop of `make reproduce ONLY=demo` on a stand-in repository with one stored outcome."""
    monkeypatch.setattr(tool, "ROOT", tmp_path)
    (tmp_path / "make_demo.py").write_text(DEMO_SCRIPT)
    (tmp_path / "results.toml").write_text(DEMO_REGISTRY)
    stored = tmp_path / "book" / "demo" / "results" / "demo.json"
    stored.parent.mkdir(parents=True)
    stored.write_text(json.dumps({"command": "python make_demo.py --out /tmp/x", "recorded": "2025-01-01",
                                  "machine": {"cpu": "old"}, "value": 1.0, "seconds": 9.0}))
    registry = ["--registry", str(tmp_path / "results.toml")]

    (tmp_path / "value.txt").write_text("1.005")  # within the bound (the seconds are not compared)
    assert tool.main([*registry, "--only", "demo"]) == 0
    assert json.loads(stored.read_text())["value"] == 1.005
    assert json.loads((tmp_path / "_build/reproduce/previous/demo.json").read_text())["value"] == 1.0
    report = json.loads((tmp_path / "_build/reproduce/report.json").read_text())
    assert report["results"][0]["status"] == "re-created; every compared field within its bound"

    (tmp_path / "value.txt").write_text("1.5")  # beyond it
    assert tool.main(registry) == 1
    out = capsys.readouterr().out
    assert "DIFFERS from the stored result beyond its bounds" in out
    assert "value: 1.005 stored, 1.5 new, differ by 0.495 (bound ±0.01)" in out

    (tmp_path / "fail").touch()  # a command that fails
    assert tool.main(registry) == 1
    assert "failed: exit status 3" in capsys.readouterr().out


def test_bf16_speed_ratio_is_written_in_words_never_as_0x_slower() -> None:
    """benchmarks/bert_pretrain.py once printed a bf16 matmul at 523 GFLOP/s vs 191 in fp32 as "0x slower"."""
    times_faster = tool.runpy.run_path(str(ROOT / "benchmarks" / "bert_pretrain.py"), run_name="bench")["times_faster"]
    assert times_faster(523.0, 191.0) == "2.7x faster"
    assert times_faster(1.27, 73.86) == "58x slower"  # the 2-core AMD EPYC's bf16 matmul
    assert times_faster(1 / 5.80, 1 / 0.486) == "12x slower"  # its bf16 training step (seconds inverted)
    assert times_faster(100.0, 99.0) == "as fast"
    with pytest.raises(ValueError, match="positive"):
        times_faster(0.0, 1.0)


# -------------------------------------------------------------------------------------- tiny runs
def _tiny_record_path(entry: dict, tmp: Path) -> Path:
    token = f"{{tmp}}/{entry['name']}.json"
    assert token in shlex.split(entry["tiny"]), f"{entry['name']}: tiny must write its record to {token}"
    return tmp / f"{entry['name']}.json"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Every tiny command, in registry order (dependencies first), run once for the whole module.

    Returns ``{"tmp": folder, name: {"command", "seconds", "error", "record"}}``; a failure is kept, not
    raised, so that each test reports its own command.
    """
    tmp = tmp_path_factory.mktemp("reproduce")
    runs: dict = {"tmp": tmp}
    done: dict[str, str] = {}  # command -> the first entry that ran it
    for entry in ENTRIES:
        command = entry["tiny"].replace("{tmp}", str(tmp))
        run = runs[entry["name"]] = {"command": command, "error": None, "record": None}
        failed_needs = [n for n in entry.get("needs", []) if runs[n]["error"]]
        start, cpu = time.perf_counter(), time.process_time()
        if command in done:  # one program, one tiny run (pretrain_book and pretrain_long_nsp)
            run["error"] = runs[done[command]]["error"]
        elif failed_needs:
            run["error"] = f"not run: {failed_needs} failed"
        else:
            try:
                tool.run_inline(command)
            except BaseException:  # noqa: BLE001 - SystemExit from argparse too: report, go on
                run["error"] = traceback.format_exc()
        done.setdefault(command, entry["name"])
        run["seconds"], run["cpu_seconds"] = time.perf_counter() - start, time.process_time() - cpu
        if run["error"] is None and "path" in entry:
            path = _tiny_record_path(entry, tmp)
            if path.is_file():
                run["record"] = json.loads(path.read_text())
            else:
                run["error"] = f"{command} did not write {path}"
    print("\ntiny runs (wall / CPU seconds): " + ", ".join(
        f"{e['name']} {runs[e['name']]['seconds']:.1f} / {runs[e['name']]['cpu_seconds']:.1f}" for e in ENTRIES))
    return runs


def _ok(tiny: dict, name: str) -> dict:
    run = tiny[name]
    assert run["error"] is None, f"`{run['command']}` failed:\n{run['error']}"
    return run["record"]


@pytest.mark.parametrize("name", [e["name"] for e in ENTRIES])
def test_tiny_run_writes_a_record_like_the_stored_one(tiny: dict, name: str) -> None:
    entry = BY_NAME[name]
    record = _ok(tiny, name)
    if "path" not in entry:  # a checkpoint that others need
        tokens = shlex.split(tiny[name]["command"])
        final = Path(tokens[tokens.index("--out") + 1]) / "final"
        assert (final / "model.safetensors").is_file() and (final / "vocab.txt").is_file()
        return
    assert tool.shape_differences(_stored(name), record, entry.get("tiny_extra", []), entry.get("tiny_missing", [])) == []
    assert record["command"] == tiny[name]["command"]  # the exact command, recorded by the CLI itself
    assert record["recorded"] == datetime.date.today().isoformat()


# Rules for the outcomes a tiny run can say something about. Each states where the expected value comes
# from; the tolerance is the largest difference that rule allows, with a margin.
def test_tiny_pretraining_starts_where_the_stored_long_runs_started(tiny: dict) -> None:
    """Rule: the tiny runs use the long runs' recipe (corpus, vocabulary, length, seed) with fewer, smaller
    steps, so the data, the vocabulary, the initial weights and the held-out masks are the same, and so is
    every held-out number *before* training (seen equal to 1e-7 here; float paths differ in the last bits)."""
    for name in ("pretrain_long_nsp", "pretrain_long_no_nsp"):
        record, stored = _ok(tiny, name), _stored(name)
        assert record["data"] == stored["data"]
        assert record["parameters"] == stored["parameters"]
        assert {k: v for k, v in record["recipe"].items() if k not in ("steps", "warmup_steps", "batch_size")} \
            == {k: v for k, v in stored["recipe"].items() if k not in ("steps", "warmup_steps", "batch_size")}
        before, stored_before = record["heldout_before"], stored["heldout_before"]
        assert before["mlm_loss"] == pytest.approx(stored_before["mlm_loss"], abs=1e-3)
        # and an untrained model predicts about uniformly: loss ~ ln(vocabulary size)
        assert before["mlm_loss"] == pytest.approx(math.log(record["recipe"]["vocab_size"]), abs=0.1)
        assert len(record["log"]["step"]) == record["recipe"]["steps"]
    assert _ok(tiny, "pretrain_long_nsp")["heldout_before"]["nsp_accuracy"] == pytest.approx(
        _stored("pretrain_long_nsp")["heldout_before"]["nsp_accuracy"], abs=0.01)
    assert math.isnan(_ok(tiny, "pretrain_long_no_nsp")["heldout_before"]["nsp_accuracy"])  # no NSP head


def test_tiny_probes_are_ranked_distributions(tiny: dict) -> None:
    """Rule: the top-k of a softmax: k tokens, probabilities in (0, 1), falling, summing to at most 1."""
    record, stored = _ok(tiny, "pretrain_long_probes"), _stored("pretrain_long_probes")
    assert record["probes"] == stored["probes"]
    assert record["models"]["nsp"]["command"] == tiny["pretrain_long_nsp"]["command"]
    for model in record["models"].values():
        assert len(model["predictions"]) == len(record["probes"])
        for guesses in model["predictions"]:
            probabilities = [p for _, p in guesses]
            assert len(guesses) == 4 and all(0 < p < 1 for p in probabilities)
            assert probabilities == sorted(probabilities, reverse=True) and sum(probabilities) <= 1 + 1e-3


def test_tiny_finetune_grid_summarises_its_runs(tiny: dict) -> None:
    """Rule: each summary is the mean over its runs of the last dev accuracy, a multiple of 1/16 (16 dev
    sentences); each pretrained model's provenance is the tiny pretraining command that made it."""
    record = _ok(tiny, "finetune_grid")
    for key, summary in record["summary"].items():
        task, model = key.split("/")
        accuracies = [r["dev_accuracy"][-1] for r in record["runs"] if r["task"] == task and r["model"] == model]
        assert summary["n"] == len(accuracies) == 1
        assert summary["mean"] == pytest.approx(statistics.mean(accuracies), abs=1e-12)
        assert all(abs(a * 16 - round(a * 16)) < 1e-9 for a in accuracies)
    made_by = {name: run["command"] for name, run in record["pretraining"].items()}
    assert made_by == {"ours-2min": tiny["pretrain_book"]["command"], "ours-nsp": tiny["pretrain_long_nsp"]["command"],
                       "ours-no-nsp": tiny["pretrain_long_no_nsp"]["command"],
                       "scratch": tiny["pretrain_long_nsp"]["command"]}  # (the first two are one tiny run)


def test_tiny_bert_benchmark_builds_the_stored_batch_and_weights(tiny: dict) -> None:
    """Rule: preset mini, seed 0 and a batch of 4 x 128 are the settings of the stored bf16 record, so the
    masked batch and the initial weights are the same: the same number of masked tokens (exactly) and the
    same loss (to 1e-3; seen equal to 1e-6 here). Ours and transformers' losses agree (the benchmark's own
    parity check)."""
    record, stored = _ok(tiny, "bert_pretrain_benchmark"), _stored("bert_pretrain_bf16")
    assert (record["preset"], record["batch"], record["seq_len"]) == (stored["preset"], stored["batch"], stored["seq_len"])
    assert record["masked_tokens"] == stored["masked_tokens"]
    for name in ("hf", "ours", "ours-all-positions"):
        assert record["results"][name]["loss"] == pytest.approx(stored["results"][name]["loss"], abs=1e-3)
    assert record["results"]["hf"]["speedup_vs_hf"] == 1.0


def test_tiny_bf16_step_is_timed_and_the_losses_agree(tiny: dict) -> None:
    """Rule: an untrained BERT's MLM + NSP loss is about ln(vocabulary) + ln 2 (uniform guesses); the stored
    records sit 0.06 and 0.14 above it, a tiny batch of 1 x 32 within 0.5."""
    record = _ok(tiny, "bert_pretrain_bf16")
    losses = [r["loss"] for r in record["results"].values()]
    assert max(losses) - min(losses) < 1e-4
    assert losses[0] == pytest.approx(math.log(30522) + math.log(2), abs=0.5)
    step = record["bf16_training_step"]
    assert step["slowdown"] == pytest.approx(step["bf16_autocast_seconds"] / step["fp32_seconds"])


def test_tiny_compression_sizes_and_sparsities_match_the_stored_ones(tiny: dict) -> None:
    """Rules: the sizes depend on the architecture, not on training: parameter counts exactly, checkpoint
    bytes within 0.1% (torch's file format may move a few bytes), the sparse size of a pruned model within
    0.1% (it counts non-zeros, fixed by the pruned fraction); the sparsity of "pruned p%" is p (to 0.001)."""
    record, stored = _ok(tiny, "compression"), _stored("compression")
    assert record["teacher"] == stored["teacher"] and record["student"] == stored["student"]
    assert [r["variant"] for r in record["compression"]] == [r["variant"] for r in stored["compression"]]
    for new, old in zip(record["compression"], stored["compression"]):
        assert new["state_dict_bytes"] == pytest.approx(old["state_dict_bytes"], rel=1e-3), new["variant"]
        if old["sparse_bytes"] is not None:
            assert new["sparse_bytes"] == pytest.approx(old["sparse_bytes"], rel=1e-3), new["variant"]
        if new["variant"].startswith("pruned"):
            amount = int(new["variant"].split()[1].rstrip("%")) / 100
            assert new["linear_sparsity"] == pytest.approx(amount, abs=1e-3)
        assert abs(new["dev_accuracy"] * 16 - round(new["dev_accuracy"] * 16)) < 1e-6  # 16 dev sentences


def test_tiny_inference_benchmark_compiled_model_matches_eager(tiny: dict) -> None:
    """Rule: torch.compile must not change the model's outputs (the benchmark checks to 1e-4)."""
    for name in ("inference_benchmark", "inference_benchmark_cuda"):
        record = _ok(tiny, name)
        assert record["compile"]["outputs_match"] is True
        assert [row["batch_size"] for row in record["batching"]] == [1, 2]
    assert set(_ok(tiny, "inference_benchmark")["classifier"]) == {"fp32", "int8", "pruned_50"}


def test_tiny_case_studies_first_seed_matches_the_stored_first_seed(tiny: dict) -> None:
    """Rules: credit scoring and diagnosis run in full for seed 0, so each metric equals the stored first
    value (models fitted on the same split; 0.02 allows for the small MLP's float path); the popularity
    recommender has no training, so its seed-0 scores equal the stored ones (1e-6)."""
    record, stored = _ok(tiny, "case_studies")["results"], _stored("case_studies")["results"]
    for case in ("credit", "diagnosis"):
        for model, metrics in stored[case].items():
            bound = 1e-3 if model == "logistic regression" else 0.02
            for metric, summary in metrics.items():
                assert record[case][model][metric]["values"] == pytest.approx(summary["values"][:1], abs=bound), \
                    (case, model, metric)
    for metric, summary in stored["recommendation"]["popularity"].items():
        assert record["recommendation"]["popularity"][metric]["values"] == pytest.approx(summary["values"][:1], abs=1e-6)
