#!/usr/bin/env python3
"""CI check of the stage images' Python sets (no image is built): for every stage of containers/Dockerfile and
every CUDA major it offers, pip resolves containers/<stage>/requirements.txt for the image's platform and Python
(binary wheels only), and the resolved set may hold CUDA libraries of that one major only.

    .venv/bin/python scripts/check_images.py [--stage encode] [--major 12] [--require-torch-index]

What it reads from containers/Dockerfile: the CUDA bases (`FROM ${BASE:-docker.io/nvidia/cuda:<ver>-<flavour>-ubuntu<NN.NN>@...}
AS cuda<M>-<flavour>`: the default of the BASE build arg), each followed by `ENV MERGEIR_TORCH_INDEX=<url>` (empty:
PyPI's torch), and the stage aliases (`FROM cuda${CUDA_MAJOR}-<flavour> AS <stage>`). Ubuntu's release gives the
image's Python and glibc; pip does not expand manylinux tags for `--platform`, so every tag up to that glibc is
listed. Each set is resolved under constraints.txt, as the images are built (containers/pip-install.sh).

Left out of the binary-only resolution: deepspeed (published as an sdist only; the train image builds it).
PyTorch's own wheel index (download.pytorch.org, where the CUDA 12 images take torch from) may be unreachable where
this runs (CI reaches PyPI only). Then, for that major, the set is checked without torch's wheel: every other
package and the dependencies not reached through torch come from the PyPI resolution, and the report says
"torch ... NOT CHECKED" on its own line; `--require-torch-index` makes that a failure.
Exit status: 0 all checked sets pass, 1 a set fails to resolve or mixes CUDA majors, 2 bad invocation.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import urllib.request
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "containers" / "Dockerfile"
CONSTRAINTS = ROOT / "constraints.txt"  # the images are built under it (containers/Dockerfile)
SDIST_ONLY = {"deepspeed"}
UBUNTU = {"24.04": ("3.12", 39), "22.04": ("3.10", 35)}  # release -> (python3's version, glibc minor)
ARCH = "x86_64"  # build.sh's default PLATFORM, linux/amd64
CUDA_NEUTRAL = {"nvidia-ml-py", "nvidia-ml-py3"}  # NVML bindings: load the driver's library, no CUDA runtime
TOOLKIT = {"cuda-toolkit", "cuda-bindings", "cuda-python"}  # CUDA's own Python packages, versioned by CUDA release


def parse_dockerfile(text: str) -> tuple[dict, dict]:
    """({major: {"ubuntu", "index", "flavours"}}, {stage: flavour}) from containers/Dockerfile."""
    majors: dict[int, dict] = {}
    stages: dict[str, str] = {}
    lines = text.splitlines()
    for i, ln in enumerate(lines):
        m = re.match(r"FROM (?:\$\{BASE:-)?(?:docker\.io/)?nvidia/cuda:[\d.]+-(\w+)-ubuntu([\d.]+)@sha256:[0-9a-f]{64}\}?"
                     r" AS cuda(\d+)-(\w+)$", ln)
        if m:
            env = re.match(r"ENV MERGEIR_TORCH_INDEX=(\S*)$", lines[i + 1] if i + 1 < len(lines) else "")
            if not env or m.group(1) != m.group(4):
                sys.exit(f"error: {DOCKERFILE}:{i + 1}: base {m.group(3)}-{m.group(4)} needs a matching flavour "
                         "and an `ENV MERGEIR_TORCH_INDEX=` line after it")
            major = majors.setdefault(int(m.group(3)), {"ubuntu": m.group(2), "index": env.group(1),
                                                        "flavours": set()})
            if (major["ubuntu"], major["index"]) != (m.group(2), env.group(1)):
                sys.exit(f"error: {DOCKERFILE}:{i + 1}: the CUDA {m.group(3)} bases disagree on Ubuntu or index")
            major["flavours"].add(m.group(4))
        s = re.match(r"FROM cuda\$\{CUDA_MAJOR\}-(\w+) AS (\w+)$", ln)
        if s:
            stages[s.group(2)] = s.group(1)
    return majors, stages


def platform_args(glibc_minor: int, arch: str = ARCH) -> list[str]:
    tags = [f"manylinux_2_{v}_{arch}" for v in range(glibc_minor, 4, -1)]
    legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}  # PEP 600 aliases
    tags += [f"{name}_{arch}" for v, name in legacy.items() if v <= glibc_minor] + [f"linux_{arch}"]
    return [a for t in tags for a in ("--platform", t)]


def requirements(stage: str) -> list[str]:
    out = []
    for ln in (ROOT / "containers" / stage / "requirements.txt").read_text().splitlines():
        ln = ln.split("#", 1)[0].strip()
        if ln and re.split(r"[=<>!~\[; ]", ln, 1)[0].lower() not in SDIST_ONLY:
            out.append(ln)
    return out


_memo: dict[tuple, Future] = {}
_memo_lock = threading.Lock()


def resolve(reqs: list[str], python: str, glibc: int, index: str | None) -> dict:
    """pip's install report for `reqs` (dry run, binary wheels only), or {"error": pip's last lines}; each
    distinct question is asked once (stages and majors share sets)."""
    key = (tuple(reqs), python, glibc, index)
    with _memo_lock:
        fut, owner = _memo.get(key), False
        if fut is None:
            fut, owner = _memo.setdefault(key, Future()), True
    if owner:
        fut.set_result(_resolve(reqs, python, glibc, index))
    return fut.result()


def _resolve(reqs: list[str], python: str, glibc: int, index: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull  # this machine's pip config (mirrors, caps) must not change the answer
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
               "--disable-pip-version-check", "--python-version", python, *platform_args(glibc),
               "--only-binary=:all:", "--report", str(report), *(["--extra-index-url", index] if index else []),
               "-c", str(CONSTRAINTS), *reqs]
        p = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if p.returncode != 0:
            tail = [ln for ln in (p.stderr + p.stdout).splitlines() if ln.startswith("ERROR")][-3:]
            return {"error": " | ".join(tail) or f"pip exited {p.returncode}"}
        return json.loads(report.read_text())


def _name(s: str) -> str:
    return re.sub(r"[-_.]+", "-", s).lower()


def cuda_majors(report: dict, exclude_through: str | None = None) -> dict[str, int | None]:
    """{package: CUDA major} for the CUDA libraries of an install report (None: major unknown). With
    `exclude_through`, only packages reachable from the requested ones without passing through that package."""
    from packaging.requirements import Requirement

    items = {_name(i["metadata"]["name"]): i for i in report["install"]}
    env = dict(python_version=report.get("environment", {}).get("python_version", "3.12"),
               sys_platform="linux", platform_system="Linux", platform_machine=ARCH, os_name="posix",
               implementation_name="cpython", platform_python_implementation="CPython")
    keep = set(items)
    if exclude_through is not None:  # walk the dependency graph from the requested packages, around torch
        todo = [(n, frozenset(i.get("requested_extras") or ())) for n, i in items.items()
                if i.get("requested") and n != exclude_through]
        keep = set()
        while todo:
            n, extras = todo.pop()
            if n in keep or n not in items:
                continue
            keep.add(n)
            for spec in items[n]["metadata"].get("requires_dist") or []:
                r = Requirement(spec)
                dep = _name(r.name)
                if dep == exclude_through or dep not in items:
                    continue
                if r.marker is None or any(r.marker.evaluate({**env, "extra": e}) for e in (extras or {""})):
                    todo.append((dep, frozenset(r.extras)))
    toolkit = items.get("cuda-toolkit")
    toolkit_major = int(toolkit["metadata"]["version"].split(".")[0]) if toolkit else None
    out: dict[str, int | None] = {}
    for n in sorted(keep):
        version = items[n]["metadata"]["version"]
        m = re.match(r"nvidia-.+-cu(\d+)$", n)
        if m:
            out[n] = int(m.group(1))
        elif n in TOOLKIT:
            out[n] = int(version.split(".")[0])
        elif n.startswith("nvidia-") and n not in CUDA_NEUTRAL:
            out[n] = toolkit_major  # CUDA 13 dropped the -cuNN suffix; cuda-toolkit names the release
        elif n == "torch" and "+cu" in version:
            out[n] = int(re.search(r"\+cu(\d+?)\d$", version).group(1))  # 2.13.0+cu128 -> 12
    return out


def mixed(majors: dict[str, int | None], want: int) -> list[str]:
    return [f"{n} (CUDA {m if m is not None else 'unknown'})" for n, m in majors.items() if m != want]


@lru_cache(maxsize=None)
def reachable(url: str, timeout: float = 10.0) -> bool:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout):
            return True
    except Exception:  # noqa: BLE001 - any failure means: not reachable from here
        return False


def check(stage: str, major: int, info: dict, require_index: bool) -> tuple[bool, list[str]]:
    python, glibc = UBUNTU[info["ubuntu"]]
    reqs = requirements(stage)
    has_torch = any(_name(re.split(r"[=<>!~\[; ]", r, 1)[0]) == "torch" for r in reqs)
    head = f"{stage} / CUDA {major} (python {python}, manylinux glibc 2.{glibc}, {ARCH})"
    index = info["index"] if has_torch else ""
    if index and not reachable(index.rstrip("/") + "/torch/"):
        lines = [f"{head}: torch from {index}: NOT CHECKED (index unreachable from here)"]
        pypi = resolve(reqs, python, glibc, None)
        if "error" in pypi:
            return False, lines + [f"  FAIL: the set does not resolve against PyPI: {pypi['error']}"]
        bad = mixed(cuda_majors(pypi, exclude_through="torch"), major)
        ok = not bad and not require_index
        lines.append(f"  {'ok' if not bad else 'FAIL'}: {len(pypi['install'])} packages resolve against PyPI; "
                     "outside torch's own dependencies: " + (", ".join(bad) or "no CUDA library of another major"))
        if require_index:
            lines.append("  FAIL: --require-torch-index")
        return ok, lines
    rep = resolve(reqs, python, glibc, index or None)
    if "error" in rep:
        return False, [f"{head}: FAIL: does not resolve: {rep['error']}"]
    majors = cuda_majors(rep)
    bad = mixed(majors, major)
    if has_torch and "torch" in majors and majors["torch"] != major:
        bad.append(f"torch {majors['torch']}")
    libs = sum(1 for n in majors if n != "torch")
    return not bad, [f"{head}: {'FAIL' if bad else 'ok'}: {len(rep['install'])} packages, {libs} CUDA libraries"
                     + (f"; other majors: {', '.join(bad)}" if bad else (f", all CUDA {major}" if libs else ""))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stage", action="append", help="stage(s) to check [default: all]")
    ap.add_argument("--major", action="append", type=int, help="CUDA major(s) to check [default: all]")
    ap.add_argument("--require-torch-index", action="store_true",
                    help="fail when PyTorch's wheel index cannot be reached (instead of checking without it)")
    ap.add_argument("--jobs", type=int, default=4, help="resolutions run at once (network bound)")
    args = ap.parse_args()
    majors, stages = parse_dockerfile(DOCKERFILE.read_text())
    if not majors or not stages:
        print(f"error: {DOCKERFILE}: no CUDA bases or no stage aliases found", file=sys.stderr)
        return 2
    for m, info in majors.items():
        missing = set(stages.values()) - info["flavours"]
        if missing or info["ubuntu"] not in UBUNTU:
            print(f"error: CUDA {m}: no base for {sorted(missing)} or unknown Ubuntu {info['ubuntu']}", file=sys.stderr)
            return 2
    want_s, want_m = args.stage or sorted(stages), args.major or sorted(majors)
    unknown = [s for s in want_s if s not in stages] + [str(m) for m in want_m if m not in majors]
    if unknown:
        print(f"error: unknown stage or CUDA major: {', '.join(unknown)}", file=sys.stderr)
        return 2
    jobs = [(s, m) for m in want_m for s in want_s]
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        results = list(pool.map(lambda j: check(j[0], j[1], majors[j[1]], args.require_torch_index), jobs))
    for _, lines in results:
        print("\n".join(lines))
    failed = sum(1 for ok, _ in results if not ok)
    print(f"image sets: {len(results) - failed} ok, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
