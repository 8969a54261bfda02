"""The process -> script mapping a reader looks up first (main.nf's header, docs/interfaces.md) is what the
templates run: every process main.nf calls is listed once in each, with the commands of its template."""

import re
from pathlib import Path

from helpers_nextflow import command_lines, load_modules

ROOT = Path(__file__).resolve().parents[1]
MODULES = load_modules()


def _template_commands(process: str) -> list[str]:
    """Each template line's script and subcommand (the words before the first option or `${...}`), the
    versions line and the files a template writes with a here-document (recipe.json, params.json, arm.json) left out."""
    text = MODULES[process].script.read_text(encoding="utf-8")
    lines = [ln for ln in command_lines(text) if not ln.startswith("versions.py")]
    return [" ".join(w for w in ln.split()[:next((i for i, w in enumerate(ln.split()) if "$" in w or w.startswith("-")), None)])
            for ln in lines]


def _documented() -> dict[str, tuple[str, list[str]]]:
    text = (ROOT / "docs" / "interfaces.md").read_text(encoding="utf-8")
    section = text.split("## Processes and the scripts they run", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for m in re.finditer(r"^\| ([A-Z_]+) \| `([a-z_]+\.nf)` \| (.+) \|$", section, re.M):
        assert m.group(1) not in rows, f"{m.group(1)} listed twice"
        rows[m.group(1)] = (m.group(2), re.findall(r"`([^`]+)`", m.group(3)))
    return rows


def test_docs_table_lists_every_process_with_its_module_and_commands():
    documented = _documented()
    assert sorted(documented) == sorted(MODULES)
    for process, (module, commands) in documented.items():
        assert MODULES[process].path.name == module, process
        fixed = _template_commands(process)
        assert len(commands) == len(fixed), (process, commands, fixed)
        for said, run in zip(commands, fixed):
            assert said.startswith(run), f"{process}: documented `{said}`, template runs `{run} ...`"


def test_main_nf_header_says_the_same():
    header = (ROOT / "main.nf").read_text(encoding="utf-8").split("*/", 1)[0]
    said = {m.group(1): m.group(2).split(", then ")
            for m in re.finditer(r"^ \*   ([A-Z_]+) +(.+)$", header, re.M)}
    assert said == {p: commands for p, (_, commands) in _documented().items()}
