"""Shared plumbing for the typer scripts in bin/: one `error:` line and a non-zero exit, never a traceback."""

from __future__ import annotations

import errno
import functools
import inspect
import math
import os
import re
import signal
import sys
from enum import Enum
from typing import NoReturn, Optional

import typer

try:  # typer >= 0.23 vendors its own click; older typer uses the click package
    from typer._click import exceptions as _click_exc
except ImportError:  # pragma: no cover
    import click.exceptions as _click_exc

from .errors import MergeirError, OutOfMemory
from .io import free_bytes, is_no_space, size_text
from .models.dtypes import DTYPES
from .training.recipe import RECIPE_FIELDS, field_type, option_flag

EXIT_BAD_INPUT = 2
EXIT_OOM = 75  # EX_TEMPFAIL: the pipeline's retry strategy halves the batch size on this code


class Pooling(str, Enum):
    """Choices of --pooling shared by encode, sweep, prepare_training and lora_train."""

    last = "last"
    mean = "mean"
    cls = "cls"


Dtype = Enum("Dtype", [(d, d) for d in DTYPES], type=str)  # --dtype choices of encode and sweep
Dtype.__doc__ = "Choices of --dtype: mergeir.models.DTYPES."


FORCE_HELP = ("replace an existing --out even when it is not this stage's previous output (never an input, "
              "'.' or a parent of the current folder)")


def force_option():
    """`--force`, the one override of the output contract's replacement rule (mergeir.io.check_replaceable)."""
    return typer.Option(False, "--force", help=FORCE_HELP)


def allow_eval_split_option():
    """`--allow-eval-split`: the override for stages that refuse to tune or train on the evaluation split."""
    return typer.Option(False, "--allow-eval-split",
                        help="allow the collection's evaluation split (training/tuning on test queries inflates results)")


def attempt_option():
    """`--attempt N`: the pipeline's try of this task (Nextflow's task.attempt); see `batch_for_attempt`."""
    return typer.Option(1, "--attempt", min=1,
                        help="the pipeline's try number: --batch-size is halved for each earlier try (a retry after "
                             "running out of memory; an encoding shard keeps its run's batches and computes each "
                             "in halves)")


def batch_for_attempt(batch_size: int, attempt: int) -> int:
    """The batch size of try `attempt`: halved per earlier try, at least 1."""
    return max(1, batch_size >> (attempt - 1))


def recipe_options(command):
    """Decorator: one option per field of mergeir.training.recipe.Recipe (its flag, help and default), so the
    recipe's command line is derived from its dataclass. The command gets `recipe_changes`: {field: value} of
    the options given (tuples from comma-separated text); the rest it leaves to its base recipe."""
    def option(name: str) -> inspect.Parameter:
        kind, _ = field_type(name)
        default = RECIPE_FIELDS[name].default
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        help_ = RECIPE_FIELDS[name].metadata["help"]
        if default is not None and "[default:" not in help_:
            help_ += f" [default: {shown}]"
        flag = option_flag(name)
        decls = (f"{flag}/--no-{flag[2:]}",) if kind is bool else (flag,)
        choices = RECIPE_FIELDS[name].metadata["choices"]
        metavar = f"<{'|'.join(choices)}>" if choices else None
        annotation = Optional[str if kind is tuple else kind]
        return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=typer.Option(
            None, *decls, help=help_, show_default=False, metavar=metavar))

    def parse(name: str, value):
        kind, element = field_type(name)
        if kind is not tuple:
            return value
        items = [t.strip() for t in value.split(",") if t.strip()]
        try:
            return tuple(element(t) for t in items)
        except ValueError:
            raise MergeirError(f"{option_flag(name)}: {value!r} is not a comma-separated list of numbers") from None

    signature = inspect.signature(command)
    own = [p for p in signature.parameters.values() if p.name != "recipe_changes"]
    added = [option(name) for name in RECIPE_FIELDS]

    @functools.wraps(command)
    def wrapper(**kwargs):
        given = {n: kwargs.pop(n) for n in RECIPE_FIELDS}
        changes = {n: parse(n, v) for n, v in given.items() if v is not None}
        return command(**kwargs, recipe_changes=changes)

    wrapper.__signature__ = signature.replace(parameters=own + added)
    wrapper.__annotations__ = {p.name: p.annotation for p in own + added}
    return wrapper


