"""Shared plumbing for the typer scripts in bin/: one `error:` line and a non-zero exit, never a traceback."""

from __future__ import annotations

import sys
from enum import Enum
from typing import NoReturn

import typer

try:  # typer >= 0.23 vendors its own click; older typer uses the click package
    from typer._click import exceptions as _click_exc
except ImportError:  # pragma: no cover
    import click.exceptions as _click_exc

from .errors import MergeirError, OutOfMemory

EXIT_BAD_INPUT = 2
EXIT_OOM = 75  # EX_TEMPFAIL: the pipeline's retry strategy halves the batch size on this code


class Pooling(str, Enum):
    """Choices of --pooling shared by encode, sweep, prepare_training and lora_train."""

    last = "last"
    mean = "mean"
    cls = "cls"


class Dtype(str, Enum):
    """Choices of --dtype shared by encode and sweep."""

    float32 = "float32"
    float16 = "float16"
    bfloat16 = "bfloat16"


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
    except _click_exc.UsageError as e:
        hint = f" (see {e.ctx.command_path} --help)" if getattr(e, "ctx", None) else ""
        fail(" ".join(e.format_message().split()) + hint)
    except typer.Abort:
        fail("aborted")
    except _click_exc.ClickException as e:
        fail(" ".join(e.format_message().split()))
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
