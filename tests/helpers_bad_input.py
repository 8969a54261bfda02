"""Shared pieces of the bad-input tests (tests/test_bad_input_*.py): a small world of real artifacts built by the
library on the tiny fixture collection, tree snapshots, and the refusal contract every case asserts."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from functools import cached_property
from pathlib import Path

from helpers_cli import ROOT, run_bin
from helpers_merging import TINY_BEIR, texts_of

TAGS = {"collection": "tiny", "arm": "source"}
THREADS = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


class Snapshot:
    """Every entry under some paths (files by sha256, symlinks by target, folders by listing), to prove a
    refused command changed nothing: no input, no --out, no temporary folder left beside them."""

    def __init__(self, *paths):
        self.paths = [Path(p) for p in paths]
        self.before = self.take()

    def take(self) -> dict:
        out = {}
        for root in self.paths:
            out[str(root)] = _entry(root)
            if root.is_dir() and not root.is_symlink():
                for dirpath, dirnames, filenames in os.walk(root):
                    for name in sorted(dirnames + filenames):
                        p = Path(dirpath) / name
                        out[str(p)] = _entry(p)
        return out

    def assert_unchanged(self) -> None:
        after = self.take()
        changed = sorted(k for k in set(self.before) | set(after) if self.before.get(k) != after.get(k))
        assert not changed, f"changed/added/removed: {changed[:10]}"


def _entry(p: Path):
    if p.is_symlink():
        return ("link", os.readlink(p))
    if p.is_file():
        return ("file", hashlib.sha256(p.read_bytes()).hexdigest())
    if p.is_dir():
        return ("dir",)
    return None


def stderr_lines(stderr: str) -> list[str]:
    """What a user reads on stderr: progress bars redraw with \\r, so split on both line ends."""
    return [ln for ln in re.split(r"[\r\n]+", stderr) if ln.strip()]


def assert_refused(p, *fragments: str, snapshot: Snapshot | None = None, code: int = 2) -> str:
    """The contract: exit `code`, no traceback, the last stderr line is the only `error:` line and holds every
    fragment (the file or option at fault), and nothing under the snapshot's paths changed."""
    assert p.returncode == code, f"exit {p.returncode}, expected {code}; stderr: {p.stderr[-3000:]}"
    assert "Traceback" not in p.stderr, p.stderr[-3000:]
    lines = stderr_lines(p.stderr)
    errors = [ln for ln in lines if ln.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], p.stderr[-3000:]
    for f in fragments:
        assert f in errors[0], errors[0]
    if snapshot is not None:
        snapshot.assert_unchanged()
    return errors[0]


def cli(script: str, *args, cwd=None, env: dict | None = None, timeout: int = 600):
    """A bin/ script in a subprocess (helpers_cli.run_bin, plus a working folder), one thread per math library
    (see World)."""
    if cwd is None:
        return run_bin(script, *args, env={**THREADS, **(env or {})}, timeout=timeout)
    return subprocess.run([sys.executable, str(ROOT / "bin" / script), *map(str, args)], capture_output=True,
                          text=True, env={**os.environ, **THREADS, **(env or {})}, timeout=timeout, cwd=cwd)


def popen(script: str, *args, env: dict | None = None) -> subprocess.Popen:
    """A bin/ script started in the background (signal tests). SIGINT starts at its default disposition: a test run
    launched as a background job inherits SIGINT ignored, and the CLIs (rightly) keep an inherited ignore."""
    return subprocess.Popen([sys.executable, str(ROOT / "bin" / script), *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **THREADS, **(env or {})},
                            preexec_fn=_default_sigint)


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def assert_ok(p) -> None:
    assert p.returncode == 0, p.stderr[-3000:]
    assert not [ln for ln in stderr_lines(p.stderr) if ln.startswith("error:")], p.stderr[-3000:]


