#!/usr/bin/env python3
"""Fetch the paper's inputs into plain folders: collections (BEIR layout + collection.json) and models."""

from pathlib import Path
from typing import Optional

import _bootstrap  # noqa: F401
import typer

from mergeir.cli import force_option, make_app, run
from mergeir.collections import prepare_collection
from mergeir.models import download_model

app = make_app(__doc__)


@app.command()
def collection(
    name: str = typer.Argument(..., help="scifact | nfcorpus | miracl-ja | jqara | beir:<path>"),
    out: Path = typer.Option(..., help="collection folder to create"),
    source: Optional[str] = typer.Option(None, help="local copy (zip, folder or file) or URL instead of the "
                                                    "upstream download"),
    check_md5: bool = typer.Option(True, "--check-md5/--no-check-md5",
                                   help="require BEIR's published md5 for scifact/nfcorpus zips"),
    revision: Optional[str] = typer.Option(None, help="Hugging Face dataset revision (miracl-ja, jqara)"),
    force: bool = force_option(),
) -> None:
    """Build a collection folder from its upstream release."""
    c = prepare_collection(name, out, source=source, check_md5=check_md5, revision=revision, force=force)
    print(f"{c.name}: {len(c.corpus)} documents, {len(c.queries)} queries, splits {', '.join(c.splits)} -> {out}")


@app.command()
def model(
    repo_id: str = typer.Argument(..., help="Hugging Face model id, e.g. intfloat/e5-mistral-7b-instruct"),
    revision: str = typer.Option(..., help="commit to pin (recorded in provenance.json)"),
    out: Path = typer.Option(..., help="model folder to create"),
    source: Optional[Path] = typer.Option(None, help="local copy of the model folder instead of the hub"),
    force: bool = force_option(),
) -> None:
    """Download (or copy from --source) a model pinned to a revision."""
    download_model(repo_id, revision, out, source=source, force=force)
    print(f"{repo_id}@{revision} -> {out}")


if __name__ == "__main__":
    run(app)
