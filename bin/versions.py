#!/usr/bin/env python3
"""Record the tool versions of a task's environment (main.nf gathers them into pipeline_info/)."""

import platform
from pathlib import Path

import _bootstrap  # noqa: F401
import typer

from mergeir.cli import make_app, run
from mergeir.io import atomic_write_text
from mergeir.provenance import library_digest, tool_versions

app = make_app(__doc__)


@app.command()
def main(
    process: str = typer.Option(..., help="the Nextflow process name the versions are recorded for"),
    out: Path = typer.Option(Path("versions.yml"), help="YAML file to write"),
) -> None:
    """One YAML list item per task environment, so files from different nodes concatenate into valid YAML."""
    v = {**tool_versions(), "library": library_digest(), "platform": platform.platform()}
    lines = [f"- process: {process!r}"] + [f"  {k}: {'null' if x is None else repr(str(x))}" for k, x in sorted(v.items())]
    atomic_write_text(out, "\n".join(lines) + "\n")


if __name__ == "__main__":
    run(app)
