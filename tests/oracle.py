"""The Sleuth Kit CLI (``fls``, ``icat``, ``mmls``) as an independent oracle for the engine.

The CLI is Debian's build of TSK, a different version from the one pytsk3 bundles, run as a
separate program over the raw bytes: when both agree, the walk and the reads are right.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

SECTOR = 512
_LINE = re.compile(
    r"^(?P<types>\S+/\S+) (?P<deleted>\* )?(?P<inode>[0-9-]+)(?P<realloc>\(realloc\))?"
    r":\t(?P<path>.*)$"
)


def require_tsk() -> None:
    """The oracle is part of the test suite, not optional: fail loudly when it is missing."""
    missing = [t for t in ("fls", "icat", "mmls") if shutil.which(t) is None]
    if missing:
        raise RuntimeError(
            f"the Sleuth Kit CLI is missing ({', '.join(missing)}): apt-get install sleuthkit"
        )


@dataclass(frozen=True)
class FlsEntry:
    name_type: str
    meta_type: str
    inode: str  # as printed: "12" or NTFS "36-128-3"
    deleted: bool
    realloc: bool
    path: str  # with a leading "/"

    @property
    def is_dir(self) -> bool:
        if self.meta_type in ("d", "V"):
            return True
        return self.meta_type == "-" and self.name_type in ("d", "V")

    @property
    def inode_number(self) -> int:
        return int(self.inode.split("-")[0])


def fls(image: Path, offset: int, fs_type: str | None = None) -> list[FlsEntry]:
    """Every entry ``fls -r -p`` lists for the filesystem at byte ``offset``."""
    require_tsk()
    cmd = ["fls", "-r", "-p", "-o", str(offset // SECTOR)]
    if fs_type:
        cmd += ["-f", fs_type]
    out = subprocess.run([*cmd, str(image)], capture_output=True, check=True).stdout
    entries = []
    for raw in out.decode("utf-8", "backslashreplace").splitlines():
        m = _LINE.match(raw)
        if not m:
            raise ValueError(f"unexpected fls line: {raw!r}")
        name_type, meta_type = m["types"].split("/")
        entries.append(
            FlsEntry(
                name_type,
                meta_type,
                m["inode"],
                bool(m["deleted"]),
                bool(m["realloc"]),
                "/" + m["path"],
            )
        )
    return entries


def icat_sha256(image: Path, offset: int, inode: str, fs_type: str | None = None) -> str | None:
    """SHA-256 of what ``icat`` reads for ``12`` or ``36-128-3``; None when icat fails."""
    require_tsk()
    cmd = ["icat", "-o", str(offset // SECTOR)]
    if fs_type:
        cmd += ["-f", fs_type]
    run = subprocess.run([*cmd, str(image), inode], capture_output=True, check=False)
    return hashlib.sha256(run.stdout).hexdigest() if run.returncode == 0 else None
