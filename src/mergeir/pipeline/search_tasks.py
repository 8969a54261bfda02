"""The planner's rows of the α-profile search (experiment `merge.search`, with `--alpha_selection grid`): the search
runs beside the grid as a SWEEP task over the same labelled split, and its pick is a `search` arm of the full-data
setting, compared with the grid's pick in the report."""

from __future__ import annotations

import json

from .rows import Options, _row, alpha_text


def search_rows(rows: dict, ctx: dict, mg, cs, trials, opts: Options, deferred: dict, full_set: str,
                full_file: str) -> None:
    """merge.search: the α-profile search on the labelled split (a SWEEP task `search-<c>`, the same artifact as a
    grid) and, for the full-data setting, its pick as the `search` arm (SELECT_ALPHA `alpha-search-<c>-...`)."""
    c, sp = ctx["collection"], mg.search
    opts.add("--search", sp.sampler).add("--groups", sp.groups).add("--budget", sp.budget).add("--seed", sp.seed)
    if sp.sampler == "grid":
        opts.add("--grid", [alpha_text(a) for a in mg.grid])
    else:
        opts.add("--step", alpha_text(sp.step))
    opts.add("--split-layer", mg.split_layer if sp.groups == 2 else None)
    opts.switch("--restore-source-embeddings", mg.restore_source_embeddings)
    _row(rows, "SWEEP", f"search-{c}", {"source": ctx["source"], "domain": ctx["domain"],
                                         "collection": ctx["collection_id"]}, opts,
         collection=c, library=ctx["library"])
    for t in trials:
        if t.setting != "full":  # a few dozen queries cannot steer K alphas: the search is a full-data arm
            continue
        key = f"{c}-{t.setting}-{t.trial}"
        arm = {**ctx, "setting": t.setting, "trial": t.trial, "arm_tag": "search"}
        sel = _row(rows, "SELECT_ALPHA", f"alpha-search-{key}", {"grid": f"search-{c}", "train": full_set},
                   Options().add("--eval-split", cs.eval_split), train_file=full_file, collection=c,
                   arm=json.dumps(arm, sort_keys=True), library=ctx["library"])
        deferred[sel["id"]] = arm
