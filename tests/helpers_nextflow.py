"""The modules as data for tests: each process's inputs and templates (read from modules/local/*.nf, under the names
main.nf and subworkflows/ include them), and templates rendered by the pinned engine's own template engine.

Rendering runs nextflow.processor.TaskTemplateEngine from the engine's jars (.venv/nextflow/lib, installed by
scripts/install_nextflow.sh) the way a task does (TaskRun.renderTemplate): compiled by a Grengine with TaskProcessor's
transforms, bound to the task's context: `row` (the Map of a tasks/<PROCESS>.json row), `task` (process, attempt,
ext.args), each staged input as a TaskPath (a list of them for a `stageAs: 'dir/*'` input) and the other vals
(PLAN's plan_params). Many templates render in one JVM (tests/fixtures/nextflow/render_templates.groovy)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENGINE_LIB = Path(os.environ.get("NXF_ENGINE_LIB") or ROOT / ".venv" / "nextflow" / "lib")
RENDER = ROOT / "tests" / "fixtures" / "nextflow" / "render_templates.groovy"
# CI sets this (as for tests/helpers_engine.py): missing engine jars then fail the tests instead of skipping them
REQUIRE = os.environ.get("MERGEIR_REQUIRE_ENGINE") == "1"


@dataclass
class Module:
    process: str  # the name main.nf calls it by (an alias included with `as` counts)
    path: Path
    inputs: list[tuple[str, str | None, bool]]  # (name, stageAs or None for a val, inside the `tuple val(row), ...`)
    script: Path
    stub: Path


def _section(text: str, name: str) -> str:
    m = re.search(rf"^\s*{name}:\s*$(.*?)(?=^\s*\w+:\s*$|\Z)", text, re.S | re.M)
    assert m, f"no {name}: section"
    return m.group(1)


def parse_module(path: Path, process: str | None = None) -> Module:
    text = path.read_text(encoding="utf-8")
    name = re.search(r"^process\s+(\w+)\s*\{", text, re.M).group(1)
    inputs = []
    for line in _section(text, "input").splitlines():
        line = line.split("//")[0].strip()
        if line.startswith("tuple "):
            for m in re.finditer(r"path\((\w+)(?:, stageAs: '([^']+)')?\)", line):
                inputs.append((m.group(1), m.group(2) or m.group(1), True))
        elif line:
            m = re.fullmatch(r"(path|val) (\w+)(?:, stageAs: '([^']+)')?", line)
            assert m, f"{path}: input line not understood: {line}"
            inputs.append((m.group(2), m.group(3) or m.group(2), False) if m.group(1) == "path"
                          else (m.group(2), None, False))
    tpl = path.parent / "templates"
    script = re.search(r"template '([^']+)'", _section(text, "script")).group(1)
    stub = re.search(r"template '([^']+)'", _section(text, "stub")).group(1)
    return Module(process or name, path, inputs, tpl / script, tpl / stub)


def load_modules(root: Path = ROOT) -> dict[str, Module]:
    """Every process main.nf can call, by the name it is called (aliases from the include lines)."""
    mods: dict[str, Module] = {}
    for nf in [root / "main.nf", *sorted((root / "subworkflows").rglob("*.nf"))]:
        for m in re.finditer(r"include \{\s*(\w+)(?:\s+as\s+(\w+))?\s*\}\s*from\s*'([^']+)'",
                             nf.read_text(encoding="utf-8")):
            target = (nf.parent / m.group(3)).resolve()
            target = target.with_suffix(".nf") if target.suffix != ".nf" else target
            if target.is_file() and "/modules/" in target.as_posix():
                mods[m.group(2) or m.group(1)] = parse_module(target, m.group(2) or m.group(1))
    return mods


def task_binding(mod: Module, row: dict | None, attempt: int = 1, ext_args: str | None = "", **vals) -> dict:
    """What a task of `mod` binds for its template: row, task and each input. A staged path input is its stage name
    (a PurePosixPath), or a tuple of them for a `dir/*` input (the row's ids under dir/) or an input the row leaves
    None (nothing staged, as utils.nf's withInputs gives []). The other vals come from `vals` (PLAN's plan_params)."""
    binding: dict = {"row": row, "task": {"process": mod.process, "attempt": attempt,
                                          "ext": {} if ext_args is None else {"args": ext_args}}}
    inputs = (row or {}).get("inputs") or {}
    for name, stage, _ in mod.inputs:
        if name == "row":
            continue
        if stage is None:
            binding[name] = vals[name]
        elif "*" in stage:
            refs = inputs.get(name) or []
            binding[name] = tuple(PurePosixPath(stage.replace("*", r)) for r in (refs if isinstance(refs, list)
                                                                                  else [refs]))
        elif row is not None and name in inputs and inputs[name] is None:
            binding[name] = ()
        else:
            binding[name] = PurePosixPath(stage)
    return binding


@dataclass(frozen=True)
class GroovyJson:
    """A val that main.nf makes with groovy.json.JsonOutput.toJson (PLAN's plan_params): the engine's JSON text."""
    value: object


def _case(template: Path, binding: dict) -> dict:
    case: dict = {"template": str(Path(template).resolve()), "binding": {}, "paths": {}, "json": {}}
    for name, value in binding.items():
        if isinstance(value, PurePosixPath):
            case["paths"][name] = str(value)
        elif isinstance(value, tuple):
            case["paths"][name] = [str(v) for v in value]
        elif isinstance(value, GroovyJson):
            case["json"][name] = value.value
        else:
            case["binding"][name] = value
    return case


def java_command() -> list[str]:
    """How .venv/bin/nextflow (tools/nextflow/nextflow) starts the JVM, for a short-lived Groovy script."""
    home = os.environ.get("NXF_JAVA_HOME") or os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else "java"
    return [java, "-Dfile.encoding=UTF-8", "-Djava.awt.headless=true", "-XX:+TieredCompilation",
            "-XX:TieredStopAtLevel=1", "-cp", f"{ENGINE_LIB}/*", "groovy.ui.GroovyMain"]


def render_templates(cases: list[tuple[Path, dict]]) -> list[str]:
    """Each (template, binding) rendered by nextflow.processor.TaskTemplateEngine, all in one JVM. A binding holds
    JSON values, PurePosixPath / tuple values for staged inputs (see task_binding) and GroovyJson values."""
    if not list(ENGINE_LIB.glob("nextflow-*.jar")):
        (pytest.fail if REQUIRE else pytest.skip)(f"no Nextflow engine jars in {ENGINE_LIB}: run "
                                                  f"scripts/install_nextflow.sh")
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "cases.json", Path(tmp) / "out.json"
        src.write_text(json.dumps([_case(t, b) for t, b in cases]), encoding="utf-8")
        p = subprocess.run([*java_command(), str(RENDER), str(src), str(out)], capture_output=True, text=True,
                           timeout=900)
        assert p.returncode == 0, f"render_templates.groovy failed:\n{p.stderr[-3000:]}"
        rendered = json.loads(out.read_text(encoding="utf-8"))
    assert len(rendered) == len(cases)
    for (t, _), r in zip(cases, rendered):
        assert isinstance(r, str), f"{t}: {r['error']}"
    return rendered


# a template's here-document: `cat > FILE <<'DELIMITER'`, its body, the delimiter line (quoted: the shell expands
# nothing in the body)
HEREDOC = re.compile(r"^cat > (\S+) <<'(\w+)'\n(.*?)^\2$\n?", re.M | re.S)


def heredocs(text: str) -> list[tuple[str, str, str]]:
    """(file, delimiter, body) of each here-document of a template or a rendered script."""
    return [(m.group(1), m.group(2), m.group(3)) for m in HEREDOC.finditer(text)]


def command_lines(text: str) -> list[str]:
    """The shell lines of a template or a rendered script, here-documents (their `cat` line, body and delimiter)
    left out."""
    return [ln for ln in HEREDOC.sub("", text).splitlines() if ln.strip()]
