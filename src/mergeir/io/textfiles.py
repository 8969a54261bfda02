"""UTF-8 text, JSON and JSONL: canonical JSON written atomically; files read with checks that name the file, line
and byte at fault."""

from __future__ import annotations

import codecs
import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any, Iterable, Iterator

from ..errors import MergeirError
from .atomic import atomic_write_text


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
    text = read_text(path)
    try:
        return json.loads(text, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as e:
        raise MergeirError(f"{path}: invalid JSON at line {e.lineno}: {e.msg}") from None
    except _DuplicateKey as e:
        raise MergeirError(f"{path}: invalid JSON: key {e.args[0]!r} appears twice in one object (the last one "
                           "would silently win)") from None
    except ValueError as e:  # an integer past Python's 4300-digit limit
        raise MergeirError(f"{path}: invalid JSON: {str(e).split(';')[0]}") from None
    except RecursionError:
        raise MergeirError(f"{path}: invalid JSON: nested too deeply") from None


def read_json_object(path: str | os.PathLike, what: str = "JSON file") -> dict:
    """read_json of a file that must hold one JSON object (a meta, a sidecar, a grid)."""
    doc = read_json(path, what)
    if not isinstance(doc, dict):
        raise MergeirError(f"{path}: expected a JSON object, got {type(doc).__name__}")
    return doc


class _DuplicateKey(Exception):
    pass


def _unique_keys(pairs: list) -> dict:
    out = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def parse_jsonl(lines: Iterable[tuple[int, str]], where: str) -> Iterator[tuple[int, dict]]:
    """(line number, object) of each non-blank numbered line; a malformed line names file and line."""
    for n, line in lines:
        if not line.strip():
            continue
        try:
            obj = json.loads(line, object_pairs_hook=_unique_keys)
        except json.JSONDecodeError as e:
            raise MergeirError(f"{where}:{n}: malformed JSON line ({e.msg})") from None
        except _DuplicateKey as e:
            raise MergeirError(f"{where}:{n}: key {e.args[0]!r} appears twice in one object (the last one would "
                               "silently win)") from None
        except (ValueError, RecursionError) as e:  # a 5000-digit integer, nesting past the recursion limit
            raise MergeirError(f"{where}:{n}: malformed JSON line ({str(e).split(';')[0] or 'nested too deeply'})") \
                from None
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
