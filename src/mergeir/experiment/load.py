"""load_experiment: the YAML file, its top level, and the section readers in dependency order.

The file is read by a strict SafeLoader (`StrictLoader`): YAML's own rules let a repeated key silently win
(`eval_split: test` then `eval_split: train` scores the train split), and a value Python cannot hold (a
5000-digit integer, 30 February) or an alias bomb would crash or hang far from the line at fault. Each is one
MergeirError naming the file and the line."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError

from ..errors import MergeirError
from .reader import Reader, short
from .sections import (read_collections, read_encoding, read_evaluation, read_lora, read_merge, read_models,
                       read_settings, read_tiny)
from .specs import FORMAT, Experiment

TOP_KEYS = ("format", "name", "reference", "source_model", "models", "tiny", "collections", "settings", "merge",
            "encoding", "evaluation", "lora")
MAX_DEPTH = 64  # nesting levels: an experiment file needs about 6
MAX_VALUES = 100_000  # values once aliases are expanded (data/paper.yaml: about 600); a billion-laughs bomb stops here
MERGE_TAG = "tag:yaml.org,2002:merge"


class StrictLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses, at the line at fault: a key repeated in one mapping, nesting deeper than
    MAX_DEPTH, an alias that contains itself or expands the document past MAX_VALUES values, and a scalar
    Python cannot hold. Merge keys (`<<: *defaults`) keep YAML's meaning: explicit keys override merged ones."""

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0
        self._values = 0
        self._sizes: dict[int, int] = {}  # id(node) -> values in its expansion, once the node is complete

    def _count(self, n: int, mark) -> None:
        self._values += n
        if self._values > MAX_VALUES:
            raise ComposerError(None, None, f"more than {MAX_VALUES} values once aliases are expanded "
                                f"(an alias bomb?)", mark)

    def compose_node(self, parent, index):
        event = self.peek_event()
        mark = event.start_mark
        if self.check_event(yaml.AliasEvent):
            node = super().compose_node(parent, index)
            if id(node) not in self._sizes:
                raise ComposerError(None, None, f"alias *{event.anchor} is inside the node it names "
                                    f"(a structure that contains itself)", mark)
            self._count(self._sizes[id(node)], mark)
            return node
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels", mark)
        start = self._values
        self._count(1, mark)
        node = super().compose_node(parent, index)
        self._depth -= 1
        self._sizes[id(node)] = self._values - start
        return node

    def compose_mapping_node(self, anchor):
        node = super().compose_mapping_node(anchor)
        node.explicit = [k for k, _ in node.value if k.tag != MERGE_TAG]  # before flatten_mapping adds merged keys
        return node

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            self._check_merges(node)
            seen = {}
            for key_node in getattr(node, "explicit", [k for k, _ in node.value if k.tag != MERGE_TAG]):
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:
                    raise ConstructorError(None, None, f"a mapping key must be a plain value, got {short(key)}",
                                           key_node.start_mark) from None
                if first is not None:
                    raise ConstructorError(None, None, f"duplicate key {short(key)} (first at line {first.line + 1}; "
                                           f"YAML would silently keep the last one)", key_node.start_mark)
                seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)

    def _check_merges(self, node) -> None:
        """`<<` twice in one mapping, or `<<: [*a, *b]` where a and b share a key: YAML would keep one of the two
        values by rules (the later `<<`, the earlier list item) nobody writing them has in mind."""
        merges = [(k, v) for k, v in node.value if k.tag == MERGE_TAG]
        if len(merges) > 1:
            raise ConstructorError(None, None, f"duplicate key '<<' (first at line {merges[0][0].start_mark.line + 1}; "
                                   "YAML would silently keep one of them)", merges[1][0].start_mark)
        sources = merges[0][1].value if merges and isinstance(merges[0][1], yaml.SequenceNode) else []
        first: dict = {}
        for source in sources:
            value = self.construct_object(source, deep=True)
            for key in value if isinstance(value, dict) else ():
                if key in first:
                    raise ConstructorError(None, None, f"key {short(key)} is merged from two mappings (lines "
                                           f"{first[key].line + 1} and {source.start_mark.line + 1}; YAML would "
                                           "silently keep the first)", merges[0][0].start_mark)
                first[key] = source.start_mark

    def construct_yaml_int(self, node):
        """YAML 1.1 (PyYAML) reads 010 as 8 and 1:40 as 100; YAML 1.2 reads 10 and the text '1:40'."""
        text = str(node.value).replace("_", "")
        if ":" in text or re.fullmatch(r"[-+]?0[0-9]+", text):
            raise ConstructorError(None, None, f"{short(node.value)} is an ambiguous number (YAML 1.1 reads a "
                                   "leading 0 as octal and a:b as base 60): write it in plain decimal, or quote "
                                   "it", node.start_mark)
        return super().construct_yaml_int(node)

    def construct_yaml_float(self, node):
        if ":" in str(node.value):
            raise ConstructorError(None, None, f"{short(node.value)} is an ambiguous number (YAML 1.1 reads a:b as "
                                   "base 60): write it in plain decimal, or quote it", node.start_mark)
        return super().construct_yaml_float(node)

    def construct_object(self, node, deep=False):
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, OverflowError) as e:  # int('5000 digits'), date(2024, 2, 30)
            value = str(node.value) if isinstance(node, yaml.ScalarNode) else node.tag
            shown = repr(value) if len(value) <= 30 else repr(value[:24]) + f"... ({len(value)} characters)"
            raise ConstructorError(None, None, f"cannot read {shown}: {str(e).split(';')[0]}",
                                   node.start_mark) from None


