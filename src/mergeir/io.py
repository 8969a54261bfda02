"""Small I/O helpers shared by every stage: the output contract (guard, marker, atomic replacement, stale
temporaries), checked UTF-8 / JSON / JSONL reading, hashes."""

from __future__ import annotations

import codecs
import contextlib
import errno
import hashlib
import io
import json
import os
import re
import shutil
import socket
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from .errors import MergeirError, NoSpace


# ---------------------------------------------------------------- the output contract
# One place decides whether a stage may write --out (docs/interfaces.md, "Outputs"): the guard refuses an --out
# that is, contains or lies inside an input (symlinks resolved), '.', '..', '' and the current folder or its
# parents; an existing folder is replaced only when its marker file says this stage wrote it (or --force).
# Temporary entries beside --out carry their owner (<pid>-<host>~), so the next run removes those a killed run left.


@dataclass(frozen=True)
class Stage:
    """A stage's output marker: the file inside its output folder that names the stage (for a stage whose
    output is one file, `marker` is a sibling named with `{name}`: "{name}.json" is its sidecar, "{name}" itself).

    `owns(out)` is true when the marker is a JSON object whose `key` equals `value` (default: the stage name),
    or, for outputs written before the marker named its stage, when it has every `legacy` field.
    """

    name: str
    marker: str
    key: str = "stage"
    value: str | None = None
    legacy: tuple[str, ...] = ()

    def marker_path(self, out: str | os.PathLike) -> Path:
        out = Path(out)
        return out.parent / self.marker.format(name=out.name) if "{name}" in self.marker else out / self.marker

    def owns(self, out: str | os.PathLike) -> bool:
        try:
            doc = json.loads(self.marker_path(out).read_bytes().decode("utf-8-sig"))
        except (OSError, ValueError):
            return False
        if not isinstance(doc, dict):
            return False
        if doc.get(self.key) == (self.value or self.name):
            return True
        return bool(self.legacy) and all(k in doc for k in self.legacy)


Inputs = Mapping[str, "str | os.PathLike | Iterable[str | os.PathLike] | None"]


def _flat_inputs(inputs: Inputs | None) -> Iterator[tuple[str, Path]]:
    for option, value in (inputs or {}).items():
        if value is None:
            continue
        values = [value] if isinstance(value, (str, os.PathLike)) else list(value)
        for v in values:
            if v is not None and str(v) != "":
                yield option, Path(v)


def resolved(path: str | os.PathLike, option: str) -> Path:
    """`path` with symlinks resolved; a symlink loop (or a path that cannot be resolved) is one error naming
    `option` and the path, not Python's RuntimeError."""
    path = Path(path)
    try:
        return path.resolve()
    except RuntimeError:  # Python 3.11: "Symlink loop from ..."
        raise MergeirError(f"{option} {path}: a symlink loop (a link that leads back to itself); remove the link or "
                           "give another path") from None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise MergeirError(f"{option} {path}: a symlink loop (a link that leads back to itself); remove the link "
                               "or give another path") from None
        raise MergeirError(f"{option} {path}: cannot resolve it ({e.strerror})") from None


def check_output_path(out: str | os.PathLike, inputs: Inputs | None = None, option: str = "--out") -> Path:
    """Refuse an output path that would destroy something: '.', '..', '', the current folder or one of its
    parents, an input, a folder holding an input, or a path inside an input (symlinks resolved; a symlink loop is
    refused, naming the option)."""
    out = Path(out)
    if out.name in ("", ".", ".."):
        raise MergeirError(f"{option} {str(out)!r}: name a new folder or file (not '.', '..' or an empty path)")
    real = resolved(out, option)
    cwd = Path.cwd().resolve()
    if real == cwd or real in cwd.parents:
        raise MergeirError(f"{option} {out} is the current folder or one of its parents; name a new folder")
    for name, p in _flat_inputs(inputs):
        rp = resolved(p, name)
        if real == rp:
            raise MergeirError(f"{option} {out} is the input {name} {p}: writing it would destroy that input")
        if rp in real.parents:
            raise MergeirError(f"{option} {out} lies inside the input {name} {p}; write outputs elsewhere")
        if real in rp.parents:
            raise MergeirError(f"{option} {out} contains the input {name} {p}: replacing it would destroy that input")
    return out


