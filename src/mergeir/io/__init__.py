"""I/O every stage shares: the output contract, atomic outputs, checked UTF-8 / JSON / JSONL reading, hashes.

Every stage writes through `atomic_dir` (a folder) or `check_output_file` + `atomic_write_text` / `write_json` (one
file): `--out` is checked against the inputs and the stage's marker (`Stage`) before anything is written and again
right before the rename; a full file system is one NoSpace error; temporaries carry their owner (`owner_tag`) so the
next run removes what a killed one left (`remove_stale`, `scratch_dir`). Readers (`read_json`, `read_text`,
`iter_jsonl`, `iter_lines`, `iter_fields`, `decoded_lines`) name the file, line and byte at fault; `sha256_file`,
`md5_file`, `git_blob_sha1` pin inputs.

Modules: `contract` (which --out a stage may write), `atomic` (temporary, then renamed), `space` (a full file
system), `textfiles` (JSON, JSONL, UTF-8 text), `hashes`.
"""

from .atomic import atomic_dir, atomic_write_text, owned_tempdir, owner_tag, remove_stale, scratch_dir
from .contract import Inputs, Stage, check_output_file, check_output_path, check_replaceable, resolved
from .hashes import git_blob_sha1, md5_file, sha256_file
from .space import free_bytes, is_no_space, size_text
from .textfiles import (Readable, decoded_lines, dumps_json, iter_fields, iter_jsonl, iter_lines, parse_jsonl,
                        read_json, read_json_object, read_text, write_json, write_jsonl)

__all__ = [
    "Inputs", "Readable", "Stage", "atomic_dir", "atomic_write_text", "check_output_file", "check_output_path",
    "check_replaceable", "decoded_lines", "dumps_json", "free_bytes", "git_blob_sha1", "is_no_space", "iter_fields",
    "iter_jsonl", "iter_lines", "md5_file", "owned_tempdir", "owner_tag", "parse_jsonl", "read_json", "read_json_object", "read_text",
    "remove_stale", "resolved", "scratch_dir", "sha256_file", "size_text", "write_json", "write_jsonl",
]
