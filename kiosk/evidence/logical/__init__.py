"""Logical evidence: what a phone or a seized device most often arrives as, when not an image.

A zip or tar of a phone's whole file system (as extraction tools write them), a folder copied
off a device, an iTunes/Finder backup (``Manifest.db`` and files named by SHA-1, encrypted with
the backup password or not), an Android ADB backup (``.ab``: zlib-compressed tar, optionally
AES-encrypted). Each is one more ``Filesystem`` (``kiosk.evidence.filesystems``) behind the
same locator chain as a disk: ``VolumeLoc(0, 0) -> FsLoc(fs_type) -> StreamLoc(member)``.

Lives here: ``sniff.py`` (which kind of logical evidence a path is: first bytes only, safe in
the app's process), ``source.py`` (the opened evidence: its one region, its reader, its own
SHA-256), the readers ``zipfs.py``, ``tarfs.py``, ``folder.py``, ``itunes.py`` (with
``keybag.py`` for encrypted backups) and ``adb.py``; ``stream.py`` and ``common.py`` hold what
they share. Nothing is ever extracted or written: members are streamed from the evidence, and a
member's name is data, never a host path.

Archives found *inside* evidence are another room's work; here an archive is the evidence.

May import: ``kiosk.evidence.media``, ``kiosk.evidence.filesystems``, ``kiosk.evidence.resolve``,
``kiosk.evidence.headers``, ``kiosk.model``, ``kiosk.locator``, ``kiosk.errors``, the standard
library's archive readers and ``cryptography``. This ``__init__`` imports nothing (it holds one
constant): ``resolve`` imports ``sniff`` while the media layer imports ``resolve``.
"""

# The fs_type of every logical reader (``FsLoc.fs_type``), for the report's wording.
LOGICAL_FS_TYPES = frozenset({"zip", "tar", "folder", "itunes", "adb"})
