"""The image check (scripts/check_images.py) reads containers/Dockerfile right and catches a mixed CUDA stack in
pip's install reports. Offline: the reports are built here in pip's format; the networked run is scripts/test.sh."""

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("check_images", ROOT / "scripts" / "check_images.py")
ci = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ci)


def _item(name, version, requires=(), requested=False, extras=()):
    return {"metadata": {"name": name, "version": version, "requires_dist": list(requires)},
            "requested": requested, "requested_extras": list(extras)}


def _report(*items):
    return {"install": list(items), "environment": {"python_version": "3.12"}}


def test_dockerfile_offers_every_stage_for_each_cuda_major():
    majors, stages = ci.parse_dockerfile(ci.DOCKERFILE.read_text())
    build_sh = (ROOT / "containers" / "build.sh").read_text()
    assert sorted(stages) == sorted(re.search(r"^ALL=\(([^)]*)\)", build_sh, re.M).group(1).split())
    assert sorted(stages) == sorted(p.parent.name for p in (ROOT / "containers").glob("*/requirements.txt"))
    assert stages["train"] == "devel" and {stages[s] for s in stages if s != "train"} == {"runtime"}
    assert sorted(majors) == [12, 13]
    for m, info in majors.items():
        assert info["flavours"] == {"runtime", "devel"} and info["ubuntu"] in ci.UBUNTU
    # CUDA 12 takes torch from PyTorch's CUDA 12 index (PyPI's torch is the CUDA 13 build); CUDA 13 from PyPI
    assert re.fullmatch(r"https://download\.pytorch\.org/whl/cu12\d", majors[12]["index"])
    assert majors[13]["index"] == ""


def test_platform_tags_list_every_manylinux_tag_up_to_glibc():
    args = ci.platform_args(39)
    tags = args[1::2]
    assert set(args[0::2]) == {"--platform"}
    assert tags[0] == "manylinux_2_39_x86_64" and "manylinux_2_5_x86_64" in tags and "manylinux_2_40_x86_64" not in tags
    assert len([t for t in tags if t.startswith("manylinux_2_")]) == 35
    assert {"manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64", "linux_x86_64"} <= set(tags)
    assert "manylinux2014_x86_64" not in ci.platform_args(16)[1::2]


def test_sdist_only_packages_are_left_out_of_the_binary_check():
    train = ci.requirements("train")
    assert not any(r.startswith("deepspeed") for r in train)
    assert any(r.startswith("torch==") for r in train)
    assert "deepspeed" in (ROOT / "containers" / "train" / "requirements.txt").read_text()


def test_images_carry_a_cuda_neutral_faiss():
    """Search is faiss IndexFlatIP on the CPU: a faiss-gpu-cuNN wheel would bring a second CUDA stack."""
    for stage in ("encode", "train"):
        reqs = ci.requirements(stage)
        assert any(r.startswith("faiss-cpu==") for r in reqs) and not any(r.startswith("faiss-gpu") for r in reqs)


# torch 2.13.0 from PyPI as pip reports it: CUDA 13 libraries, new-style names without -cuNN, versioned by library
CUDA13_TORCH = [
    _item("torch", "2.13.0", ["cuda-toolkit[cublas,cudart]==13.0.3; platform_system == 'Linux'",
                              "nvidia-cudnn-cu13==9.20.0.48; platform_system == 'Linux'", "sympy>=1.13"],
          requested=True),
    _item("cuda-toolkit", "13.0.3.0", ["nvidia-cublas==13.*; extra == 'cublas'",
                                       "nvidia-cuda-runtime==13.*; extra == 'cudart'"]),
    _item("nvidia-cublas", "13.1.1.3"),
    _item("nvidia-cuda-runtime", "13.0.96"),
    _item("nvidia-cufft", "12.0.0.61"),  # CUDA 13's cuFFT: library version 12, still CUDA 13
    _item("nvidia-cudnn-cu13", "9.20.0.48"),
    _item("sympy", "1.14.0"),
]


def test_cuda13_set_is_one_major():
    majors = ci.cuda_majors(_report(*CUDA13_TORCH))
    assert majors == {"cuda-toolkit": 13, "nvidia-cublas": 13, "nvidia-cuda-runtime": 13, "nvidia-cufft": 13,
                      "nvidia-cudnn-cu13": 13}
    assert ci.mixed(majors, 13) == []
    assert len(ci.mixed(majors, 12)) == 5


