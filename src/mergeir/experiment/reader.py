"""Typed access to an experiment file's YAML tree: every refusal is one MergeirError naming the file and the
dotted key at fault (`collections.scifact.trials.full.full.alpha[0]: ...`)."""

from __future__ import annotations

import os
import re
import reprlib
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

from ..errors import MergeirError

KEY = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
MAX_COUNT = 2**31 - 1  # the largest count (steps, queries, lengths, layers, ...) a file may give
MAX_SEED = 2**32 - 1  # seeds every RNG downstream takes (numpy's legacy range; torch takes 64 bits)
_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 60
_REPR.maxlong = 60


def _names(types) -> tuple:
    return types if isinstance(types, tuple) else (types,)


def short(value) -> str:
    """A value as an error message shows it: at most a line, whatever the file holds (a 4000-digit number, a
    list nested a hundred deep)."""
    return _REPR.repr(value)


def dotted(where: str, key) -> str:
    """`where.key` for a message, a very long key cut short."""
    text = str(key)
    return f"{where}.{text if len(text) <= 40 else text[:30] + f'...({len(text)} characters)'}"


def listed(keys) -> list:
    """Keys in a stable order for a message, whatever their YAML types (null, 1 and 'a' do not compare)."""
    return sorted(keys, key=lambda k: (type(k).__name__, str(k)))


class Reader:
    def __init__(self, path: Path):
        self.path = path

    def fail(self, where: str, msg: str) -> NoReturn:
        raise MergeirError(f"{self.path}: {where}: {msg}")

    def mapping(self, node, where: str) -> dict:
        if not isinstance(node, dict):
            self.fail(where, f"expected a mapping, got {type(node).__name__}")
        return node

    def only(self, node: dict, allowed, where: str, what: str = "keys") -> None:
        """Refuse keys outside `allowed`: a misspelt key silently keeping its default would change a result."""
        unknown = set(node) - set(allowed)
        if unknown:
            self.fail(where, f"unknown {what} {short(listed(unknown))} (known: {', '.join(allowed)})")

    def entries(self, node: dict, where: str, what: str) -> Iterator[tuple[str, dict, str]]:
        """(key, mapping, dotted where) for each entry of a keyed section such as models: or collections:."""
        for key, value in self.mapping(node, where).items():
            at = dotted(where, key)
            if not isinstance(key, str) or not KEY.match(key):
                self.fail(at, f"{what} keys are lower-case words (a-z, 0-9, -, _)")
            yield key, self.mapping(value, at), at

    def get(self, node: dict, key: str, where: str, types, *, required=True, default=None):
        at = f"{where}.{key}" if where else key
        if key not in node or node[key] is None:
            if required:
                self.fail(at, "missing")
            return default
        value = node[key]
        if bool in _names(types):
            ok = isinstance(value, bool)
        else:  # YAML's true is not a number
            ok = isinstance(value, types) and not isinstance(value, bool)
        if not ok:
            self.fail(at, f"expected {'/'.join(t.__name__ for t in _names(types))}, got {short(value)}")
        return value

    def choice(self, node: dict, key: str, where: str, choices, *, default=None) -> str:
        value = self.get(node, key, where, str, required=default is None, default=default)
        if value not in choices:
            self.fail(f"{where}.{key}", f"{short(value)} is not one of {', '.join(choices)}")
        return value

    def alpha(self, value, where: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
            self.fail(where, f"alpha must be a number in [0, 1], got {short(value)}")
        return float(value)

    def positive_int(self, node: dict, key: str, where: str, *, required=True, default=None):
        value = self.get(node, key, where, int, required=required, default=default)
        if value is not None and value < 1:
            self.fail(f"{where}.{key}", f"must be >= 1, got {short(value)}")
        if value is not None and value > MAX_COUNT:
            self.fail(f"{where}.{key}", f"must be at most {MAX_COUNT}, got {short(value)}")
        return value

    def seed(self, node: dict, key: str, where: str, *, default: int = 0) -> int:
        """A seed: a negative one would draw what its absolute value draws (random.Random(-5) == Random(5))."""
        value = self.get(node, key, where, int, required=False, default=default)
        if not 0 <= value <= MAX_SEED:
            self.fail(f"{where}.{key}", f"a seed must be within [0, {MAX_SEED}], got {short(value)}")
        return value

    def local_path(self, node: dict, key: str, where: str, folder: Path | None, *, kind: str,
                   required=False) -> str | None:
        """A path written relative to the experiment file; with `folder` (the file's real folder) it must exist and
        be of `kind`: "file", "folder", or "folder or zip" (a BEIR collection)."""
        value = self.get(node, key, where, str, required=required)
        if value is not None and not value.strip():  # "" is the experiment's own folder
            self.fail(f"{where}.{key}", "is empty")
        if value is None or folder is None:
            return value
        p = folder / value
        try:
            found = "folder" if p.is_dir() else "file" if p.is_file() else None
            link = found is None and os.path.lexists(p)
        except (OSError, ValueError):  # a NUL byte, a name too long
            found, link = None, False
        if found is None:
            why = "is a broken link or a symlink loop" if link else "does not exist"
            self.fail(f"{where}.{key}", f"{short(value)} {why} (relative to {folder})")
        if found not in kind.split(" or ") and not (found == "file" and "zip" in kind and zipfile.is_zipfile(p)):
            self.fail(f"{where}.{key}", f"{short(value)} is a {found}, not a {kind} (relative to {folder})")
        return value