def write_rows(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


class World:
    """Real artifacts of every stage on the tiny fixture collection, each built once on first use (one torch
    thread: on shared cores two threads spin-wait and run many times slower)."""

    def __init__(self, root: Path):
        import torch

        torch.set_num_threads(1)
        self.root = Path(root)

    @cached_property
    def collection(self) -> Path:
        dst = self.root / "collection"
        shutil.copytree(TINY_BEIR, dst)
        return dst

    @cached_property
    def models(self) -> dict[str, Path]:
        """source (MistralModel, 2 layers), domain (MistralForCausalLM), other (same shapes, other weights)
        and deep (4 layers), sharing one tokenizer; each with a provenance.json like make_tiny.py's. other carries
        the source's repo id and revision (a re-upload under the same name): only its weights tell them apart."""
        from mergeir.io import write_json
        from mergeir.models import build_mistral, build_tokenizer

        tok = build_tokenizer(texts_of(TINY_BEIR))
        vocab = max(64, 1 << (len(tok) - 1).bit_length())
        out = {}
        for role, layout, seed, layers in (("source", "model", 0, 2), ("domain", "causal", 1, 2),
                                           ("other", "model", 5, 2), ("deep", "model", 0, 4)):
            out[role] = self.root / "models" / role
            build_mistral(out[role], seed=seed, layout=layout, vocab_size=vocab, num_hidden_layers=layers,
                          tokenizer=tok)
            name, rev = ("source", 0) if role == "other" else (role, seed)
            write_json(out[role] / "provenance.json", {"repo_id": f"mergeir/tiny-{name}", "revision": f"seed-{rev}",
                                                       "built_by": "tests/helpers_bad_input.py"})
        return out

    def encode(self, model: Path, collection: Path, out: Path) -> Path:
        from mergeir.collections import load_collection
        from mergeir.encoding import encode_collection, load_encoder, write_embeddings
        from mergeir.models import describe_model

        coll = load_collection(collection)
        enc, tok = load_encoder(model)
        emb = encode_collection(enc, tok, coll, coll.eval_split, pooling="last", max_length=64, batch_size=8,
                                extra_meta=describe_model(model))
        return write_embeddings(out, emb)

    @cached_property
    def embeddings(self) -> Path:
        return self.encode(self.models["source"], self.collection, self.root / "emb")

    def evaluate(self, embeddings: Path, collection: Path, out: Path, **tags) -> Path:
        from mergeir.evaluation import evaluate_embeddings

        evaluate_embeddings(embeddings, collection, out, tags={**TAGS, **tags})
        return out

    @cached_property
    def results(self) -> Path:
        return self.evaluate(self.embeddings, self.collection, self.root / "results" / "source")

    @cached_property
    def train(self) -> Path:
        """A training set mined by the source on the collection's train split (k=2)."""
        from mergeir.collections import load_collection
        from mergeir.training.data import write_training_set
        from mergeir.training.mining import mine_hard_negatives

        examples, side = mine_hard_negatives(load_collection(self.collection), self.models["source"], k=2,
                                             max_length=64)
        (self.root / "train").mkdir()
        write_training_set(self.root / "train" / "train.jsonl", examples, side)
        return self.root / "train" / "train.jsonl"

    @cached_property
    def adapter(self) -> Path:
        """A LoRA adapter trained on the source for one step (it records the source's fingerprint)."""
        from mergeir.training.recipe import Recipe
        from mergeir.training.trainer import train_lora

        recipe = Recipe(group_size=2, per_device_batch=2, grad_accum=1, query_max_length=32, passage_max_length=32,
                        lora_r=2, lora_alpha=4)
        train_lora(self.models["source"], self.train, self.root / "adapter", max_steps=1, recipe=recipe,
                   device="cpu", progress=False)
        return self.root / "adapter"

    @cached_property
    def grid(self) -> Path:
        from mergeir.sweep import run_sweep

        run_sweep(self.models["source"], self.models["domain"], self.collection, self.root / "grid", grid="0,1",
                  max_length=64, batch_size=8, device="cpu")
        return self.root / "grid"


def make_world(tmp_path_factory, name: str, *needed: str) -> World:
    """A module's world with the named artifacts built before any test snapshots it."""
    w = World(tmp_path_factory.mktemp(name))
    for attr in needed:
        getattr(w, attr)
    return w


def partial_grids(grid: Path, root: Path) -> dict[float, Path]:
    """A whole grid folder as the partial grids `sweep.py --alpha-lower A` writes (one per alpha_lower)."""
    doc = json.loads((grid / "grid.json").read_text())
    out = {}
    for a in doc["grid"]:
        d = root / f"part{a}"
        points = [p for p in doc["points"] if p["alpha_lower"] == a]
        for p in points:
            shutil.copytree(grid / p["dir"], d / p["dir"])
        (d / "grid.json").write_text(json.dumps({**doc, "points": points, "partial": {"alpha_lower": [a]}}))
        out[a] = d
    return out


def edit_json(path: Path, change) -> None:
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))  # json writes NaN / Infinity as Python reads them back


@contextlib.contextmanager
def full_file_system(tmp_path: Path):
    """A 64 KiB tmpfs under tmp_path; yields fill(free_kib=0) -> the mount point, left with `free_kib` KiB free by
    a filler file. Needs root (mount): the test skips, saying so, without it. Unmounted afterwards."""
    import pytest

    if os.geteuid() != 0:
        pytest.skip("full-file-system tests mount a tmpfs: they need root (run the suite as root to include them)")
    mnt = tmp_path / "full"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs ({r.stderr.strip()}): the full-file-system tests need it")

    def fill(free_kib: int = 0) -> Path:
        with open(mnt / "filler", "wb") as f:
            try:
                f.write(b"\0" * ((64 - free_kib) * 1024))
                f.flush()
            except OSError:
                pass
        return mnt
    try:
        yield fill
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)