def check_replaceable(out: Path, stage: Stage | None, force: bool, option: str = "--out", file: bool = False) -> None:
    """An existing folder (`file`: file) is replaced only when empty, carrying this stage's marker, or with
    --force."""
    if not (out.exists() or out.is_symlink()):
        return
    if file:
        if out.is_dir():
            raise MergeirError(f"{option} {out} is a folder; give the file to write")
        if stage is None or force or stage.owns(out) or out.stat().st_size == 0:
            return
        raise MergeirError(f"{option} {out} already exists and is not a previous {stage.name} output (no "
                           f"{stage.marker_path(out).name} naming that stage); refusing to replace it: remove it or "
                           "pass --force")
    if not out.is_dir():
        raise MergeirError(f"{option} {out} exists and is not a folder")
    if stage is None or force or stage.owns(out):
        return
    try:
        empty = not any(out.iterdir())
    except OSError as e:
        raise MergeirError(f"{option} {out}: cannot read it ({e.strerror})") from None
    if not empty:
        raise MergeirError(
            f"{option} {out} already exists and is not a previous {stage.name} output (no {stage.marker} naming "
            f"that stage); refusing to replace it: remove it or pass --force"
        )


def check_output_file(out: str | os.PathLike, *, stage: Stage | None, inputs: Inputs | None = None,
                      force: bool = False, option: str = "--out") -> Path:
    """The output contract for a stage that writes one file (then written with atomic_write_text, which checks
    again right before its rename, and before it writes the stage's marker, that nothing else appeared there)."""
    out = check_output_path(out, inputs, option)
    check_replaceable(out, stage, force, option, file=True)
    guard = _Guard(out, stage, force, option, inputs, _identity(out), file=True)
    _FILE_GUARDS[_key(out)] = guard
    if stage is not None and "{name}" in stage.marker and stage.marker_path(out) != out:
        _FILE_GUARDS[_key(stage.marker_path(out))] = guard
    return out


# ---------------------------------------------------------------- checked again at the end (races)
# The guard runs when a stage starts; a long stage (a 7B encode) gives another process hours to create a folder
# or file at the same --out. The final rename checks again, so another stage's output that appeared meanwhile is
# refused, not replaced (--force covers what was there when the stage started, not what appeared since).


def _identity(path: Path) -> tuple[int, int, int] | None:
    """(device, inode, ctime): a folder or file recreated at the same path (even on a recycled inode), or
    changed, differs."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_ctime_ns


@dataclass
class _Guard:
    out: Path
    stage: Stage | None
    force: bool
    option: str
    inputs: Inputs | None
    identity: tuple[int, int, int] | None  # what was at `out` when the stage started (None: nothing)
    file: bool = False

    def recheck(self) -> tuple[int, int, int] | None:
        """Refuse, before the rename, an `out` that is no longer what the stage was allowed to replace; returns
        the identity of what is there now (None: nothing)."""
        check_output_path(self.out, self.inputs, self.option)
        now = _identity(self.out)
        if now is None or self.stage is None:
            return now
        force = self.force and now == self.identity  # --force was given for what existed at the start
        try:
            check_replaceable(self.out, self.stage, force, self.option, file=self.file)
        except MergeirError:
            when = "was created" if self.identity is None else "was replaced or changed"
            mark = self.stage.marker_path(self.out).name
            raise MergeirError(
                f"{self.option} {self.out} {when} by another process while this {self.stage.name} stage ran, and is "
                f"not a previous {self.stage.name} output (no {mark} naming that stage); left it alone, nothing "
                f"written: remove it and run again, or write {self.option} elsewhere") from None
        return now


_FILE_GUARDS: dict[str, _Guard] = {}


def _key(path: Path) -> str:
    return os.path.abspath(path)


def _file_guard(path: Path) -> _Guard | None:
    """The guard of the single-file output `path` is (or is the marker of); used once, then forgotten."""
    guard = _FILE_GUARDS.get(_key(path))
    if guard is not None:
        for k in [k for k, g in _FILE_GUARDS.items() if g is guard]:
            del _FILE_GUARDS[k]
    return guard


def _output_of(path: Path) -> Path:
    """The guarded output a file written at `path` belongs to (itself, its marker, a temporary beside it)."""
    for guard in _FILE_GUARDS.values():
        o = guard.out
        if _key(path) == _key(o) or (path.parent == o.parent and path.name.startswith(f".{o.name}.tmp-")):
            return o
        if guard.stage is not None and _key(path) == _key(guard.stage.marker_path(o)):
            return o
    return path


# ---------------------------------------------------------------- a full file system
_NO_SPACE_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
# libraries that report it in their own exception types: safetensors (Rust io::Error), torch's stream writer
_SHORT_WRITE = re.compile(r"\d+ requested and \d+ written")
_NO_SPACE_TEXT = ("no space left on device", "disk quota exceeded", "os error 28", "storagefull",
                  "os error 122", "filesystemquotaexceeded")


def is_no_space(e: BaseException | None) -> bool:
    """Whether `e`, or an exception it was raised from or while handling, says the file system is full."""
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in _NO_SPACE_ERRNOS:
            return True
        if isinstance(e, OSError) and e.errno is None and _SHORT_WRITE.search(str(e)):
            return True  # numpy's tofile: "1536 requested and 992 written", the errno lost
        if not isinstance(e, OSError) and any(t in str(e).lower() for t in _NO_SPACE_TEXT):
            return True
        e = e.__cause__ or e.__context__
    return False


def size_text(n: int | None) -> str:
    if n is None:
        return "an unknown amount"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def free_bytes(path: str | os.PathLike) -> int | None:
    """Bytes an unprivileged writer may still use on the file system holding `path` (None: cannot tell)."""
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def _tree_bytes(path: Path) -> int:
    total = 0
    for dirpath, _, filenames in os.walk(path):
        for name in filenames:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
    return total


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


def dumps_json(obj: Any) -> str:
    """Canonical JSON (sorted keys, 2-space indent, trailing newline): same data, same bytes."""
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, dumps_json(obj))


def _not_utf8(where: str, data: bytes, e: UnicodeDecodeError, line: int, offset: int) -> MergeirError:
    return MergeirError(f"{where}:{line}: not UTF-8 text (byte 0x{data[e.start]:02x} at byte offset {offset + e.start})")


def decoded_lines(raw_lines: Iterable[bytes], where: str) -> Iterator[tuple[int, str]]:
    """(line number, text) of binary lines decoded as UTF-8; a byte-order mark opening the first line is
    dropped (utf-8-sig), and a byte that is not UTF-8 names the file, line and byte offset."""
    offset = 0
    for n, raw in enumerate(raw_lines, 1):
        skip = len(codecs.BOM_UTF8) if n == 1 and raw.startswith(codecs.BOM_UTF8) else 0
        try:
            line = raw[skip:].decode("utf-8")
        except UnicodeDecodeError as e:
            raise _not_utf8(where, raw[skip:], e, n, offset + skip) from None
        offset += len(raw)
        yield n, line


# a file, or a member of a zip read in place (BEIR's zips)
Readable = str | os.PathLike | zipfile.Path


def _as_path(path: Readable) -> Path | zipfile.Path:
    return path if isinstance(path, zipfile.Path) else Path(path)


def iter_lines(path: Readable) -> Iterator[tuple[int, str]]:
    """`decoded_lines` of a file or zip member; lines keep their line ending."""
    path = _as_path(path)
    try:
        f = path.open("rb")
    except OSError as e:
        raise MergeirError(f"cannot read {path}: {e.strerror}") from None
    with f:
        yield from decoded_lines(f, str(path))


def iter_fields(path: str | os.PathLike, columns: tuple[str, ...]) -> Iterator[tuple[int, list[str]]]:
    """(line number, whitespace-separated fields) of each non-blank line of a TREC-style file (run, qrels); a
    line with another number of fields names file and line."""
    for n, line in iter_lines(path):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != len(columns):
            raise MergeirError(f"{path}:{n}: expected {len(columns)} columns ({' '.join(columns)}), got {len(fields)}")
        yield n, fields


def read_text(path: str | os.PathLike) -> str:
    """A whole UTF-8 file (a leading byte-order mark dropped); bad bytes name the line and byte offset."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise MergeirError(f"cannot read {path}: {e.strerror}") from None
    return "".join(line for _, line in decoded_lines(io.BytesIO(data), str(path)))


