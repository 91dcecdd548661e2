"""Private key files: written 0600, refused when group or others may read them (as ssh does).

Every secret sigex keeps on disk (signing, encryption and TLS keys, the
pseudonym keys, a publisher's record-key secret) is read through
:func:`read_private`, so a key left at 0644 by a careless copy stops the
process with one line naming the file and the fix, instead of being used.
The check is on the mode bits, not on who can read the file: root reads a
0600 file anyway, but a 0644 one is readable by every account on the host.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from sigex.identity.errors import InsecureKeyFile, MissingKeyFile

PRIVATE_MODE = 0o600
#: group and others: any of these bits on a private key file is refused
_SHARED_BITS = 0o077


def check_private(path: Path) -> None:
    """Raise :class:`InsecureKeyFile` when group or others have any access to ``path``."""
    try:
        mode = stat.S_IMODE(Path(path).stat().st_mode)
    except FileNotFoundError:
        raise MissingKeyFile(path) from None
    if mode & _SHARED_BITS:
        raise InsecureKeyFile(path, mode)


def read_private(path: Path) -> bytes:
    """The bytes of a private key file, after :func:`check_private`."""
    check_private(path)
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise MissingKeyFile(path) from None


def write_private(path: Path, content: bytes, *, exclusive: bool = False) -> None:
    """Write ``content`` to ``path`` with mode 0600 from the first byte on.

    With ``exclusive`` an existing file is never replaced (``FileExistsError``).
    """
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
    descriptor = os.open(path, flags, PRIVATE_MODE)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(content)
    Path(path).chmod(PRIVATE_MODE)


def create_private_file(path: Path) -> None:
    """Make sure ``path`` exists as a 0600 file (for data files others must not read).

    An existing file keeps its content; only a new file is created, empty and 0600.
    """
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE)
    except FileExistsError:
        return
    os.close(descriptor)


def shred(path: Path) -> bool:
    """Overwrite ``path`` with random bytes, flush it to disk and remove it.

    Returns False when there was no such file. Overwriting helps on simple
    file systems; on copy-on-write or flash storage old blocks may survive, so
    removal of every copy (backups included) is what destroys a key.
    """
    try:
        size = Path(path).stat().st_size
    except FileNotFoundError:
        return False
    with Path(path).open("r+b") as handle:
        handle.write(os.urandom(max(size, 1)))
        handle.flush()
        os.fsync(handle.fileno())
    Path(path).unlink()
    return True
