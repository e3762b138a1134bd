"""Re-create the book's stored results (book/*/results/*.json) with the commands in tools/results.toml.

    python tools/reproduce.py --dry-run              # every stored result, its command and what it needs
    python tools/reproduce.py --only finetune_grid   # one result, after the runs it needs
    python tools/reproduce.py                        # all of them (hours on 2 CPU cores)

(``make reproduce [DRY_RUN=1] [ONLY=name]`` runs this with the book's virtual environment.)

Each command writes its stored file in place, as the recorded command did; the file it replaces is kept
in ``_build/reproduce/previous/``. An *outcome* is then compared with the previous file within the
bounds the registry states, and a *timing* is not compared (it belongs to the machine that measured it).
Runs that others need (pretraining checkpoints) go into ``_build/reproduce/<name>/``; a needed run that
was not asked for by name is reused when its folder holds a finished run of the same command. Logs and
``report.json`` are written to ``_build/reproduce/``. The exit status is 1 if a command fails or an
outcome lands outside its bounds; a result that needs a CUDA GPU is reported, not run, on a machine
without one.

The functions are also used by ``tests/test_reproduce.py`` (registry checks, the dry run, the record
shapes and the comparisons).
"""
from __future__ import annotations

import argparse
import datetime
import importlib
import json
import math
import os
import re
import runpy
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pytest's dependency tomli is the same parser
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
REGISTRY = ROOT / "tools" / "results.toml"
WORK = "_build/reproduce"
KINDS = ("outcome", "timing", "checkpoint")
FIELDS = {"name", "path", "kind", "measures", "command", "needs", "requires", "compare", "tiny", "tiny_extra",
          "tiny_missing"}
MISSING = object()
# lepton_lib 2.0 moved the command lines into the book's subpackages (the code they run did not change).
# Records made before the move name the old module; this maps it to the module a reader runs today.
RENAMED_MODULES = {
    "lepton_lib.pretrain": "lepton_lib.bert.pretraining_recipe",
    "lepton_lib.finetune": "lepton_lib.bert.fine_tuning_recipe",
    "lepton_lib.compress": "lepton_lib.scale.compression_recipe",
    "lepton_lib.ddp_demo": "lepton_lib.scale.ddp_demo",
}


def current_command(command: str) -> str:
    """``command`` with a module renamed by lepton_lib 2.0 replaced by its current path."""
    tokens = shlex.split(command)
    return shlex.join(RENAMED_MODULES.get(t, t) if i and tokens[i - 1] == "-m" else t for i, t in enumerate(tokens))


# --------------------------------------------------------------------------------------------- registry
def load_registry(path: Path = REGISTRY) -> list[dict]:
    """The ``[[result]]`` entries of the registry, in order, checked (``ValueError`` names what is wrong)."""
    entries = tomllib.loads(Path(path).read_text(encoding="utf-8")).get("result", [])
    seen: set[str] = set()
    for entry in entries:
        name = entry.get("name")
        where = f"{path}: result {name!r}"
        if not name or not re.fullmatch(r"[a-z0-9_]+", name) or name in seen:
            raise ValueError(f"{where}: name must be a new lower_case identifier")
        unknown = set(entry) - FIELDS
        if unknown:
            raise ValueError(f"{where}: unknown fields {sorted(unknown)}, expected some of {sorted(FIELDS)}")
        for field in ("kind", "measures", "command", "tiny"):
            if not isinstance(entry.get(field), str) or not entry[field].strip():
                raise ValueError(f"{where}: {field} must be a non-empty string")
        if entry["kind"] not in KINDS:
            raise ValueError(f"{where}: kind must be one of {KINDS}, got {entry['kind']!r}")
        if (entry["kind"] == "checkpoint") == ("path" in entry):
            raise ValueError(f"{where}: a stored result has a path and kind outcome/timing; a checkpoint has no path")
        if entry.get("compare") and entry["kind"] != "outcome":
            raise ValueError(f"{where}: only outcomes are compared, this is a {entry['kind']}")
        for spec in entry.get("compare", []):
            if set(spec) not in ({"key", "abs"}, {"key", "rel"}):
                raise ValueError(f"{where}: a compare item is {{key, abs}} or {{key, rel}}, got {spec}")
        for need in entry.get("needs", []):
            if need not in seen:
                raise ValueError(f"{where}: needs {need!r}, which is not an earlier result")
        for field in ("command", "tiny"):
            tokens = shlex.split(entry[field])
            if tokens[0] != "python" or len(tokens) < 2:
                raise ValueError(f"{where}: {field} must start with `python` (the book's environment)")
            if any(t.startswith("/") or "=/" in t or "/tmp" in t for t in tokens):
                raise ValueError(f"{where}: {field} must use paths inside the repository, got {entry[field]!r}")
        if "path" in entry and entry["path"] not in shlex.split(entry["command"]):
            raise ValueError(f"{where}: the command must write {entry['path']} (name it on the command line)")
        if "{tmp}" not in entry["tiny"]:
            raise ValueError(f"{where}: tiny must write into {{tmp}}")
        if entry.get("requires") not in (None, "cuda"):
            raise ValueError(f"{where}: requires must be 'cuda' if given")
        seen.add(name)
    return entries


