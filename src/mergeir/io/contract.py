"""The output contract: which --out a stage may write (docs/interfaces.md, "The output contract").

One place decides whether a stage may write --out: the guard refuses an --out that is, contains or lies inside an
input (symlinks resolved), '.', '..', '' and the current folder or its parents; an existing folder is replaced only
when its marker file (`Stage`) says this stage wrote it (or --force). The same checks run again right before the
final rename (`_Guard.recheck`, used by mergeir.io.atomic)."""

from __future__ import annotations

import errno
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Mapping

from ..errors import MergeirError


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
