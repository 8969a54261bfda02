"""Every Nextflow module calls a bin/ command that exists, with options that command really has.

The typer apps are introspected with `typer.main.get_command` (nothing is executed); the module scripts are
read as text: the `script:` section (its Groovy `def` lines included, where optional flags are built) and
the `stub:` section, which must create every output the process declares.
"""

import importlib.util
import re
import sys
from functools import lru_cache
from pathlib import Path

import pytest
import typer

ROOT = Path(__file__).resolve().parents[1]
MODULES = sorted((ROOT / "modules" / "local").glob("*.nf"))
BIN = ROOT / "bin"


@lru_cache(maxsize=None)
def bin_command(script: str):
    path = BIN / script
    assert path.is_file(), f"bin/{script} does not exist"
    if str(BIN) not in sys.path:
        sys.path.insert(0, str(BIN))  # for `import _bootstrap`
    spec = importlib.util.spec_from_file_location(f"bin_{path.stem}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # defines the typer app; `run(app)` is behind __main__
    return typer.main.get_command(mod.app)


# typer may build its commands with its own vendored click, so parameters are told apart by their kind,
# not by isinstance against the click package
def _is(p, kind: str) -> bool:
    return getattr(p, "param_type_name", None) == kind


def options(cmd) -> set[str]:
    return {o for p in cmd.params if _is(p, "option") for o in (*p.opts, *p.secondary_opts)}


def section(text: str, name: str, nxt: tuple[str, ...]) -> str:
    m = re.search(rf"^\s*{name}:\s*$(.*?)(?=^\s*(?:{'|'.join(nxt)}):\s*$|\Z)", text, re.S | re.M)
    assert m, f"no {name}: section"
    body = m.group(1)
    return body[: body.rfind("}")] if name == "stub" else body  # drop the process's closing brace


def shell_lines(script: str) -> list[str]:
    """The shell lines of the script's triple-quoted string, backslash continuations joined."""
    m = re.search(r'"""(.*?)"""', script, re.S)
    assert m, "script has no triple-quoted command"
    body = re.sub(r"\\\\\n\s*", " ", m.group(1))  # Groovy '\\' + newline is a shell line continuation
    return [ln.strip() for ln in body.splitlines() if ln.strip()]


def calls(script: str) -> list[tuple[str, list[str]]]:
    """(script name, tokens after it) for each bin/*.py call; ${...} interpolations become one token."""
    out = []
    for ln in shell_lines(script):
        ln = re.sub(r"'\$\{[^}]*\}'|\$\{[^}]*\}", "VALUE", ln)
        tokens = ln.split()
        if tokens and tokens[0].endswith(".py"):
            out.append((tokens[0], tokens[1:]))
    return out


def module_params(text: str) -> dict:
    proc = re.search(r"^process\s+(\w+)\s*\{", text, re.M)
    return {"name": proc.group(1) if proc else None}


@pytest.mark.parametrize("module", MODULES, ids=lambda p: p.stem)
def test_module_calls_existing_bin_with_real_options(module):
    text = module.read_text()
    assert len(re.findall(r"^process\s+\w+", text, re.M)) == 1, "one process per file"
    name = module_params(text)["name"]
    assert name.lower() == module.stem, f"{module.name} holds process {name}"
    script = section(text, "script", ("stub",))
    found = calls(script)
    assert found, "the script calls no bin/ command"
    # optional flags assembled in Groovy (`def x = cond ? '--flag' : ''`) belong to the main command
    groovy_flags = re.findall(r"""['"](--[a-z][a-z0-9-]*)""", script.split('"""')[0])
    for i, (script_name, args) in enumerate(found):
        cmd = bin_command(script_name)
        if hasattr(cmd, "commands"):  # a group: the first token is the subcommand
            assert args and args[0] in cmd.commands, f"{script_name}: unknown subcommand {args[:1]}"
            cmd, args = cmd.commands[args[0]], args[1:]
        flags = [a.split("=")[0] for a in args if a.startswith("--")]
        if i == 0:
            flags += groovy_flags
        unknown = sorted(set(flags) - options(cmd))
        assert not unknown, f"{module.name}: {script_name} {cmd.name} has no {unknown}"
        required = {p.opts[0] for p in cmd.params if _is(p, "option") and p.required}
        missing = sorted(required - set(flags))
        assert not missing, f"{module.name}: {script_name} {cmd.name} call lacks required {missing}"
        n_args = sum(1 for p in cmd.params if _is(p, "argument") and p.required)
        positional = [a for a, prev in zip(args, [None] + args) if not a.startswith("--")
                      and not (prev or "").startswith("--")]
        assert len(positional) >= n_args, f"{module.name}: {script_name} {cmd.name} needs {n_args} argument(s)"
    assert any(s == "plan.py" and a[:1] == ["versions"] for s, a in found), "no versions.yml written"


def _declared_outputs(text: str) -> list[str]:
    out = section(text, "output", ("when", "script", "stub", "exec"))
    names = []
    for m in re.finditer(r"""path\(?\s*(['"])(.+?)\1""", out):
        names.append(m.group(2))
    return names


@pytest.mark.parametrize("module", MODULES, ids=lambda p: p.stem)
def test_stub_creates_every_output(module):
    text = module.read_text()
    stub = section(text, "stub", ())
    for name in _declared_outputs(text):
        # a glob or an interpolated name must appear as written (mkdir/touch of the same expression)
        literal = name.replace("*", "1") if "*" in name else name
        head = literal.split("/")[0]
        assert name in stub or head in stub, f"{module.name}: stub does not create {name}"


def test_every_module_is_included_by_main():
    main = (ROOT / "main.nf").read_text()
    for module in MODULES:
        name = module_params(module.read_text())["name"]
        assert re.search(rf"include \{{\s*{name}(\s+as\s+\w+)?\s*\}} from './modules/local/{module.stem}'", main), name


def test_every_process_has_a_label_and_an_image():
    containers = (ROOT / "conf" / "containers.config").read_text()
    base = (ROOT / "conf" / "base.config").read_text()
    selectors = [s.split("|") for s in re.findall(r"withName: '([^']+)'", containers)]
    covered = {n for s in selectors for n in s}
    main = (ROOT / "main.nf").read_text()
    aliases = dict(re.findall(r"include \{ (\w+) as (\w+) \}", main))
    for module in MODULES:
        text = module.read_text()
        name = module_params(text)["name"]
        label = re.search(r"^\s*label '(\w+)'", text, re.M)
        assert label and f"withLabel: {label.group(1)}" in base, f"{name}: label missing from conf/base.config"
        assert name in covered, f"{name} has no image in conf/containers.config"
        for original, alias in aliases.items():
            if original == name:
                assert alias in covered, f"{alias} (alias of {name}) has no image"


def test_gpu_stages_halve_batch_on_retry():
    for stem in ("encode", "sweep", "prepare_training"):
        text = (ROOT / "modules" / "local" / f"{stem}.nf").read_text()
        assert "intdiv(1 << (task.attempt - 1))" in text and "--batch-size ${batch_size}" in text, stem
    base = (ROOT / "conf" / "base.config").read_text()
    assert re.search(r"errorStrategy\s*=.*\b75\b.*'retry'", base)
