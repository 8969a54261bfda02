"""Typed access to an experiment file's YAML tree: every refusal is one MergeirError naming the file and the
dotted key at fault (`collections.scifact.trials.full.full.alpha[0]: ...`)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

from ..errors import MergeirError

KEY = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


def _names(types) -> tuple:
    return types if isinstance(types, tuple) else (types,)


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
            self.fail(where, f"unknown {what} {sorted(unknown)}")

    def entries(self, node: dict, where: str, what: str) -> Iterator[tuple[str, dict, str]]:
        """(key, mapping, dotted where) for each entry of a keyed section such as models: or collections:."""
        for key, value in self.mapping(node, where).items():
            at = f"{where}.{key}"
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
            self.fail(at, f"expected {'/'.join(t.__name__ for t in _names(types))}, got {value!r}")
        return value

    def choice(self, node: dict, key: str, where: str, choices, *, default=None) -> str:
        value = self.get(node, key, where, str, required=default is None, default=default)
        if value not in choices:
            self.fail(f"{where}.{key}", f"{value!r} is not one of {', '.join(choices)}")
        return value

    def alpha(self, value, where: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
            self.fail(where, f"alpha must be a number in [0, 1], got {value!r}")
        return float(value)

    def positive_int(self, node: dict, key: str, where: str, *, required=True, default=None):
        value = self.get(node, key, where, int, required=required, default=default)
        if value is not None and value < 1:
            self.fail(f"{where}.{key}", f"must be >= 1, got {value}")
        return value
