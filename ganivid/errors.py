"""User-facing errors: one subclass per failure a user can cause; the CLI prints them as one line."""


class GanividError(Exception):
    """Base of every error a user can cause; `ganivid` prints `error: <message>` and exits 1."""


class ConfigError(GanividError):
    """A bad preset, an unknown config key or an invalid option value."""


class DataError(GanividError):
    """A dataset that cannot be used: missing, empty, wrong sizes, bad AU columns or labels."""


class CheckpointError(GanividError):
    """A checkpoint that is missing, unreadable or made for another configuration."""


class VideoError(GanividError):
    """A video that cannot be read or written."""


class NoFaceError(GanividError):
    """No usable face where one is required."""


class CurveError(GanividError):
    """A malformed AU curve file or inline AU edit."""
