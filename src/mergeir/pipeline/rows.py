"""The planner's row building blocks: typed option lists (`Options`), one spelling per alpha (`alpha_text`), the
row table indexed by id (`Rows`, `_row`), and the parsing of the pipeline's text parameters."""

from __future__ import annotations

import re
import shlex
from decimal import Decimal
from typing import Any

from ..errors import MergeirError

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def option(name: str) -> str:
    """A parameter of the plan as plan.py spells it, and as the pipeline does when that differs: PLAN runs
    plan.py with the pipeline's params, and a user may have typed either (`--allow-unpinned` / `--allow_unpinned`)."""
    dashed = "--" + name.replace("_", "-")
    return dashed if "_" not in name else f"{dashed} (pipeline: --{name})"


def alpha_text(a: float) -> str:
    """One spelling per alpha (0.750 and 0.75 -> "0.75", 1.0 -> "1"), so equal merges get one id."""
    d = Decimal(repr(float(a))).normalize()
    return format(d, "f")


def parse_bool(value: Any, what: str) -> bool:
    """Pipeline params arrive as strings under Nextflow's strict parser ('false' is truthy in Groovy)."""
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no", "", "null"):
        return False
    raise MergeirError(f"{what}: {_short(value)} is not true or false")


def _short(value: Any) -> str:
    text = repr(str(value))
    return text if len(text) <= 40 else text[:36] + "...'"


def parse_count(value: Any, what: str, most: int | None = None, why: str = "") -> int:
    """A whole number >= 1 (and <= most) given as text (Nextflow params arrive as strings); why: after `most`."""
    text = str(value).strip()
    m = re.fullmatch(r"([+-]?)([0-9]+)", text)  # ASCII digits only: int() also reads '٣' and '1_000'
    if not m:
        raise MergeirError(f"{what}: {_short(value)} is not a whole number")
    sign, digits = m.group(1), m.group(2).lstrip("0")
    if sign == "-" or not digits:
        raise MergeirError(f"{what}: must be >= 1, got {_short(text)[1:-1]}")
    if len(digits) > 18 or (most is not None and int(digits) > most):  # int() of 5000 digits raises
        raise MergeirError(f"{what}: {_short(digits)[1:-1]} is too many"
                           + (f" (at most {most}{why})" if most is not None else ""))
    return int(digits)


class Rows(dict):
    """{process: [row, ...]} with an index {process: {id: row}}: `_row` finds a task by id in O(1), so planning
    is linear in the number of tasks (--encode-shards N makes N tasks of every ENCODE)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.index: dict[str, dict[str, dict]] = {p: {r["id"]: r for r in rs} for p, rs in self.items()}


class Options:
    """An argument list built from typed values: None is left out, booleans become flags, lists are comma-joined."""

    def __init__(self, tokens: list[str] | None = None):
        self.tokens = list(tokens or [])

    def add(self, flag: str, value: Any) -> "Options":
        if value is not None:
            if isinstance(value, (list, tuple)):
                value = ",".join(map(str, value))
            self.tokens += [flag, alpha_text(value) if isinstance(value, float) else str(value)]
        return self

    def flag(self, flag: str, on: bool) -> "Options":
        if on:
            self.tokens.append(flag)
        return self

    def switch(self, flag: str, on: bool) -> "Options":
        self.tokens.append(flag if on else "--no-" + flag[2:])
        return self

    def text(self) -> str:
        return " ".join(shlex.quote(t) for t in self.tokens)


def _row(process_rows: dict, process: str, id_: str, inputs: dict, options: Options | list, **fields) -> dict:
    if not _ID.match(id_):
        raise MergeirError(f"task id {id_!r} is not a plain file name")
    if "train_file" in fields and not _ID.match(str(fields["train_file"])):  # templates use it unquoted, like the id
        raise MergeirError(f"training file {fields['train_file']!r} is not a plain file name")
    tokens = options.tokens if isinstance(options, Options) else list(options)
    row = {"id": id_, "inputs": inputs, "options": Options(tokens).text(), "produces": {id_: ""}, **fields}
    rows = process_rows.setdefault(process, [])
    if isinstance(process_rows, Rows):
        index = process_rows.index.setdefault(process, {})
        same = index.get(id_)
    else:  # a plain dict (a test's few rows): scan it
        index, same = None, next((r for r in rows if r["id"] == id_), None)
    if same is not None and same != row:
        raise MergeirError(f"plan: two different {process} tasks share the id {id_}")
    if same is None:
        rows.append(row)
        if index is not None:
            index[id_] = row
    return row