def stored_results() -> list[str]:
    """Every stored result file, relative to the repository root: book/<chapter>/results/*.json."""
    return sorted(p.relative_to(ROOT).as_posix() for p in ROOT.glob("book/*/results/*.json"))


def plan(entries: list[dict], only: list[str] | None = None) -> list[dict]:
    """The entries to run, in registry order: all, or ``only`` and everything they need."""
    by_name = {e["name"]: e for e in entries}
    if not only:
        return list(entries)
    unknown = [n for n in only if n not in by_name]
    if unknown:
        raise ValueError(f"unknown result(s) {unknown}; known: {', '.join(by_name)}")
    wanted: set[str] = set()
    stack = list(only)
    while stack:
        name = stack.pop()
        if name not in wanted:
            wanted.add(name)
            stack += by_name[name].get("needs", [])
    return [e for e in entries if e["name"] in wanted]


def output_folder(command: str) -> str | None:
    """The ``--out`` folder of a command when it lies under _build/reproduce/ (a run's own folder)."""
    tokens = shlex.split(command)
    for flag, value in zip(tokens, tokens[1:]):
        if flag == "--out" and value.startswith(WORK + "/"):
            return value
    return None


def uncovered(entries: list[dict]) -> list[str]:
    """Problems of coverage: stored files no entry re-creates, and entries whose file is not in the book."""
    covered = {e["path"] for e in entries if "path" in e}
    stored = stored_results()
    return ([f"NO COMMAND: {p} is a stored result that tools/results.toml does not re-create"
             for p in stored if p not in covered]
            + [f"NOT STORED: {p} is in tools/results.toml but not in the book" for p in sorted(covered - set(stored))])


def _bound_text(spec: dict) -> str:
    if spec.get("abs") == 0:
        return f"{spec['key']} exactly"
    return f"{spec['key']} ±{spec['abs']}" if "abs" in spec else f"{spec['key']} ±{spec['rel'] * 100:g}%"


def describe(shown: list[dict], entries: list[dict]) -> str:
    """The dry run's text: each of ``shown`` with its command, needs and bounds (``entries``: the registry)."""
    lines = []
    for e in shown:
        target = e.get("path")
        if target is None:
            users = [u["name"] for u in entries if e["name"] in u.get("needs", [])]
            target = f"(not stored: {output_folder(e['command'])}/ for {', '.join(users) or 'nothing'})"
        lines.append(f"{e['name']}  [{e['kind']}]  {target}")
        lines.append(f"    measures: {' '.join(e['measures'].split())}")
        if e.get("needs"):
            lines.append(f"    needs:    {', '.join(e['needs'])} (run first, in this order)")
        if e.get("requires"):
            lines.append(f"    requires: a {e['requires'].upper()} GPU (reported, not run, without one)")
        lines.append(f"    command:  {e['command']}")
        if e.get("path") and (ROOT / e["path"]).is_file():
            record = json.loads((ROOT / e["path"]).read_text())
            machine = record.get("machine") or {}
            where = machine.get("gpu") or machine.get("cpu") or "an unrecorded machine"
            lines.append(f"    stored:   recorded {record.get('recorded', 'on an unrecorded date')} on {where}")
        if e["kind"] == "outcome":
            lines.append(f"    compared: {'; '.join(map(_bound_text, e['compare']))}")
        elif e["kind"] == "timing":
            lines.append("    compared: never (a timing: machine-specific)")
    stored = stored_results()
    problems = uncovered(entries)
    lines += ["", f"{len(stored)} stored results under book/*/results/, "
                  f"{sum(1 for e in entries if e.get('path') in stored)} re-created by a command; "
                  f"{len(shown)} runs listed."]
    return "\n".join(lines + problems)