def test_faiss_gpu_cu12_beside_cuda13_torch_is_caught():
    """The bug this check exists for: faiss-gpu-cu12 pulling a CUDA 12 stack into a CUDA 13 image."""
    faiss = [_item("faiss-gpu-cu12", "1.14.1.post1", ["nvidia-cublas-cu12>=12.1", "numpy"], requested=True),
             _item("nvidia-cublas-cu12", "12.9.3.13"), _item("numpy", "2.5.5")]
    rep = _report(*CUDA13_TORCH, *faiss)
    assert ci.mixed(ci.cuda_majors(rep), 13) == ["nvidia-cublas-cu12 (CUDA 12)"]
    # a CUDA 12 image checked without torch's wheel: what does not come through torch must be CUDA 12
    around = ci.cuda_majors(rep, exclude_through="torch")
    assert around == {"nvidia-cublas-cu12": 12} and ci.mixed(around, 12) == []
    assert ci.mixed(around, 13) == ["nvidia-cublas-cu12 (CUDA 12)"]


def test_walk_around_torch_follows_extras_and_markers():
    rep = _report(
        *CUDA13_TORCH,
        _item("tool", "1.0", ["cuda-toolkit[cufft]==13.0.3; extra == 'gpu'", "nvidia-cufft; python_version < '3'"],
              requested=True, extras=["gpu"]),
    )
    rep["install"][1]["metadata"]["requires_dist"].append("nvidia-cufft==12.*; extra == 'cufft'")
    # tool[gpu] -> cuda-toolkit[cufft] -> nvidia-cufft (the python_version < '3' edge does not count); not cuBLAS
    assert ci.cuda_majors(rep, exclude_through="torch") == {"cuda-toolkit": 13, "nvidia-cufft": 13}


@pytest.mark.parametrize("version,major", [("2.13.0+cu128", 12), ("2.13.0+cu130", 13), ("2.13.0+cu118", 11)])
def test_torch_local_label_names_its_cuda_major(version, major):
    assert ci.cuda_majors(_report(_item("torch", version, requested=True)))["torch"] == major


# ---------------------------------------------------------------- layers, base and locks (containers/build.sh)

STAGES = ["download", "merge", "train", "encode", "report"]


def _pins(path: Path) -> dict[str, str]:
    out = {}
    for ln in path.read_text().splitlines():
        ln = ln.split("#", 1)[0].strip()
        if "==" in ln:
            name, version = ln.split("==", 1)
            out[ci._name(name)] = version.strip()
    return out


def _shared_layer_of() -> dict[str, str]:
    """stage -> the shared layer it builds on (`FROM python|torch AS <stage>-shared`)."""
    text = ci.DOCKERFILE.read_text()
    return dict((s, layer) for layer, s in re.findall(r"^FROM (python|torch) AS (\w+)-shared$", text, re.M))


def test_every_stage_builds_on_a_shared_layer():
    text = ci.DOCKERFILE.read_text()
    assert _shared_layer_of() == {"download": "python", "merge": "torch", "train": "torch", "encode": "torch",
                                  "report": "python"}
    assert re.search(r"^FROM \$\{STAGE\} AS python$", text, re.M)
    assert re.search(r"^FROM python AS torch$", text, re.M)
    assert re.search(r"^FROM \$\{STAGE\}-shared$", text, re.M)
    # the shared stages must not depend on STAGE, or no two stages would share them
    shared = text.split("FROM ${STAGE} AS python", 1)[1].split("FROM ${STAGE}-shared", 1)[0]
    assert "ARG STAGE" not in shared and "${STAGE}" not in shared


@pytest.mark.parametrize("stage", STAGES)
def test_shared_layers_are_part_of_each_stage_set(stage):
    """A stage's requirements.txt stays its whole top-level set (check_images.py resolves it); the shared layers
    only pre-install part of it, at the same pins."""
    want = _pins(ROOT / "containers" / stage / "requirements.txt")
    layers = ["python"] + (["torch"] if _shared_layer_of()[stage] == "torch" else [])
    for layer in layers:
        for name, version in _pins(ROOT / "containers" / "layers" / f"{layer}.txt").items():
            assert want.get(name) == version, f"layers/{layer}.txt pins {name}=={version}, {stage}: {want.get(name)}"


