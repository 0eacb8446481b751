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


class DiskError(UserError):
    """A file could not be written: the disk is full, read-only or not ours to write."""


# errno of the write failures a user fixes outside the program (ENOSPC, EDQUOT, EROFS, EACCES)
DISK_ERRNOS = {28: "no space left on the device", 122: "disk quota exceeded"}
DISK_ERRNOS |= {30: "read-only file system", 13: "permission denied"}


def disk_problem(e: BaseException) -> str | None:
    """What is wrong with the disk, if `e` is a write failure of DISK_ERRNOS (an OSError, or a
    library's error that quotes the errno, as tensorstore's "[os_error_code='28']" does)."""
    if isinstance(e, OSError) and e.errno in DISK_ERRNOS:
        return DISK_ERRNOS[e.errno]
    text = str(e)
    for errno, what in DISK_ERRNOS.items():
        if f"os_error_code='{errno}'" in text:
            return what
    return None


def disk_error(e: BaseException, writing: str) -> DiskError | None:
    """A DiskError saying what could not be written and how to go on, or None if `e` is not a
    disk problem."""
    what = disk_problem(e)
    if what is None:
        return None
    where = f" ({e.filename})" if isinstance(e, OSError) and e.filename else ""
    return DiskError(
        f"could not write {writing}{where}: {what}. Free space (or make the folder writable, "
        "or choose another out_root=...) and run the same command again: a run resumes from "
        "its last complete checkpoint, and nothing already written is lost."
    )
