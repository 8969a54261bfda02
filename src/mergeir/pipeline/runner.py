"""The CPU runner: executes PLAN's task files without Nextflow, with the modules' own command templates.

It reads each process's inputs, output and template from modules/local/*.nf (the includes of main.nf and
subworkflows/ give the aliases), renders the same `templates/*.sh` with the same variables Nextflow gives them
(`row`, the staged input names, `task.process`, `task.attempt`, `task.ext.args`), stages inputs under their
`stageAs` names and runs each task in its own folder, in dependency order. So what CI runs is what Nextflow
runs, command for command. A finished task leaves `.done` holding its row: a rerun skips it (like -resume).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import MergeirError
from ..io import dumps_json
from .tasks import CHOSEN, LOCAL, PROCESSES

ROOT = Path(__file__).resolve().parents[3]  # the pipeline's folder (main.nf, modules/, bin/)
# the only substitutions a template may hold: ${name} or ${name.key...}; no backslashes, no other `$`
_VAR = re.compile(r"\$\{([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\}")


@dataclass
class Module:
    process: str  # the name main.nf calls it by (an alias included with `as` counts)
    path: Path
    inputs: list[tuple[str, str | None, bool]]  # (name, stageAs, inside the `tuple val(row), ...`)
    output: str  # the output folder's name pattern: `${row.id}` or a literal
    script: Path
    stub: Path


def _section(text: str, name: str) -> str:
    m = re.search(rf"^\s*{name}:\s*$(.*?)(?=^\s*\w+:\s*$|\Z)", text, re.S | re.M)
    if not m:
        raise MergeirError(f"no {name}: section")
    return m.group(1)


def parse_module(path: Path, process: str | None = None) -> Module:
    text = path.read_text(encoding="utf-8")
    name = re.search(r"^process\s+(\w+)\s*\{", text, re.M).group(1)
    inputs = []
    for line in _section(text, "input").splitlines():
        line = line.strip()
        if line.startswith("tuple "):
            for m in re.finditer(r"path\((\w+)(?:, stageAs: '([^']+)')?\)", line):
                inputs.append((m.group(1), m.group(2), True))
        elif line:
            m = re.fullmatch(r"(path|val) (\w+)(?:, stageAs: '([^']+)')?", line)
            if not m:
                raise MergeirError(f"{path}: input line not understood: {line}")
            inputs.append((m.group(2), m.group(3), False) if m.group(1) == "path" else (m.group(2), None, False))
    out = re.search(r"""path\(?\s*"([^"]+)"\s*\)?,\s*emit:""", _section(text, "output")) or \
        re.search(r"path\(?\s*'([^']+)'\s*\)?,\s*emit:", _section(text, "output"))
    tpl = path.parent / "templates"
    script = re.search(r"template '([^']+)'", _section(text, "script")).group(1)
    stub = re.search(r"template '([^']+)'", _section(text, "stub")).group(1)
    return Module(process or name, path, inputs, out.group(1), tpl / script, tpl / stub)


def load_modules(root: Path = ROOT) -> dict[str, Module]:
    """Every process main.nf can call, by the name it is called (aliases from the include lines)."""
    mods: dict[str, Module] = {}
    for nf in [root / "main.nf", *sorted((root / "subworkflows").rglob("*.nf"))]:
        if not nf.is_file():
            continue
        for m in re.finditer(r"include \{\s*(\w+)(?:\s+as\s+(\w+))?\s*\}\s*from\s*'([^']+)'",
                             nf.read_text(encoding="utf-8")):
            target = (nf.parent / m.group(3)).resolve()
            target = target.with_suffix(".nf") if target.suffix != ".nf" else target
            if target.is_file() and "/modules/" in target.as_posix():
                mods[m.group(2) or m.group(1)] = parse_module(target, m.group(2) or m.group(1))
    return mods