# -------------------------------------------------------------------------------------- comparisons
def _norm_key(key: str) -> str:
    """Dict keys compared by shape: digits stand for any number ("bag of words, 1500 sentences")."""
    return re.sub(r"\d+", "#", key)


def _kind(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "list", dict: "dict"}.get(type(value), type(value).__name__)


def shape_differences(stored, new, extra: list[str] = (), missing: list[str] = (), prefix: str = "") -> list[str]:
    """How ``new``'s structure differs from ``stored``'s: keys, and the kind of each value.

    Dict keys must match (their digits aside); ``null`` on either side matches any value (a field that is
    empty in one run, e.g. the sparse size of an int8 model); lists may differ in length (fewer seeds,
    fewer steps), their items are compared pairwise. ``extra``: dotted keys ``new`` may have in addition;
    ``missing``: dotted keys of ``stored`` that ``new`` may lack.
    """
    if stored is None or new is None:
        return []
    if _kind(stored) != _kind(new):
        return [f"{prefix or '<top>'}: {_kind(stored)} in the stored record, {_kind(new)} in the new one"]
    out = []
    if isinstance(stored, dict):
        a = {_norm_key(k): k for k in stored}
        b = {_norm_key(k): k for k in new}
        for k in sorted(a.keys() - b.keys()):
            if f"{prefix}{a[k]}" not in missing:
                out.append(f"{prefix}{a[k]}: missing from the new record")
        for k in sorted(b.keys() - a.keys()):
            if f"{prefix}{b[k]}" not in extra:
                out.append(f"{prefix}{b[k]}: not in the stored record")
        for k in sorted(a.keys() & b.keys()):
            out += shape_differences(stored[a[k]], new[b[k]], extra, missing, f"{prefix}{a[k]}.")
    elif isinstance(stored, list):
        for i, (x, y) in enumerate(zip(stored, new)):
            out += shape_differences(x, y, extra, missing, f"{prefix}{i}.")
    return [d.replace(".:", ":") for d in out]


def _select(stored, new, parts: list[str], prefix: str):
    """(dotted path, stored value, new value) for every match of ``parts`` (``*``: every key or item)."""
    if not parts:
        yield prefix.rstrip("."), stored, new
        return
    head, rest = parts[0], parts[1:]
    if head == "*":
        if isinstance(stored, dict) and isinstance(new, dict):
            for k in list(stored) + [k for k in new if k not in stored]:
                yield from _select(stored.get(k, MISSING), new.get(k, MISSING), rest, f"{prefix}{k}.")
        elif isinstance(stored, list) and isinstance(new, list):
            if len(stored) != len(new):
                yield prefix.rstrip("."), stored, new  # reported by _close as a length difference
                return
            for i, (x, y) in enumerate(zip(stored, new)):
                yield from _select(x, y, rest, f"{prefix}{i}.")
        else:
            yield prefix.rstrip("."), stored, new
        return
    pick = (lambda v: v.get(head, MISSING) if isinstance(v, dict) else MISSING)
    yield from _select(pick(stored), pick(new), rest, f"{prefix}{head}.")