def read_json(path: str | os.PathLike, what: str = "JSON file") -> Any:
    path = Path(path)
    if not path.is_file():
        raise MergeirError(f"{what} not found: {path}")
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as e:
        raise MergeirError(f"{path}: invalid JSON at line {e.lineno}: {e.msg}") from None


def parse_jsonl(lines: Iterable[tuple[int, str]], where: str) -> Iterator[tuple[int, dict]]:
    """(line number, object) of each non-blank numbered line; a malformed line names file and line."""
    for n, line in lines:
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise MergeirError(f"{where}:{n}: malformed JSON line ({e.msg})") from None
        if not isinstance(obj, dict):
            raise MergeirError(f"{where}:{n}: expected a JSON object")
        yield n, obj


def iter_jsonl(path: Readable) -> Iterator[tuple[int, dict]]:
    """Yield (line_number, object) for each non-blank line of a file or zip member; a malformed line names file
    and line."""
    path = _as_path(path)
    if not path.is_file():
        raise MergeirError(f"file not found: {path}")
    yield from parse_jsonl(iter_lines(path), str(path))


def write_jsonl(path: str | os.PathLike, rows) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def _hash_file(path: str | os.PathLike, algorithm: str, chunk: int = 1 << 20) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while b := f.read(chunk):
            h.update(b)
    return h.hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    return _hash_file(path, "sha256")


def md5_file(path: str | os.PathLike) -> str:
    """BEIR publishes md5s of its zips; nothing else should use md5."""
    return _hash_file(path, "md5")


def git_blob_sha1(path: str | os.PathLike) -> str:
    """Git's blob id: sha1(b"blob <size>\\0" + bytes) — how the authors' training zips are pinned."""
    data = Path(path).read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
