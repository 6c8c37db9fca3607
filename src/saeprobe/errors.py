"""User-facing errors.

Anything a user can cause (bad config, wrong shapes, missing files) raises `SaeprobeError` with a
one-line message that names the problem and the fix. The CLI prints it without a traceback.
"""


class SaeprobeError(Exception):
    """An error caused by input the user can fix; the message says how."""


class ConfigError(SaeprobeError):
    """A configuration value is invalid."""


class DataError(SaeprobeError):
    """Activations or another data input are malformed."""


class FormatError(SaeprobeError):
    """A file on disk is missing, corrupt, or not in the expected format."""
