"""The library's layout (docs/architecture.md): one package per stage, layered, no import circles, and bin/ scripts
that use only what a package's __init__ exports. Read from the source with ast: nothing is imported."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIB = ROOT / "src" / "mergeir"

# the layers, bottom up: a module may import its own layer and those below, never one above
LAYERS = {
    "": 0, "errors": 0, "io": 0, "fetch": 0, "provenance": 0,  # "": mergeir/__init__.py (the version)
    "models": 1, "collections": 1,
    "merging": 2, "encoding": 2,
    "evaluation": 3,
    "training": 4,
    "experiment": 5,
    "sweep": 6,
    "report": 7, "pipeline": 7,
    "cli": 8,
}
SHARED = ("errors", "io", "fetch", "provenance", "cli")  # all that may sit at the top besides the stage packages


def _name(path: Path) -> str:
    parts = list(path.relative_to(LIB.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_name(p): p for p in sorted(LIB.rglob("*.py"))}


def _unit(module: str) -> str:
    return module.split(".")[1] if "." in module else ""


def _imports(module: str) -> set[str]:
    """The mergeir modules `module` imports (function-level imports included), each as the module file it loads."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            targets = [f"{target}.{a.name}" if f"{target}.{a.name}" in MODULES else target for a in node.names]
        else:
            continue
        out |= {t for t in targets if t.split(".")[0] == "mergeir"}
    return out


def test_the_top_level_holds_only_the_shared_modules_and_the_stage_packages():
    top = {p.stem for p in LIB.glob("*.py")} - {"__init__"}
    assert top <= set(SHARED), sorted(top - set(SHARED))
    assert len(top) <= 5
    packages = {p.name for p in LIB.iterdir() if (p / "__init__.py").is_file()}
    assert packages | top == set(LAYERS) - {""}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_a_higher_layer(module):
    own = LAYERS[_unit(module)]
    higher = sorted(t for t in _imports(module) if LAYERS[_unit(t)] > own)
    assert not higher, f"{module} (layer {own}) imports {higher}"


def test_no_import_circles():
    """Between modules; a submodule importing a sibling (which runs its package's __init__) is no circle."""
    graph = {m: {t for t in _imports(m) if t in MODULES} for m in MODULES}
    for m, targets in graph.items():  # importing mergeir.x.y runs mergeir.x's __init__ first, from outside x
        graph[m] |= {t.rsplit(".", 1)[0] for t in targets
                     if t.count(".") == 2 and not (m + ".").startswith(t.rsplit(".", 1)[0] + ".")}
    state: dict[str, int] = {}

    def visit(m, path):
        state[m] = 1
        for t in graph[m]:
            if state.get(t) == 1:
                raise AssertionError(" -> ".join(path[path.index(t):] + [t]) if t in path else f"{m} -> {t}")
            if t not in state:
                visit(t, path + [t])
        state[m] = 2

    for m in graph:
        if m not in state:
            visit(m, [m])


def _exported(package: str) -> set[str]:
    tree = ast.parse(MODULES[package].read_text(encoding="utf-8"))
    return next(set(ast.literal_eval(n.value)) for n in tree.body if isinstance(n, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == "__all__" for t in n.targets))


@pytest.mark.parametrize("package", sorted(m for m, p in MODULES.items() if p.name == "__init__.py" and "." in m
                                           and _unit(m) not in SHARED))
def test_each_stage_package_says_what_it_does_and_names_its_public_functions(package):
    tree = ast.parse(MODULES[package].read_text(encoding="utf-8"))
    doc = ast.get_docstring(tree) or ""
    functions = sorted(n for n in _exported(package) if n[0].islower())
    assert doc and functions
    assert not [f for f in functions if f"`{f}`" not in doc], f"{package}'s docstring does not name them"


@pytest.mark.parametrize("script", sorted(p.name for p in (ROOT / "bin").glob("*.py") if p.name != "_bootstrap.py"))
def test_bin_scripts_import_only_what_a_package_exports(script):
    tree = ast.parse((ROOT / "bin" / script).read_text(encoding="utf-8"))
    wrong = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "mergeir":
            module = node.module
            if module.count(".") != 1 or module not in MODULES:
                wrong.append(module)
            elif _unit(module) not in SHARED:
                wrong += [f"{module}.{a.name}" for a in node.names if a.name not in _exported(module)]
        elif isinstance(node, ast.Import):
            wrong += [a.name for a in node.names if a.name.split(".")[0] == "mergeir"]
    assert not wrong, f"bin/{script} imports {wrong}"
