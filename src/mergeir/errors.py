"""The one exception type a user sees: its message is printed as a single `error:` line by the CLIs."""

import errno


class MergeirError(Exception):
    """Bad input or an impossible request. The message must name the file/id/option at fault."""


class OutOfMemory(MergeirError):
    """A GPU ran out of memory; CLIs exit 75 so the pipeline can retry with a smaller batch."""


class NoSpace(MergeirError, OSError):
    """The file system of an output filled up (ENOSPC / EDQUOT): a MergeirError (one `error:` line, exit 2) that
    is still an OSError with errno ENOSPC for callers that handle OS errors. The message names the output and
    the space it needs (mergeir.io.atomic_dir, atomic_write_text)."""

    def __init__(self, message: str, filename=None):
        OSError.__init__(self, errno.ENOSPC, "No space left on device", None if filename is None else str(filename))
        self.message = message

    def __str__(self) -> str:
        return self.message