StrictLoader.add_constructor("tag:yaml.org,2002:int", StrictLoader.construct_yaml_int)
StrictLoader.add_constructor("tag:yaml.org,2002:float", StrictLoader.construct_yaml_float)


def _read_yaml(path: Path):
    try:
        data = path.read_bytes()
    except OSError as e:
        raise MergeirError(f"{path}: cannot read ({e.strerror or e})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:  # the project's spelling (mergeir.io): file:line, the byte and its offset
        line = data[:e.start].count(b"\n") + 1
        raise MergeirError(f"{path}:{line}: not UTF-8 text (byte 0x{data[e.start]:02x} at byte offset {e.start})") \
            from None
    try:
        return yaml.load(text, Loader=StrictLoader)  # noqa: S506 - StrictLoader is a SafeLoader
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = " ".join(str(e.problem or e.context or "").split()) or "malformed"
        raise MergeirError(f"{path}: invalid YAML{where}: {problem}") from None
    except yaml.reader.ReaderError as e:  # a control character such as NUL
        line = text[:e.position].count("\n") + 1
        raise MergeirError(f"{path}: invalid YAML at line {line}: {e.reason} (character #x{e.character:04x})") \
            from None
    except yaml.YAMLError as e:
        raise MergeirError(f"{path}: invalid YAML: {' '.join(str(e).split())}") from None
    except RecursionError:  # pragma: no cover - MAX_DEPTH stops nesting long before
        raise MergeirError(f"{path}: invalid YAML: nested too deeply") from None


def load_experiment(path: str | Path, check_paths: bool = True) -> Experiment:
    """Read and validate an experiment YAML; any problem is one MergeirError naming file and key (or line).

    check_paths: local paths (a collection's `path:`, a model's `source:`, `lora.deepspeed`) must exist beside
    the (real, symlinks followed) file. PLAN turns it off: in a container only the experiment file itself is
    mounted, and main.nf checks those paths (checkIfExists)."""
    path = Path(path)
    if path.is_dir():
        raise MergeirError(f"experiment file {path} is a folder: give the YAML file")
    if not path.is_file():
        raise MergeirError(f"experiment file not found: {path}")
    r = Reader(path)
    raw = r.mapping(_read_yaml(path), "top level")
    r.only(raw, TOP_KEYS, "top level")
    fmt = r.get(raw, "format", "", int)
    if fmt != FORMAT:
        r.fail("format", f"this mergeir reads format {FORMAT}, the file says {fmt}")
    name = r.get(raw, "name", "", str)
    r.mapping(raw.get("reference") or {}, "reference")  # free-form citation metadata: read by nobody

    folder = path.resolve().parent if check_paths else None
    models = read_models(r, r.get(raw, "models", "", dict), folder)
    source_model = r.get(raw, "source_model", "", str)
    if source_model not in models:
        r.fail("source_model", f"{short(source_model)} is not a key of models ({', '.join(models)})")
    settings = read_settings(r, r.get(raw, "settings", "", dict))
    collections = read_collections(r, r.get(raw, "collections", "", dict), models, source_model, settings, folder)
    merge = read_merge(r, r.get(raw, "merge", "", dict), collections)
    encoding = read_encoding(r, r.get(raw, "encoding", "", dict))
    evaluation = read_evaluation(r, raw.get("evaluation"))
    lora = read_lora(r, r.get(raw, "lora", "", dict), folder)
    tiny = read_tiny(r, raw.get("tiny"), models, collections, merge)
    return Experiment(path=path.resolve(), name=name, source_model=source_model, models=models,
                      collections=collections, settings=settings, merge=merge, encoding=encoding,
                      evaluation=evaluation, lora=lora, tiny=tiny, raw=raw)
