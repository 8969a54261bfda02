"""The pipeline's packaging stays in step with the project: image pins = pyproject pins, one version string,
every base image pinned by digest, non-root images, a schema entry for every param."""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STAGES = sorted(p.parent.name for p in (ROOT / "containers").glob("*/requirements.txt"))


def _pins(lines) -> dict[str, str]:
    out = {}
    for ln in lines:
        m = re.match(r"^\s*['\"]?([A-Za-z0-9_.\-]+)==([^'\";\s]+)", ln)
        if m:
            out[m.group(1).lower().replace("_", "-")] = m.group(2)
    return out


def _pyproject_pins() -> dict[str, str]:
    text = (ROOT / "pyproject.toml").read_text()
    return _pins(re.findall(r'"([^"]+==[^"]+)"', text))


def test_stages():
    assert STAGES == ["download", "encode", "merge", "report", "train"]


@pytest.mark.parametrize("stage", STAGES)
def test_image_pins_match_pyproject(stage):
    req = _pins((ROOT / "containers" / stage / "requirements.txt").read_text().splitlines())
    assert req, stage
    project = _pyproject_pins()
    for name, version in req.items():
        if name in project:
            assert version == project[name], f"{stage}: {name}=={version}, pyproject pins {project[name]}"
    # every requirement is pinned exactly
    for ln in (ROOT / "containers" / stage / "requirements.txt").read_text().splitlines():
        if ln.strip() and not ln.startswith("#"):
            assert "==" in ln, f"{stage}: unpinned {ln}"


def test_dockerfile_rules():
    text = (ROOT / "containers" / "Dockerfile").read_text()
    froms = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", text, re.M)
    external = [ref for ref, _ in froms if "/" in ref]  # image references; the other FROMs name earlier stages
    # each CUDA base is the default of the BASE build arg (CI builds the same steps on a local Debian base)
    assert external and all(re.search(r"^\$\{BASE:-docker\.io/nvidia/cuda:\S+@sha256:[0-9a-f]{64}\}$", f)
                            for f in external), external
    assert set(STAGES) <= {alias for _, alias in froms if alias}
    assert re.search(r"^USER\s+(?!root|0\b)\S+", text, re.M), "runs as root"
    for cmd in re.findall(r"pip install[^\n]*", text):
        assert "--no-cache-dir" in cmd, cmd


def test_one_version_everywhere():
    version = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)
    config = (ROOT / "nextflow.config").read_text()
    assert re.search(rf"^\s*version\s*=\s*'{re.escape(version)}'", config, re.M)
    containers = (ROOT / "conf" / "containers.config").read_text()
    images = re.findall(r"container = '([^']+)' // image: (\w+)", containers)
    assert sorted(stage for _, stage in images) == STAGES
    for ref, stage in images:
        assert f":{version}" in ref and stage in ref, ref


def test_schema_covers_config_params():
    config = (ROOT / "nextflow.config").read_text()
    block = re.search(r"^params \{(.*?)^\}", config, re.S | re.M).group(1)
    # the params block, and the params assigned only where the command line has not (params.x = params.x ?: ...)
    params = set(re.findall(r"^\s*(\w+)\s*=", block, re.M)) | set(re.findall(r"^params\.(\w+)\s*=", config, re.M))
    schema = json.loads((ROOT / "nextflow_schema.json").read_text())
    props = {k for g in schema["$defs"].values() for k in g["properties"]}
    assert params == props
    assert {"dataset", "settings", "alpha_selection", "outdir", "experiment"} <= params
    used = set(re.findall(r"params\.(\w+)", "".join(p.read_text() for p in [ROOT / "main.nf", *ROOT.glob("modules/local/*.nf"),
                                                                             *ROOT.glob("conf/*.config")])))
    assert used <= params, used - params
