#!/usr/bin/env python3
"""Draw the masked-LM domain model's training curve from its provenance.json (build_domain.py): training
loss per logged window and held-out masked-LM perplexity, into a PNG, and the perplexity checks as a
markdown table beside it (same name, .md). Byte-reproducible (the report's figure settings).

    plot_mlm.py study_mlm/provenance/domain.json report_mlm/mlm_training.png
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bin"))
import _bootstrap  # noqa: F401,E402
import typer  # noqa: E402

from mergeir.cli import make_app, run  # noqa: E402
from mergeir.errors import MergeirError  # noqa: E402
from mergeir.io import atomic_write_text, read_json  # noqa: E402
from mergeir.report import save_figure  # noqa: E402

app = make_app(__doc__)


@app.command()
def main(
    provenance: Path = typer.Argument(..., help="the domain model's provenance.json"),
    out: Path = typer.Argument(..., help="PNG to write (the table goes beside it as .md)"),
) -> None:
    prov = read_json(provenance, "domain provenance")
    loss, ppl, recipe = prov.get("loss"), prov.get("perplexity"), prov.get("recipe", {})
    if not loss or not ppl:
        raise MergeirError(f"{provenance}: no loss curve or held-out perplexity (build_domain.py --heldout-docs)")
    head = recipe.get("head_steps", 0)

    def draw(fig):
        ax = fig.add_subplot(1, 1, 1)
        ax.plot([r["step"] for r in loss], [r["loss"] for r in loss], color="tab:blue", lw=1,
                label="training loss (window mean)")
        ax.axvline(head, color="grey", ls=":", lw=1)
        ax.set_xlabel(f"optimizer step (head only until {head}, then the whole model)")
        ax.set_ylabel("masked-LM cross-entropy (nats)")
        pts = [r for r in ppl if r["step"] >= head]
        import math

        ax.plot([r["step"] for r in pts], [math.log(r["perplexity"]) for r in pts], "o-", color="tab:red",
                ms=3, lw=1, label="held-out: log perplexity")
        ax.legend(loc="upper right", fontsize=8)
        ax.set_title(f"{prov.get('repo_id', 'domain model')}: {recipe.get('heldout', {}).get('docs', '?')} "
                     "held-out documents", fontsize=9)

    out.parent.mkdir(parents=True, exist_ok=True)
    save_figure(draw, out, (6.4, 4.0))
    rows = ["| step | when | held-out perplexity |", "|---:|---|---:|"]
    rows += [f"| {r['step']} | {r['phase']} | {r['perplexity']:.2f} |" for r in ppl]
    atomic_write_text(out.with_suffix(".md"), "\n".join(rows) + "\n")
    print(f"{out}: {len(loss)} loss points, {len(ppl)} perplexity checks")


if __name__ == "__main__":
    run(app)
