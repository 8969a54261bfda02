#!/usr/bin/env python3
"""α grid: 25 points merged in memory (mergeir.sweep.AlphaSweep) vs 25 mergekit merges written to disk and
reloaded with transformers (the authors' way), on the same random Mistral pair, in one run.

Both sides produce the model an encoder would use for each point; their weights are checked equal (bit for bit)
at every point. Encoding is left out of both timings: it is the same work either way. The mergekit side runs on
layout views made once (a MistralModel source and a MistralForCausalLM domain, as in the paper) and keeps the
merged input embeddings (--no-restore) so the two sides are comparable tensor for tensor without post-processing.

Usage: .venv/bin/python benchmarks/alpha_sweep.py [--sizes tiny,medium] [--dtype float16] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

SIZES = {
    # name: build_mistral kwargs
    "tiny": dict(vocab_size=512, hidden_size=32, intermediate_size=64, num_hidden_layers=4, num_attention_heads=4,
                 num_key_value_heads=2),
    # ~160M parameters: 640 MB per model in float32 on disk, 320 MB per merged model in float16
    "medium": dict(vocab_size=32000, hidden_size=1024, intermediate_size=2816, num_hidden_layers=8,
                   num_attention_heads=16, num_key_value_heads=8),
}
GRID = (0.0, 0.25, 0.5, 0.75, 1.0)


def build(root: Path, size: str):
    from mergeir.models import build_mistral

    kw = SIZES[size]
    build_mistral(root / "source", seed=0, layout="model", **kw)
    build_mistral(root / "domain", seed=1, layout="causal", **kw)
    return root / "source", root / "domain"


def bench(size: str, dtype: str, workdir: Path) -> dict:
    import torch
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    from mergeir.merging import make_slices, mergekit_config, run_mergekit, write_view
    from mergeir.models import open_checkpoint
    from mergeir.sweep import AlphaSweep

    hf_logging.set_verbosity_error()
    root = Path(tempfile.mkdtemp(prefix=f"alpha-sweep-{size}-", dir=workdir))
    t0 = time.perf_counter()
    source, domain = build(root, size)
    src, dom = open_checkpoint(source, "--source"), open_checkpoint(domain, "--domain")
    n_params = sum(p.numel() for p in AutoModel.from_pretrained(str(source)).parameters())
    print(f"[{size}] built source+domain ({n_params / 1e6:.1f}M parameters each) in {time.perf_counter() - t0:.1f} s",
          flush=True)
    tdtype = getattr(torch, dtype)
    # the order bin/sweep.py visits: alpha_lower-major, alpha_upper snaking, so each step changes one half
    points = [(al, au) for i, al in enumerate(GRID) for au in (GRID if i % 2 == 0 else GRID[::-1])]

    # in memory: load once, rewrite in place per point; the state is snapshotted for the equality check only
    t = time.perf_counter()
    model = AutoModel.from_pretrained(str(source), dtype=tdtype)
    sweep = AlphaSweep(model, source, domain, restore_source_embeddings=False)
    load_s = time.perf_counter() - t
    mem_s, snapshots, rewritten = 0.0, {}, 0
    for al, au in points:
        t = time.perf_counter()
        rewritten += sweep.set(al, au)
        mem_s += time.perf_counter() - t
        snapshots[(al, au)] = {k: v.clone() for k, v in sweep.state_dict().items()}  # not timed
    memory_total = load_s + mem_s
    print(f"[{size}] in memory: load {load_s:.2f} s + 25 points {mem_s:.2f} s = {memory_total:.2f} s "
          f"({rewritten} tensor rewrites)", flush=True)

    # mergekit: views once (not timed, favouring mergekit), then per point merge to disk + reload
    views = root / "views"
    write_view(src, views / "source")
    write_view(dom, views / "domain", hide=["lm_head.weight"])
    disk_s, equal = 0.0, 0
    for i, (al, au) in enumerate(points):
        out = root / f"merged-{i:02d}"
        cfg = mergekit_config("linear", make_slices(src.num_layers, None, al, au), str(views / "source"),
                              str(views / "domain"), None, dtype, None)
        t = time.perf_counter()
        run_mergekit(cfg, out, seed=0)
        reloaded = AutoModel.from_pretrained(str(out), dtype=tdtype)
        disk_s += time.perf_counter() - t
        got = dict(reloaded.named_parameters())
        snap = snapshots[(al, au)]
        for k, v in snap.items():
            if not torch.equal(got[k].detach().view(torch.uint8), v.view(torch.uint8)):  # bytes, not values
                raise SystemExit(f"[{size}] point {(al, au)}: {k} differs between the sweep and mergekit")
        equal += 1
        del reloaded, got
        import shutil

        shutil.rmtree(out)
    print(f"[{size}] mergekit: 25 merges + reloads {disk_s:.2f} s; weights bit-identical at {equal}/25 points", flush=True)
    ratio = disk_s / memory_total
    print(f"[{size}] ratio (mergekit+reload) / (in-memory incl. load) = {ratio:.1f}x "
          f"(points only: {disk_s / mem_s:.1f}x)", flush=True)
    import shutil

    shutil.rmtree(root, ignore_errors=True)
    return {"size": size, "memory_s": memory_total, "disk_s": disk_s, "ratio": ratio}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="tiny,medium")
    ap.add_argument("--dtype", default="float16", choices=["float16", "bfloat16", "float32"])
    ap.add_argument("--workdir", default=None, help="where the models are built (default: the system temp dir)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = ap.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    workdir = Path(args.workdir or tempfile.gettempdir())
    results = [bench(s, args.dtype, workdir) for s in args.sizes.split(",")]
    print("\nsize     in-memory(s)  mergekit+reload(s)  ratio")
    for r in results:
        print(f"{r['size']:<8} {r['memory_s']:>12.2f}  {r['disk_s']:>18.2f}  {r['ratio']:>5.1f}x")


if __name__ == "__main__":
    main()
