"""Every value that reaches a shell is quoted once, by one function: a planner-made argument list by
mergeir.pipeline.tasks.Options.text (shlex.quote), a JSON document (row.recipe, row.arm, PLAN's plan_params) by a
quoted here-document; what else a template substitutes is a plain name the planner checked (row.id,
row.train_file), a staged input's fixed name or the engine's own (task.process, task.attempt; task.ext.args is the
user's config, shell words by design).

Hostile values (quotes, `$()`, backticks, spaces, newlines, a line equal to a here-document's delimiter...) are put
in the planner-made fields of a real row of each process, rendered through every template (script and stub) by the
engine's own template engine and run by bash with a stub for every bin script that records the argv it gets: each
argument arrives as the intended token, each here-document's file parses as the intended JSON, and nothing in a
value runs (a `touch PWNED` never creates PWNED) or changes which files the task writes."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path, PurePosixPath

import pytest

from mergeir.errors import MergeirError
from mergeir.experiment import load_experiment
from mergeir.pipeline.tasks import CHOSEN, PROCESSES, Options, encode_rows, merged_arm, plan_tasks

from helpers_nextflow import GroovyJson, heredocs, load_modules, render_templates, task_binding

ROOT = Path(__file__).resolve().parents[1]
MODULES = load_modules()
BIN_SCRIPTS = sorted(p.name for p in (ROOT / "bin").glob("*.py") if not p.name.startswith("_"))
TEMPLATES = sorted({t for m in MODULES.values() for t in (m.script, m.stub)})
# the here-documents' delimiters (MERGEIR_PARAMS, MERGEIR_ARM, RECIPE)
DELIMITERS = sorted({d for t in TEMPLATES for _, d, _ in heredocs(t.read_text(encoding="utf-8"))})
HOSTILE = ["'", '"', "$(touch PWNED)", "`touch PWNED`", "a b", "\n", "two\nlines", ";", "; touch PWNED", "&&",
           "&& touch PWNED", "\\", "\\'", "$HOME", "${HOME}", "$((6*7))", "'\"'\"'", "", " ", "\t", "*", "?", "~",
           "#", "> PWNED", "< /dev/null", "| touch PWNED", "{a,b}", "!!", "-", "--out", "é ☃",
           *[f"\n{d}\n" for d in DELIMITERS], *DELIMITERS]
HOSTILE.append("".join(HOSTILE))  # and all of them in one value
MARKER = "MERGEIR_TEST_OPTIONS"  # a plain option list, where the hostile one's tokens must arrive
# main.nf's plan_params keys (its values are text)
PLAN_KEYS = ("dataset", "settings", "alpha_selection", "allow_unpinned", "device", "encode_shards", "sweep_shards")
PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # a name no shell reads anything into


def planned_rows() -> dict[str, list[dict]]:
    """Rows of every process: the test profile's plan (grid-chosen alpha, split tasks; unsplit for SWEEP), its
    grid-chosen merged arms, and the paper's plan (DOWNLOAD_MODEL, SAMPLE_FULL, paper-alpha MERGE)."""
    out: dict[str, list[dict]] = {p: [] for p in PROCESSES}
    for name, selection, shards in (("test", "grid", 2), ("test", "grid", 1), ("paper", "paper", 1)):
        experiment = load_experiment(ROOT / "data" / f"{name}.yaml", check_paths=False)
        rows, deferred = plan_tasks(experiment, alpha_selection=selection, allow_unpinned="true", device="cuda",
                                    encode_shards=shards, sweep_shards=shards, library="x")
        for ctx in deferred.values():
            extra = merged_arm(ctx, 0.75, 0.25, "grid")
            for p in CHOSEN:
                rows[p] += extra.get(p, [])
        for p in PROCESSES:
            out[p] += rows[p]
    return out


ROWS = planned_rows()


def hostile_json(base: dict) -> dict:
    """A JSON object as the planner writes one (row.recipe, row.arm), with hostile values and keys added."""
    return {**base, "hostile": HOSTILE, **{f"hostile {i}: {h}": h for i, h in enumerate(HOSTILE)}}


