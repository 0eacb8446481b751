"""The one exception type of the data layer (its own module so readers and loaders share it)."""


class DataError(Exception):
    """A user-facing problem with data (missing/corrupt file, unknown name, offline).

    The message says what is wrong, the valid choices or which files to put where, and how to fix
    it. The CLI prints str(e) without a traceback.
    """