class Interrupted(BaseException):
    """SIGINT or SIGTERM (SLURM and Nextflow cancel with SIGTERM): unwinds like KeyboardInterrupt, so every
    atomic output removes its temporary folder, but typer does not swallow it."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _raise_interrupted(signum, frame) -> None:
    for s in (signal.SIGINT, signal.SIGTERM):  # a second signal must not cut the cleanup short
        signal.signal(s, signal.SIG_IGN)
    raise Interrupted(signum)


def _install_signal_handlers() -> dict:
    """Returns the previous handlers (run() restores them: it may be called in-process, e.g. by tests)."""
    previous = {}
    for s in (signal.SIGINT, signal.SIGTERM):
        previous[s] = signal.getsignal(s)
        if previous[s] is not signal.SIG_IGN:  # a job started with SIGINT ignored keeps ignoring it
            signal.signal(s, _raise_interrupted)
    return previous


def make_app(help: str) -> typer.Typer:
    return typer.Typer(
        help=help,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
        no_args_is_help=False,
    )


def fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    # one line whatever the message quotes (a path or value holding a newline): the last stderr line is the error
    print("error: " + message.replace("\r", "\\r").replace("\n", "\\n"), file=sys.stderr)
    raise SystemExit(code)


MAX_SEED = 2**32 - 1  # as mergeir.experiment.reader.MAX_SEED: numpy's legacy seed range, which every stage takes


def _option(param) -> str:
    return max(getattr(param, "opts", None) or [f"--{param.name}"], key=len)


def _non_finite(params: dict, kwargs: dict) -> str | None:
    """The option (and value) of the first non-finite float given, e.g. `--cache-gib nan`, else None."""
    for name, value in kwargs.items():
        for v in value if isinstance(value, (list, tuple)) else [value]:
            if name in params and isinstance(v, float) and not math.isfinite(v):
                return f"{_option(params[name])} {v}"
    return None


def _check_seeds(params: dict, kwargs: dict) -> None:
    """A seed outside [0, MAX_SEED]: torch raises on a 30-digit one, numpy on a negative one (or draws what its
    absolute value draws)."""
    for name, v in kwargs.items():
        if (name == "seed" or name.endswith("_seed")) and isinstance(v, int) and not isinstance(v, bool) \
                and not 0 <= v <= MAX_SEED and name in params:
            raise MergeirError(f"{_option(params[name])}: a seed must be within [0, {MAX_SEED}], got {v}")


def _checked(command) -> None:
    """Wrap the callback of `command` and of its subcommands so that, before it runs, a seed outside what every
    generator takes and a non-finite float option (`--cache-gib nan`, `--temperature inf`: no option means
    "unbounded" by inf, and nan passes every range check) are one error naming the option."""
    for sub in getattr(command, "commands", {}).values():
        _checked(sub)
    callback, params = command.callback, {p.name: p for p in command.params}
    if callback is None or getattr(callback, "_mergeir_checked", False):
        return

    @functools.wraps(callback)
    def checked(*args, **kwargs):
        _check_seeds(params, kwargs)
        given = _non_finite(params, kwargs)
        if given is not None:
            raise MergeirError(f"{given}: not a finite number")
        return callback(*args, **kwargs)

    checked._mergeir_checked = True
    command.callback = checked


def _is_cuda_oom(e: BaseException) -> bool:
    try:
        import torch

        return isinstance(e, torch.cuda.OutOfMemoryError)
    except Exception:  # pragma: no cover - torch missing
        return False


def _chain(e: BaseException | None):
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        yield e
        e = e.__cause__ or e.__context__


def _no_space_message(e: BaseException) -> str:
    """One line for a full file system that no atomic output turned into a MergeirError: the file named by the
    OS error (if any) and the space left there."""
    named = next((x for x in _chain(e) if isinstance(x, OSError) and x.filename), None)
    if named is None:
        return f"No space left on device ({' '.join(str(e).split())[:300]})"
    where = os.path.dirname(os.path.abspath(named.filename2 or named.filename))
    return (f"{named.filename2 or named.filename}: No space left on device ({size_text(free_bytes(where))} free on "
            f"the file system of {where}); free some space or write --out elsewhere")


def _symlink_loop_message(e: BaseException) -> str | None:
    """One line for a symlink loop met outside the output guard (Python's RuntimeError, or ELOOP)."""
    for x in _chain(e):
        path = x.filename if isinstance(x, OSError) and x.errno == errno.ELOOP else None
        m = re.match(r"Symlink loop from (.*)$", str(x)) if isinstance(x, RuntimeError) else None
        path = m.group(1).strip("'\"") if m else path
        if path:
            return f"{path}: a symlink loop (a link that leads back to itself); remove the link or give another path"
    return None


def run(app: typer.Typer, argv: list[str] | None = None) -> None:
    """Run a typer app; usage errors and MergeirError become one stderr line and exit 2; CUDA OOM exits 75;
    SIGINT and SIGTERM clean up and exit 128 + the signal number (130, 143) after one `error:` line."""
    command = typer.main.get_command(app)
    _checked(command)
    previous = _install_signal_handlers()
    try:
        _run(command, argv)
    finally:
        for s, h in previous.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)


def _run(command, argv: list[str] | None) -> None:
    try:
        rv = command.main(args=argv, prog_name=None, standalone_mode=False)
    except Interrupted as e:
        name = signal.Signals(e.signum).name
        fail("interrupted" if e.signum == signal.SIGINT else f"terminated by {name}", 128 + e.signum)
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
    except KeyboardInterrupt:  # raised by code that installs its own SIGINT handling
        fail("interrupted", 128 + signal.SIGINT)
    except Exception as e:  # noqa: BLE001 - last resort: keep the one-line contract
        if _is_cuda_oom(e):
            fail(f"CUDA out of memory ({str(e).splitlines()[0]}); retry with a smaller --batch-size", EXIT_OOM)
        if is_no_space(e):  # a file system filled up outside an atomic output (which names --out itself)
            fail(_no_space_message(e))
        loop = _symlink_loop_message(e)
        if loop:
            fail(loop)
        raise
    if isinstance(rv, int) and rv:
        raise SystemExit(rv)
