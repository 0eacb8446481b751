"""The user-facing exception types (the bottom of the house: every layer may raise them).

Each message says what is wrong, what is valid and how to fix it; the command-line entries print
str(e) without a traceback and exit with status 2.
"""


class UserError(Exception):
    """A problem the user can fix (a config, a data file, a run folder)."""


class ConfigError(UserError, ValueError):
    """A user's config is invalid; the message says how to fix it."""


class DataError(UserError):
    """A problem with data: a missing or corrupt file, an unknown name, no network."""
