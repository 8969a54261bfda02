"""Atomic outputs: a folder or file written under a temporary name beside --out and renamed when complete, after
the output contract's checks (mergeir.io.contract) ran again. Temporary entries beside --out carry their owner
(<pid>-<host>~), so the next run removes those a killed run left."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import socket
import sys
import tempfile
from pathlib import Path
from typing import Iterator

from ..errors import MergeirError, NoSpace
from .contract import Inputs, Stage, _file_guard, _Guard, _identity, _output_of, check_output_path, check_replaceable
from .space import _tree_bytes, free_bytes, is_no_space, size_text


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", socket.gethostname()) or "localhost"


def owner_tag() -> str:
    """`<pid>-<host>~`: which process owns a temporary entry, so a later run can tell a dead one's leftovers
    (no '@' or '+': mergekit reads those in a model path as a revision or a LoRA)."""
    return f"{os.getpid()}-{_host()}~"


_OWNER = re.compile(r"(\d+)-([A-Za-z0-9_.-]+?)~")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale(parent: str | os.PathLike, prefix: str) -> list[Path]:
    """Remove entries `<prefix><pid>-<host>~...` in `parent` whose owner process on this host is gone (a run
    killed by SIGKILL or a node failure). Entries of other hosts or of live processes are left alone."""
    parent = Path(parent)
    try:
        entries = sorted(parent.iterdir())
    except OSError:
        return []
    host, removed = _host(), []
    for p in entries:
        if not p.name.startswith(prefix):
            continue
        m = _OWNER.match(p.name, len(prefix))
        if m is None or m.group(2) != host or _alive(int(m.group(1))):
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        if not (p.exists() or p.is_symlink()):
            removed.append(p)
            print(f"warning: removed {p}, left by process {m.group(1)} which is no longer running", file=sys.stderr)
    return removed


def owned_tempdir(parent: str | os.PathLike, prefix: str) -> Path:
    """mkdtemp(`<prefix><pid>-<host>~XXXX`) in `parent`, after removing what dead owners left there."""
    remove_stale(parent, prefix)
    return Path(tempfile.mkdtemp(prefix=prefix + owner_tag(), dir=parent))


@contextlib.contextmanager
def scratch_dir(parent: str | os.PathLike, prefix: str) -> Iterator[Path]:
    """An `owned_tempdir` removed on exit, whatever ends the block (a signal included)."""
    path = owned_tempdir(parent, prefix)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _check_parent_writable(out: Path) -> None:
    parent = out.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise MergeirError(f"cannot create output folder {parent}: {e.strerror}") from None
    if not os.access(parent, os.W_OK):
        raise MergeirError(f"output folder {parent} is not writable")


@contextlib.contextmanager
def atomic_dir(out: str | os.PathLike, *, stage: Stage | None = None, inputs: Inputs | None = None,
               force: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside `out`; on success it replaces `out`, on error nothing is left.

    A crashed task therefore never leaves a folder that looks finished (Nextflow -resume trusts what exists).
    Before anything is written, `check_output_path` guards the inputs, and an existing `out` must be empty,
    carry `stage`'s marker or be overridden by `force` (stage None: any folder is replaced, as before).
    Right before the rename the same checks run again: a folder another process created at `out` meanwhile is
    refused (MergeirError), not replaced (--force covers only what was there when the stage started).
    An existing `out` is only replaced once the new one is complete. A file system that fills up is one
    MergeirError (NoSpace) naming `out` and the space it needed, its temporary folder removed.
    """
    out = check_output_path(out, inputs)
    check_replaceable(out, stage, force)
    guard = _Guard(out, stage, force, "--out", inputs, _identity(out))
    _check_parent_writable(out)
    for kind in ("tmp", "old"):
        remove_stale(out.parent, f".{out.name}.{kind}-")
    try:
        tmp = owned_tempdir(out.parent, f".{out.name}.tmp-")
    except OSError as e:
        if is_no_space(e):
            raise _dir_no_space(out, 0) from None
        raise
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700: other users/containers must read the result
    try:
        yield tmp
        _publish(tmp, out, guard)
    except BaseException as e:
        written = _tree_bytes(tmp) if is_no_space(e) else 0
        shutil.rmtree(tmp, ignore_errors=True)
        if is_no_space(e) and (not isinstance(e, MergeirError) or isinstance(e, NoSpace)):
            raise _dir_no_space(out, written) from None
        raise


def _dir_no_space(out: Path, written: int) -> NoSpace:
    free = free_bytes(out.parent)  # the temporary folder is removed: what this stage had to work with
    reached = f" (it had reached {size_text(written)} when that filled up)" if written else ""
    return NoSpace(f"--out {out}: No space left on device: the output needs more than the {size_text(free)} free "
                   f"on the file system of {out.parent}{reached}; free some space or write --out elsewhere", out)


def _publish(tmp: Path, out: Path, guard: _Guard) -> None:
    """Rename the finished `tmp` to `out`, after checking `out` again (the guard); a previous output is moved
    aside first and removed only once the new one is in place."""
    now = guard.recheck()
    if now is None:
        try:
            os.replace(tmp, out)
        except OSError as e:  # something appeared at `out` after the check: a folder that is not empty, a file
            if e.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
                raise MergeirError(f"--out {out} was created by another process while this stage ran; left it "
                                   "alone, nothing written") from None
            raise
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-{owner_tag()}", dir=out.parent))
    try:
        os.replace(out, old / "x")
    except BaseException:
        old.rmdir()
        raise
    try:
        moved = _identity(old / "x")
        if moved is None or moved[:2] != now[:2]:  # replaced between the check and the move: put it back
            os.replace(old / "x", out)
            old.rmdir()
            raise MergeirError(f"--out {out} was replaced by another process while this stage ran; left it alone, "
                               "nothing written")
        os.replace(tmp, out)
    except MergeirError:
        raise
    except BaseException:  # put the previous output back: never leave `out` missing
        os.replace(old / "x", out)
        old.rmdir()
        raise
    shutil.rmtree(old, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write a file via a temp file + rename, so readers never see half a file. A file system that fills up is
    one NoSpace error naming the file (or the guarded output it belongs to) and the bytes it needed. A file
    guarded by `check_output_file` (or its marker) is checked again right before the rename."""
    path = Path(path)
    _check_parent_writable(path)
    prefix = f".{path.name}.tmp-"
    remove_stale(path.parent, prefix)
    data = text.encode("utf-8")
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=prefix + owner_tag(), dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600
        guard = _file_guard(path)
        if guard is not None:
            guard.recheck()
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        if is_no_space(e) and not isinstance(e, MergeirError):
            target = _output_of(path)
            what = "" if target == path else f" (writing {path.name})"
            raise NoSpace(f"{target}: No space left on device{what}: it needs {size_text(len(data))}, the file system "
                          f"of {path.parent} has {size_text(free_bytes(path.parent))} free; free some space or write "
                          "it elsewhere", target) from None
        raise