def _close(stored, new, abs_bound: float | None, rel_bound: float | None, path: str) -> list[str]:
    if stored is MISSING or new is MISSING:
        return [f"{path}: {'missing from the stored record' if stored is MISSING else 'missing from the new record'}"]
    if isinstance(stored, dict) and isinstance(new, dict):
        if set(stored) != set(new):
            return [f"{path}: keys {sorted(stored)} stored, {sorted(new)} new"]
        return [m for k in stored for m in _close(stored[k], new[k], abs_bound, rel_bound, f"{path}.{k}")]
    if isinstance(stored, list) and isinstance(new, list):
        if len(stored) != len(new):
            return [f"{path}: {len(stored)} items stored, {len(new)} new"]
        return [m for i, (x, y) in enumerate(zip(stored, new)) for m in _close(x, y, abs_bound, rel_bound, f"{path}.{i}")]
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (stored, new))
    if not numbers:
        return [] if stored == new else [f"{path}: {stored!r} stored, {new!r} new"]
    if math.isnan(stored) or math.isnan(new):
        return [] if math.isnan(stored) and math.isnan(new) else [f"{path}: {stored!r} stored, {new!r} new"]
    bound = abs_bound if abs_bound is not None else rel_bound * abs(stored)
    if abs(new - stored) <= bound + 1e-12:
        return []
    stated = f"±{abs_bound}" if abs_bound is not None else f"±{rel_bound:.1%}"
    return [f"{path}: {stored!r} stored, {new!r} new, differ by {abs(new - stored):.3g} (bound {stated})"]


def compare_outcome(stored: dict, new: dict, specs: list[dict]) -> list[str]:
    """Every field named by ``specs`` ({key, abs} or {key, rel}) that differs beyond its bound; empty: all hold."""
    problems = []
    for spec in specs:
        matches = list(_select(stored, new, spec["key"].split("."), ""))
        if not matches:
            problems.append(f"{spec['key']}: matches nothing")
        for path, a, b in matches:
            problems += _close(a, b, spec.get("abs"), spec.get("rel"), path)
    return problems


# ------------------------------------------------------------------------------------------ running
def python_argv(command: str) -> list[str]:
    """The command's arguments, with `python` replaced by this interpreter (the book's environment)."""
    tokens = shlex.split(command)
    return [sys.executable, *tokens[1:]]


def run_inline(command: str) -> None:
    """Run a `python -m module ...` or `python script.py ...` command inside this process.

    The entry point's ``main`` gets the same arguments (and records the same command) as on the command
    line; the tests use this to spare one interpreter start and one ``import torch`` per command.
    """
    tokens = shlex.split(command)
    if tokens[0] != "python":
        raise ValueError(f"command must start with python, got {command!r}")
    if tokens[1] == "-m":
        main, args = importlib.import_module(tokens[2]).main, tokens[3:]
    else:
        main, args = runpy.run_path(str(ROOT / tokens[1]), run_name="reproduce_inline")["main"], tokens[2:]
    import torch

    threads = torch.get_num_threads()
    cwd = os.getcwd()
    try:
        os.chdir(ROOT)
        main(args)
    finally:
        os.chdir(cwd)
        torch.set_num_threads(threads)


def _reusable(entry: dict) -> bool:
    """A needed run whose folder holds a finished run (metrics.json) of exactly this command."""
    folder = output_folder(entry["command"])
    metrics = ROOT / folder / "metrics.json" if folder else None
    if metrics is None or not metrics.is_file():
        return False
    try:
        recorded = json.loads(metrics.read_text()).get("command") or ""
    except ValueError:
        return False
    return shlex.split(recorded) == shlex.split(entry["command"])


