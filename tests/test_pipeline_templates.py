"""Every process's command is its template (modules/local/templates/): each one, rendered by the engine's own
template engine for every row of the paper's plan (rows CI's engine runs never reach), parses against its bin
script's typer options."""

import importlib.util
import itertools
import json
import re
import shlex
import sys
from functools import lru_cache
from pathlib import Path

import pytest
import typer

from mergeir.experiment import load_experiment
from mergeir.pipeline.tasks import CHOSEN, PROCESSES, merged_arm, plan_tasks

from helpers_nextflow import (GroovyJson, command_lines, heredocs, load_modules, parse_module, render_templates,
                              task_binding)

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / "bin"
MODULES = load_modules()


@lru_cache(maxsize=None)
def bin_command(script: str):
    path = BIN / script
    assert path.is_file(), f"bin/{script} does not exist"
    if str(BIN) not in sys.path:
        sys.path.insert(0, str(BIN))
    spec = importlib.util.spec_from_file_location(f"bin_{path.stem}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return typer.main.get_command(mod.app)


def parse_command_line(line: str) -> None:
    """Parse one rendered shell line with the real typer/click command of the bin script it calls."""
    tokens = shlex.split(line)
    if not tokens or not tokens[0].endswith(".py"):
        return  # a shell line (mkdir, touch, echo)
    cmd, args = bin_command(tokens[0]), tokens[1:]
    if hasattr(cmd, "commands"):
        assert args and args[0] in cmd.commands, f"{tokens[0]}: unknown subcommand {args[:1]}"
        cmd, args = cmd.commands[args[0]], args[1:]
    cmd.make_context(tokens[0], args)  # raises on an unknown option, a bad value, a missing required one


def parse_script(text: str) -> None:
    """Every line of a rendered script that calls a bin script parses (here-documents' bodies are data)."""
    for line in command_lines(text):
        parse_command_line(line)


# main.nf's plan_params: every param as text, made JSON by Groovy's JsonOutput
PLAN_PARAMS = {"dataset": "all", "settings": "full,limited", "alpha_selection": "grid", "allow_unpinned": "true",
               "device": "cuda", "encode_shards": "2", "sweep_shards": "2"}


def variables(process: str, row: dict | None, attempt: int = 1, ext: str = "") -> dict:
    return task_binding(MODULES[process], row, attempt, ext, plan_params=GroovyJson(PLAN_PARAMS))


def paper_rows():
    """Every row of the paper's plan: all four collections, both settings, both alpha selections, and the rows a
    grid-chosen alpha adds (at two alphas, so the merge options vary); data/test.yaml's too (MAKE_TINY)."""
    out: dict[str, dict] = {p: {} for p in PROCESSES}
    for name, settings, selection, shards in itertools.product(("paper", "test"), ("full", "limited"),
                                                               ("paper", "grid"), (1, 2)):
        experiment = load_experiment(ROOT / "data" / f"{name}.yaml")  # test.yaml: the tiny built models
        rows, deferred = plan_tasks(experiment, settings=settings, alpha_selection=selection, allow_unpinned="true",
                                    device="cuda", encode_shards=shards, sweep_shards=shards, library="x")
        for ctx in deferred.values():
            for a in ((0.0, 1.0), (0.75, 0.25)):
                extra = merged_arm(ctx, *a, "grid")
                for p in CHOSEN:
                    rows[p] += extra.get(p, [])
        for p in PROCESSES:
            out[p].update({r["id"]: r for r in rows[p]})
    return out


ROWS = paper_rows()
_RENDERED: dict = {}


def rendered() -> dict:
    """(process, row id, attempt) -> the command, for every row; and ("PLAN", None, 1). One JVM for all."""
    if not _RENDERED:
        keys = [(p, rid, a) for p in PROCESSES for rid in ROWS[p] for a in (1, 3)] + [("PLAN", None, 1)]
        cases = [(MODULES[p].script, variables(p, ROWS[p][rid] if rid else None, a)) for p, rid, a in keys]
        _RENDERED.update(zip(keys, render_templates(cases)))
    return _RENDERED


@pytest.mark.parametrize("process", PROCESSES)
def test_every_rendered_command_parses(process):
    assert ROWS[process], process
    for (p, _, _), text in rendered().items():
        if p == process:
            parse_script(text)


def test_plan_command_parses():
    text = rendered()[("PLAN", None, 1)]
    assert "plan.py tasks --experiment experiment.yaml --params params.json" in text
    parse_script(text)
    (file, _, body), = heredocs(text)
    assert file == "params.json" and json.loads(body) == PLAN_PARAMS


def test_heredocs_carry_the_rows_json():
    """LORA_TRAIN's recipe.json and SELECT_ALPHA's arm.json are the row's JSON, one line in a quoted heredoc."""
    seen = set()
    for (p, rid, _), text in rendered().items():
        for file, _, body in heredocs(text):
            field = {"recipe.json": "recipe", "arm.json": "arm", "params.json": None}[file]
            if field:
                assert body == ROWS[p][rid][field] + "\n" and json.loads(body) == json.loads(ROWS[p][rid][field])
                seen.add((p, file))
    assert seen == {("LORA_TRAIN", "recipe.json"), ("SELECT_ALPHA", "arm.json")}


@pytest.mark.parametrize("process", ["PLAN", *PROCESSES])
def test_templates_hold_plain_substitutions_only(process):
    mod = MODULES[process]
    for tpl in (mod.script, mod.stub):
        text = tpl.read_text()
        # a backslash or a bare `$name` would be read by the template engine, not by the shell; a substitution is
        # a name (with keys), or task.ext.args defaulted to nothing
        assert "\\" not in text and not re.search(r"\$(?!\{[A-Za-z_]\w*(\.[A-Za-z_]\w*)*( \?: '')?\})", text), tpl
        assert "versions.yml" in text, f"{tpl} writes no versions.yml"
    assert "${task.ext.args ?: ''}" in mod.script.read_text() or process == "PLAN"


@pytest.mark.parametrize("process", PROCESSES)
def test_module_inputs_match_rows_and_subworkflow_calls(process):
    mod = MODULES[process]
    tuple_names = [n for n, _, in_tuple in mod.inputs if in_tuple]
    for row in ROWS[process].values():
        keys = set(row["inputs"])
        assert keys == set(tuple_names) or (process == "REPORT" and keys == {n for n, _, _ in mod.inputs} - {"row"})
    calls = {}
    for nf in (ROOT / "subworkflows" / "local").glob("*.nf"):
        for name, names in re.findall(r"(\w+)\(withInputs\(.*?, \[([^\]]*)\]", nf.read_text()):
            calls[name] = re.findall(r"'(\w+)'", names)
        for name, names in re.findall(r"(\w+)\(withParts\(.*?, '(\w+)', ", nf.read_text()):
            calls[name] = [names]
    if process != "REPORT":
        assert calls[process] == tuple_names, "withInputs(...) names must follow the module's input tuple"


def test_every_module_is_called_and_labelled():
    base = (ROOT / "conf" / "base.config").read_text()
    containers = (ROOT / "conf" / "containers.config").read_text()
    covered = {n for s in re.findall(r"withName: '([^']+)'", containers) for n in s.split("|")}
    files = sorted((ROOT / "modules" / "local").glob("*.nf"))
    assert {parse_module(f).path for f in files} == {m.path for m in MODULES.values()}
    for process, mod in MODULES.items():
        text = mod.path.read_text()
        assert len(re.findall(r"^process\s+\w+", text, re.M)) == 1
        label = re.search(r"^\s*label '(\w+)'", text, re.M).group(1)
        assert f"withLabel: {label}" in base and process in covered, process


@pytest.mark.parametrize("process", ["PLAN", *PROCESSES])
def test_stub_creates_the_output(process):
    mod = MODULES[process]
    output = "tasks" if process == "PLAN" else "${row.id}"
    assert f"path {output!r}".replace("'", '"') in mod.path.read_text() or f"path '{output}'" in mod.path.read_text() \
        or f'path("{output}")' in mod.path.read_text()
    assert output in mod.stub.read_text() or mod.stub == mod.script, f"{mod.stub} does not create {output}"


def test_gpu_stages_halve_batch_on_retry():
    """A retry after exit 75 (GPU out of memory) or a kill runs with task.attempt + 1: the batch is halved."""
    for process in ("ENCODE", "SWEEP", "PREPARE_TRAINING"):
        assert "--attempt ${task.attempt}" in MODULES[process].script.read_text(), process
    from mergeir.cli import batch_for_attempt
    assert [batch_for_attempt(8, a) for a in (1, 2, 3, 5)] == [8, 4, 2, 1]
    base = (ROOT / "conf" / "base.config").read_text()
    assert re.search(r"errorStrategy\s*=.*\b75\b.*'retry'", base)