def make_case(process: str, template: Path, hostile: bool) -> dict:
    """The binding of one task whose planner-made fields are hostile (or plain: the reference run), and what each
    of them must arrive as: the option tokens and the JSON object of each here-document's file."""
    mod = MODULES[process]
    row = dict(ROWS[process][0]) if process != "PLAN" else None
    tokens = shlex.split(row["options"]) + HOSTILE if row else []
    objects: dict[str, object] = {}
    if row:
        row["options"] = Options(tokens if hostile else [MARKER]).text()
        for field in ("recipe", "arm"):
            if field in row:
                objects[f"row.{field}"] = hostile_json(json.loads(row[field])) if hostile else {"plain": True}
                row[field] = json.dumps(objects[f"row.{field}"], sort_keys=True)  # as tasks.py writes them
    params = {k: "".join(HOSTILE) + k for k in PLAN_KEYS} if hostile else {k: k for k in PLAN_KEYS}
    objects["plan_params"] = params
    binding = task_binding(mod, row, ext_args="", plan_params=GroovyJson(params))  # JSON by Groovy, as main.nf
    return {"process": process, "template": template, "binding": binding, "tokens": tokens, "objects": objects}


def stub_bin(folder: Path) -> Path:
    """An executable named like every bin script: it appends [its name, *its argv] as a JSON line to
    $MERGEIR_ARGV_LOG and does nothing else."""
    folder.mkdir()
    for name in BIN_SCRIPTS:
        stub = folder / name
        stub.write_text(f"#!{sys.executable} -IS\nimport json, os, sys\n"
                        "with open(os.environ['MERGEIR_ARGV_LOG'], 'a', encoding='utf-8') as f:\n"
                        "    f.write(json.dumps([os.path.basename(sys.argv[0]), *sys.argv[1:]]) + '\\n')\n")
        stub.chmod(0o755)
    return folder


def run_script(tmp: Path, script: str, binding: dict, bin_dir: Path) -> dict:
    """Run a rendered script as a task does (bash -ue in its work folder, the staged inputs there) with the stub bin
    scripts on PATH: the calls they recorded, the files the task wrote and the here-documents' files."""
    tmp.mkdir()
    work, home, log = tmp / "work", tmp / "home", tmp / "argv.log"
    work.mkdir(), home.mkdir(), log.touch()
    for value in binding.values():  # the staged inputs: folders of the stage names
        for name in (value,) if isinstance(value, PurePosixPath) else value if isinstance(value, tuple) else ():
            (work / name).mkdir(parents=True)
    before = {p for p in work.rglob("*")}
    (tmp / ".command.sh").write_text(script, encoding="utf-8")
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(home), "LC_ALL": "C.UTF-8",
           "MERGEIR_ARGV_LOG": str(log)}
    p = subprocess.run(["bash", "-ue", str(tmp / ".command.sh")], cwd=work, env=env, capture_output=True, text=True,
                       timeout=120)
    assert not [q for q in tmp.rglob("*") if "PWNED" in q.name], f"a value ran as a command:\n{script}"
    assert p.returncode == 0, f"the rendered script failed (exit {p.returncode}):\n{script}\n{p.stderr}"
    calls = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    written = sorted(q.relative_to(work).as_posix() for q in set(work.rglob("*")) - before)
    return {"calls": calls, "written": written, "work": work}


def expected_calls(reference: list[list[str]], tokens: list[str]) -> list[list[str]]:
    """The reference run's calls, each plain option list (MARKER) replaced by the hostile tokens."""
    return [[t for a in call for t in (tokens if a == MARKER else [a])] for call in reference]


def check_case(tmp: Path, case: dict, reference: dict, script: str, plain_script: str) -> None:
    template = case["template"].read_text(encoding="utf-8")
    bin_dir = stub_bin(tmp / "bin")
    got = run_script(tmp / "hostile", script, case["binding"], bin_dir)
    plain = run_script(tmp / "plain", plain_script, reference["binding"], bin_dir)
    assert len(plain["calls"]) == len(re.findall(r"^\w+\.py ", template, re.M)), plain["calls"]
    if "${row.options}" in template:
        assert sum(a == MARKER for c in plain["calls"] for a in c) == template.count("${row.options}")
        assert any(set(HOSTILE) <= set(c) for c in got["calls"]), f"a hostile token did not arrive:\n{script}"
    assert got["calls"] == expected_calls(plain["calls"], case["tokens"]), \
        f"{case['template'].name}: the argv differs from the intended tokens\n{script}"
    assert got["written"] == plain["written"], f"{case['template'].name}: a value changed which files were written"
    docs = heredocs(template)
    rendered_docs = heredocs(script)
    assert [(f, d) for f, d, _ in rendered_docs] == [(f, d) for f, d, _ in docs]
    for (file, delimiter, body), (_, _, rendered_body) in zip(docs, rendered_docs):
        name = body.strip()[2:-1]  # the body is one substitution: ${row.recipe}, ${row.arm} or ${plan_params}
        assert body == "${%s}\n" % name and name in case["objects"], (case["template"], body)
        # JSON escapes a newline: the value is one line, the delimiter line right after it ends the here-document
        assert rendered_body.count("\n") == 1 and delimiter not in rendered_body.splitlines(), script
        assert json.loads(rendered_body) == case["objects"][name]
        assert json.loads((got["work"] / file).read_text(encoding="utf-8")) == case["objects"][name], file