def test_torch_layer_holds_torch_and_python_layer_does_not():
    assert "torch" in _pins(ROOT / "containers" / "layers" / "torch.txt")
    assert "torch" not in _pins(ROOT / "containers" / "layers" / "python.txt")
    for stage, layer in _shared_layer_of().items():
        has_torch = "torch" in _pins(ROOT / "containers" / stage / "requirements.txt")
        assert has_torch == (layer == "torch"), stage


def test_base_is_a_build_arg_defaulting_to_pinned_cuda_images():
    text = ci.DOCKERFILE.read_text()
    bases = re.findall(r"^FROM (\S+) AS cuda(\d+)-(\w+)$", text, re.M)
    assert len(bases) == 4
    for ref, major, flavour in bases:
        m = re.fullmatch(r"\$\{BASE:-docker\.io/nvidia/cuda:(\d+)\.[\d.]+-(\w+)-ubuntu[\d.]+@sha256:[0-9a-f]{64}\}", ref)
        assert m and m.group(1) == major and m.group(2) == flavour, ref
    assert re.search(r"^ARG BASE=$", text, re.M)


def test_pip_goes_through_the_wheelhouse_mount_and_the_ca_secret():
    text = ci.DOCKERFILE.read_text()
    runs = re.findall(r"^RUN (.*?)(?<!\\)$", text, re.M | re.S)
    installs = [r for r in runs if "mergeir-pip-install" in r]
    assert len(installs) == 3
    for r in installs:
        assert "--mount=type=cache,id=mergeir-wheels,target=/root/.cache/mergeir-wheels" in r
        assert "--mount=type=secret,id=pip-ca" in r
    helper = (ROOT / "containers" / "pip-install.sh").read_text()
    assert "/run/secrets/pip-ca" in helper and "--no-index" in helper
    steps = "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("#"))
    assert "ca-certificates.crt" not in steps and "PIP_CERT=" not in steps.replace("export PIP_CERT=", "")


def _locks():
    return sorted((ROOT / "containers").glob("*/requirements*.lock"))


def test_committed_locks_hold_their_stage_pins():
    locks = _locks()
    if not locks:
        pytest.skip("no committed lock (containers/build.sh writes them)")
    for lock in locks:
        head = [ln for ln in lock.read_text().splitlines() if ln.startswith("#")]
        assert any(ln.startswith("# built with: CUDA_MAJOR=") for ln in head), lock
        assert any(re.fullmatch(r"# inputs sha256: [0-9a-f]{64}", ln) for ln in head), lock
        got = _pins(lock)
        for name, version in _pins(lock.parent / "requirements.txt").items():
            assert got.get(name) == version, f"{lock.relative_to(ROOT)}: {name} {got.get(name)}, pinned {version}"
        assert "mergeir" not in got


def inputs_hash(stage: str, built_with: str) -> str:
    """containers/build.sh's inputs_hash: what a lock was resolved from."""
    import hashlib
    parts = []
    for f in ["constraints.txt", "containers/layers/python.txt", "containers/layers/torch.txt",
              f"containers/{stage}/requirements.txt"]:
        parts.append(f"== {f}\n" + (ROOT / f).read_text())
    return hashlib.sha256(("".join(parts) + built_with + "\n").encode()).hexdigest()


def test_committed_locks_are_up_to_date():
    """A lock whose inputs changed is no longer what build.sh would build: rebuild (containers/ci.sh) and commit."""
    locks = _locks()
    if not locks:
        pytest.skip("no committed lock (containers/build.sh writes them)")
    for lock in locks:
        head = lock.read_text().splitlines()
        built_with = next(ln for ln in head if ln.startswith("# built with: "))
        recorded = next(ln for ln in head if ln.startswith("# inputs sha256: ")).split()[-1]
        assert inputs_hash(lock.parent.name, built_with) == recorded, (
            f"{lock.relative_to(ROOT)} is stale: its requirements, containers/layers/ or constraints.txt changed; "
            "rebuild with containers/build.sh (CI's: bash containers/ci.sh --build-only) and commit the lock")