def _run(entry: dict, log: Path) -> int:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # idle OpenMP threads sleep: no number changes
    with open(log, "w", encoding="utf-8") as f:
        f.write(f"$ {entry['command']}\n")
        process = subprocess.Popen(python_argv(entry["command"]), cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
        for line in process.stdout:
            sys.stdout.write("    " + line)
            f.write(line)
        return process.wait()


def reproduce(entries: list[dict], requested: list[str] | None) -> list[dict]:
    """Run ``entries`` in order; return one report row per entry.

    A run whose command fails (or writes no record) stops the runs that need it; an outcome outside its
    bounds does not (its checkpoint is still what the command makes), but is reported.
    """
    work = ROOT / WORK
    (work / "previous").mkdir(parents=True, exist_ok=True)
    (work / "logs").mkdir(parents=True, exist_ok=True)
    has_gpu = None
    rows, failed = [], set()
    for entry in entries:
        name = entry["name"]
        row = {"name": name, "path": entry.get("path"), "kind": entry["kind"], "command": entry["command"]}
        rows.append(row)
        print(f"\n== {name} ({entry['kind']})", flush=True)
        if any(n in failed for n in entry.get("needs", [])):
            row["status"] = "not run: a run it needs failed"
            failed.add(name)
            continue
        if entry.get("requires") == "cuda":
            if has_gpu is None:
                import torch

                has_gpu = torch.cuda.is_available()
            if not has_gpu:
                row["status"] = "not run: needs a CUDA GPU, and this machine has none"
                if requested and name in requested:
                    failed.add(name)
                print(f"   {row['status']}", flush=True)
                continue
        if requested and name not in requested and _reusable(entry):
            row["status"] = f"reused: {output_folder(entry['command'])} holds a finished run of this command"
            print(f"   {row['status']}", flush=True)
            continue
        folder = output_folder(entry["command"])
        if folder:
            shutil.rmtree(ROOT / folder, ignore_errors=True)
        stored = ROOT / entry["path"] if entry.get("path") else None
        previous = work / "previous" / f"{name}.json"
        previous.unlink(missing_ok=True)
        before = None
        if stored is not None and stored.is_file():
            shutil.copyfile(stored, previous)
            before = stored.stat().st_mtime_ns
        print(f"   $ {entry['command']}", flush=True)
        start = time.perf_counter()
        code = _run(entry, work / "logs" / f"{name}.log")
        row["seconds"] = round(time.perf_counter() - start, 1)
        if code != 0:
            row["status"] = f"failed: exit status {code} (log: {WORK}/logs/{name}.log)"
            failed.add(name)
            continue
        if stored is None:
            row["status"] = "ran"
            continue
        if not stored.is_file() or stored.stat().st_mtime_ns == before:
            row["status"] = f"failed: the command did not write {entry['path']}"
            failed.add(name)
            continue
        new = json.loads(stored.read_text())
        lacking = [k for k in ("command", "recorded", "machine") if k not in new]
        if lacking:
            row["status"] = f"failed: the new record lacks {lacking}"
            failed.add(name)
            continue
        if entry["kind"] == "timing" or not previous.is_file():
            row["status"] = "re-created (a timing: not compared)" if entry["kind"] == "timing" else "created"
            continue
        problems = compare_outcome(json.loads(previous.read_text()), new, entry.get("compare", []))
        row["differences"] = problems
        if problems:  # the run itself is usable: what needs it still runs
            row["status"] = f"DIFFERS from the stored result beyond its bounds ({len(problems)} fields)"
        else:
            row["status"] = "re-created; every compared field within its bound"
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tools/reproduce.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="list the results, commands and needs; run nothing")
    parser.add_argument("--only", nargs="+", default=None, metavar="NAME",
                        help="re-create these results (and the runs they need)")
    parser.add_argument("--registry", type=Path, default=REGISTRY)
    args = parser.parse_args(argv)
    entries = load_registry(args.registry)
    only = [n for item in (args.only or []) for n in item.replace(",", " ").split()] or None
    try:
        selected = plan(entries, only)
    except ValueError as error:
        parser.error(str(error))
    problems = uncovered(entries)
    if args.dry_run:
        print(describe(selected, entries))
        return 1 if problems else 0
    for problem in problems:
        print(problem)
    print(f"Re-creating {len(selected)} runs: {', '.join(e['name'] for e in selected)}")
    rows = reproduce(selected, only)
    report = {"date": datetime.date.today().isoformat(), "only": only, "results": rows, "coverage": problems}
    (ROOT / WORK / "report.json").write_text(json.dumps(report, indent=1))
    print("\nSummary (also in _build/reproduce/report.json):")
    bad = bool(problems)
    for row in rows:
        print(f"  {row['name']:26} {row['status']}")
        for difference in row.get("differences", []):
            print(f"      {difference}")
        requested_but_not_run = row["status"].startswith("not run") and bool(only) and row["name"] in only
        bad |= row["status"].startswith(("failed", "DIFFERS", "not run: a run it needs")) or requested_but_not_run
    for problem in problems:
        print(f"  {problem}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
