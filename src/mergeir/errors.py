"""The one exception type a user sees: its message is printed as a single `error:` line by the CLIs."""


class MergeirError(Exception):
    """Bad input or an impossible request. The message must name the file/id/option at fault."""


class OutOfMemory(MergeirError):
    """A GPU ran out of memory; CLIs exit 75 so the pipeline can retry with a smaller batch."""
