"""A full file system: telling ENOSPC / EDQUOT apart in whatever exception reports it, and the space left."""

from __future__ import annotations

import contextlib
import errno
import os
import re
from pathlib import Path

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
        # shutil.Error (copytree: an OSError without errno listing each file's error) and other libraries' types
        if (not isinstance(e, OSError) or e.errno is None) and any(t in str(e).lower() for t in _NO_SPACE_TEXT):
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