PAIRS = [(p, kind) for p, m in sorted(MODULES.items()) for kind in ("script", "stub")
         if kind == "script" or m.stub != m.script]


@pytest.fixture(scope="module")
def rendered():
    """(process, kind) -> (hostile case, plain case, hostile script, plain script): one JVM renders them all."""
    cases = {(p, kind, hostile): make_case(p, getattr(MODULES[p], kind), hostile)
             for p, kind in PAIRS for hostile in (True, False)}
    texts = dict(zip(cases, render_templates([(c["template"], c["binding"]) for c in cases.values()])))
    return {(p, kind): (cases[(p, kind, True)], cases[(p, kind, False)], texts[(p, kind, True)],
                        texts[(p, kind, False)]) for p, kind in PAIRS}


@pytest.mark.parametrize("process, kind", PAIRS)
def test_hostile_values_arrive_as_the_intended_argv(rendered, tmp_path, process, kind):
    check_case(tmp_path, *rendered[(process, kind)])


def test_the_hostile_set_is_hostile():
    assert DELIMITERS == ["MERGEIR_ARM", "MERGEIR_PARAMS", "RECIPE"]
    for h in ("'", '"', "$(touch PWNED)", "`touch PWNED`", "a b", "\n", ";", "&&", "\\", "$HOME", "\nRECIPE\n"):
        assert h in HOSTILE
    assert all(shlex.split(Options([h]).text()) == [h] for h in HOSTILE)  # the one quoting function round-trips
    # a delimiter line inside a JSON string cannot form a line: JSON escapes the newline
    assert all("\n" not in json.dumps(h) for h in HOSTILE) and "\n" not in json.dumps(hostile_json({}))


# what a template may substitute: how each one is made safe for the shell
QUOTED = {"row.options"}  # by Options.text
HEREDOC = {"row.recipe", "row.arm", "plan_params"}  # JSON, the whole body of a quoted here-document
PLANNED_NAMES = {"row.id", "row.train_file"}  # plain names (PLAIN), checked below
ENGINE = {"task.process", "task.attempt", "task.ext.args ?: ''"}  # the engine's; ext.args: the user's config


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda t: t.relative_to(t.parents[1]).as_posix())
def test_every_substitution_is_quoted_or_a_plain_name(template):
    text = template.read_text(encoding="utf-8")
    staged = {n for m in MODULES.values() if template in (m.script, m.stub) for n, s, _ in m.inputs if s}
    for m in re.finditer(r"\$\{([^}]*)\}", text):
        name = m.group(1)
        assert name in QUOTED | HEREDOC | PLANNED_NAMES | ENGINE | staged, \
            f"{template.name}: ${{{name}}} is neither quoted by Options.text, nor a here-document's JSON, nor a " \
            f"plain name"
        if name in HEREDOC:
            line_start = text.rfind("\n", 0, m.start()) + 1
            assert text[line_start:m.start()] == "" and text[m.end()] == "\n", f"{template.name}: ${{{name}}} " \
                "must be a here-document's whole body"
            assert any(body == f"${{{name}}}\n" for _, _, body in heredocs(text)), template.name
    # every here-document's delimiter is quoted: the shell expands nothing in its body
    assert all(re.fullmatch(r"'\w+'", d) for d in re.findall(r"<<-?\s*(\S+)", text)), template.name


def test_planned_names_are_plain():
    """row.id and row.train_file reach the shell as they are: every planned one is a plain name."""
    for process, rows in ROWS.items():
        for row in rows:
            assert PLAIN.fullmatch(row["id"]), (process, row["id"])
            if "train_file" in row:
                assert PLAIN.fullmatch(row["train_file"]), (process, row["train_file"])


@pytest.mark.parametrize("value", [h for h in HOSTILE if not PLAIN.fullmatch(h)])
def test_the_planner_refuses_an_id_that_is_not_a_plain_name(value):
    ctx = {"encode": [], "collection": "c", "collection_id": "collection-c", "library": "x", "encode_shards": 1}
    with pytest.raises(MergeirError, match="is not a plain file name"):
        encode_rows({}, ctx, "model-m", None, value)
