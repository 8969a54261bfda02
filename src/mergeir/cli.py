"""Shared plumbing for the typer scripts in bin/: one `error:` line and a non-zero exit, never a traceback."""

from __future__ import annotations

import sys
from typing import NoReturn

import click
import typer

from .errors import MergeirError, OutOfMemory

EXIT_BAD_INPUT = 2
EXIT_OOM = 75  # EX_TEMPFAIL: the pipeline's retry strategy halves the batch size on this code


def make_app(help: str) -> typer.Typer:
    return typer.Typer(
        help=help,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
        no_args_is_help=False,
    )


def fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)


def _is_cuda_oom(e: BaseException) -> bool:
    try:
        import torch

        return isinstance(e, torch.cuda.OutOfMemoryError)
    except Exception:  # pragma: no cover - torch missing
        return False


def run(app: typer.Typer, argv: list[str] | None = None) -> None:
    """Run a typer app; usage errors and MergeirError become one stderr line and exit 2; CUDA OOM exits 75."""
    command = typer.main.get_command(app)
    try:
        rv = command.main(args=argv, prog_name=None, standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as e:  # pragma: no cover - depends on click version
        print(e.ctx.get_help() if e.ctx else str(e))
        raise SystemExit(EXIT_BAD_INPUT) from None
    except click.UsageError as e:
        fail(e.format_message().replace("\n", " "))
    except click.exceptions.Abort:
        fail("aborted")
    except click.ClickException as e:
        fail(e.format_message().replace("\n", " "))
    except OutOfMemory as e:
        fail(str(e), EXIT_OOM)
    except MergeirError as e:
        fail(str(e))
    except KeyboardInterrupt:
        fail("interrupted", 130)
    except Exception as e:  # noqa: BLE001 - last resort: keep the one-line contract
        if _is_cuda_oom(e):
            fail(f"CUDA out of memory ({str(e).splitlines()[0]}); retry with a smaller --batch-size", EXIT_OOM)
        raise
    if isinstance(rv, int) and rv:
        raise SystemExit(rv)