def render(template: str, variables: dict) -> str:
    """Substitute ${name} / ${name.key}; anything else in a template is refused, so both engines agree."""
    bad = re.sub(_VAR.pattern, "", template)
    if "\\" in template or "$" in bad:
        raise MergeirError("templates may hold only ${name} / ${name.key} substitutions (no backslash, no other $)")

    def value(m: re.Match) -> str:
        v = variables
        for part in m.group(1).split("."):
            if not isinstance(v, dict) or part not in v:
                raise MergeirError(f"template variable ${{{m.group(1)}}} is not defined")
            v = v[part]
        return "null" if v is None else str(v)

    return _VAR.sub(value, template)


@dataclass
class Runner:
    out: Path
    experiment: Path
    stub: bool = False
    ext_args: dict[str, str] = field(default_factory=dict)  # process -> task.ext.args
    modules: dict[str, Module] = field(default_factory=load_modules)
    log: object = sys.stderr

    def __post_init__(self):
        self.out = Path(self.out).resolve()
        self.work = self.out / "work"
        self.artifacts: dict[str, Path] = {}
        self.done_by_process: dict[str, list[str]] = {}

    # ---- one task
    def _env(self) -> dict:
        path = os.pathsep.join([str(ROOT / "bin"), str(Path(sys.executable).parent), os.environ.get("PATH", "")])
        return dict(os.environ, PATH=path, PYTHONNOUSERSITE="1", TOKENIZERS_PARALLELISM="false")

    def run_task(self, process: str, row: dict | None, values: dict) -> Path:
        """Stage, render and run one task in work/<process>/<id>; skip it when .done says it already ran."""
        mod = self.modules[process]
        tid = row["id"] if row else process.lower()
        wd = self.work / process / tid
        record = dumps_json({"row": row, "values": {k: str(v) for k, v in values.items()}, "stub": self.stub})
        done = wd / ".done"
        if process != "PLAN" and done.is_file() and done.read_text(encoding="utf-8") == record:
            return wd  # PLAN always runs (as `cache false` in Nextflow): unchanged rows keep their tasks done
        if wd.exists():
            shutil.rmtree(wd)
        wd.mkdir(parents=True)
        variables = {"row": row, "task": {"process": process, "attempt": 1,
                                          "ext": {"args": self.ext_args.get(process, "")}}}
        for name, stage, in_tuple in mod.inputs:
            if name == "row":
                continue
            if name not in values:
                raise MergeirError(f"{process} {tid}: no value for input {name}")
            v = values[name]
            if stage is None and not isinstance(v, (list, Path)):  # a val
                variables[name] = v
                continue
            paths = v if isinstance(v, list) else ([] if v is None else [v])
            names = []
            for p in paths:
                dest = wd / (stage.replace("*", Path(p).name) if stage else Path(p).name)
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.symlink_to(p)
                names.append(dest.relative_to(wd).as_posix())
            if stage and "*" in stage:
                (wd / stage.split("/")[0]).mkdir(exist_ok=True)  # an empty list still gives the folder
            variables[name] = " ".join(names)
        script = render((mod.stub if self.stub else mod.script).read_text(encoding="utf-8"), variables)
        (wd / ".command.sh").write_text(script, encoding="utf-8")
        t = time.time()
        p = subprocess.run(["bash", "-euo", "pipefail", ".command.sh"], cwd=wd, env=self._env(),
                           capture_output=True, text=True)
        (wd / ".command.out").write_text(p.stdout, encoding="utf-8")
        (wd / ".command.err").write_text(p.stderr, encoding="utf-8")
        if p.returncode != 0:
            raise MergeirError(f"{process} {tid} failed (exit {p.returncode}); see {wd}/.command.err:\n"
                               f"{p.stderr[-3000:]}")
        out_name = mod.output.replace("${row.id}", tid)
        if not (wd / out_name).exists():
            raise MergeirError(f"{process} {tid} did not write its output {out_name}")
        done.write_text(record, encoding="utf-8")
        print(f"  {process:18s} {tid}: {time.time() - t:.1f} s", file=self.log)
        return wd

    # ---- the plan
    def plan(self, **params) -> Path:
        values = {"experiment": self.experiment.resolve(), **{k: str(v) for k, v in params.items()}}
        return self.run_task("PLAN", None, values) / "tasks"

    def run(self, dataset: str = "all", settings: str = "full,limited", alpha_selection: str = "paper",
            allow_unpinned: str = "false", device: str = "auto", encode_shards: int = 1, sweep_shards: int = 1
            ) -> Path:
        """PLAN (defaults: nextflow.config's params), then every task in dependency order; returns OUT/report."""
        tasks = self.plan(dataset=dataset, settings=settings, alpha_selection=alpha_selection,
                          allow_unpinned=allow_unpinned, device=device, encode_shards=encode_shards,
                          sweep_shards=sweep_shards)
        rows = {p: json.loads((tasks / f"{p}.json").read_text(encoding="utf-8")) for p in (LOCAL, *PROCESSES)}
        for r in rows.pop(LOCAL):  # experiment-folder files, relative to the experiment file
            self.artifacts[r["id"]] = (self.experiment.resolve().parent / r["path"]).resolve()
        pending = [(p, r) for p in PROCESSES for r in rows[p]]
        seen = {(p, r["id"]): r for p, r in pending}
        report = None
        while pending:
            ready = next(((p, r) for p, r in pending if self._ready(p, r, pending)), None)
            if ready is None:
                left = ", ".join(f"{p} {r['id']}" for p, r in pending)
                raise MergeirError(f"plan cannot proceed: no task has all its inputs ({left})")
            pending.remove(ready)
            process, row = ready
            wd = self.run_task(process, row, self._values(process, row, tasks))
            out = wd / self.modules[process].output.replace("${row.id}", row["id"])
            for aid, sub in (row.get("produces") or {}).items():
                self.artifacts[aid] = out / sub if sub else out
            self.done_by_process.setdefault(process, []).append(row["id"])
            if process == "REPORT":
                report = out
            if process == "SELECT_ALPHA":  # the run-time edge: the chosen alpha's merged arm
                for p in CHOSEN:
                    for r in json.loads((out / f"{p}.json").read_text(encoding="utf-8")):
                        if (p, r["id"]) in seen:
                            if seen[(p, r["id"])] != r:
                                raise MergeirError(f"two different {p} tasks share the id {r['id']}")
                            continue
                        seen[(p, r["id"])] = r
                        pending.append((p, r))
        link = self.out / "report"  # where Nextflow publishes it: --outdir/report
        if link.is_symlink() or not link.exists():
            link.unlink(missing_ok=True)
            link.symlink_to(report.relative_to(self.out))
        return link

    def _refs(self, process: str, row: dict) -> list[str]:
        refs = [r for v in (row.get("inputs") or {}).values() for r in (v if isinstance(v, list) else [v])]
        return [r for r in refs if r is not None and r not in PROCESSES]

    def _ready(self, process: str, row: dict, pending: list) -> bool:
        if process == "REPORT":  # REPORT collects every EVALUATE and SWEEP output, like .collect()
            return not any(p != "REPORT" for p, _ in pending)
        return all(ref in self.artifacts for ref in self._refs(process, row))

    def _values(self, process: str, row: dict, tasks: Path) -> dict:
        values: dict = {}
        for name, ref in (row.get("inputs") or {}).items():
            if isinstance(ref, list):  # a list of ids (GATHER_* parts) or of processes (REPORT's grids)
                values[name] = [a for r in ref for a in self._outputs(r)]
            elif ref in PROCESSES:
                values[name] = self._outputs(ref)
            else:
                values[name] = None if ref is None else self.artifacts[ref]
        if any(n == "tasks" for n, _, _ in self.modules[process].inputs):
            values["tasks"] = tasks
        return values

    def _outputs(self, ref: str) -> list[Path]:
        """A process name: all its outputs so far (like .collect()); an artifact id: that artifact."""
        if ref in PROCESSES:
            return [self.artifacts[i] for i in self.done_by_process.get(ref, [])]
        return [self.artifacts[ref]]
