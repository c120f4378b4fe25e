"""Matching one file: the externals a scan sets, the engine's scanner, the rule meta attached.

A worker builds a ``Matcher`` from the compiled bytes (``kiosk.packs.load`` made them); the
engine is told by the bytes themselves. Which externals the rules read, and whether any reads
where a file is (so that identical content may share its matches), is decided here from the
pack sources when they compile.
"""

from __future__ import annotations

import re

from kiosk.model import RuleMatch
from kiosk.packs.check import EXTERNALS, RuleMeta
from kiosk.packs.engines import LIBYARA, YARA_X, Engine, engine


def engine_of_blob(blob: bytes) -> Engine:
    """The engine that serialised ``blob`` (YARA-X's start with ``YARA-X``, libyara's ``YARA``)."""
    return engine(YARA_X if blob.startswith(b"YARA-X") else LIBYARA)


# Externals whose value depends on where a file is, not on its bytes (``filetype`` and ``md5``
# are functions of the content; ``owner`` is always empty here).
PLACE_EXTERNALS = ("filename", "filepath", "extension")
_EXTERNAL = re.compile(r"(?<![\w.$#@!])(" + "|".join(EXTERNALS) + r")(?!\w)")
_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"')
_COMMENTS = re.compile(r"//[^\n]*|/\*.*?\*/", re.DOTALL)


def externals_read(sources: dict[str, str]) -> frozenset[str]:
    """The externals any condition may read; errs towards more.

    Decided from the sources: quoted strings, then comments are removed, and the names are
    looked for anywhere else (meta values are strings; a pattern's name starts with ``$``).
    A scan sets only these per file: the others cannot change a result.
    """
    found: set[str] = set()
    for text in sources.values():
        found.update(_EXTERNAL.findall(_COMMENTS.sub(" ", _STRING.sub('""', text))))
    return frozenset(found)


def uses_place_externals(sources: dict[str, str]) -> bool:
    """Whether any condition may read where a file is (name, directory, extension)."""
    return bool(externals_read(sources) & set(PLACE_EXTERNALS))


# --------------------------------------------------------------------------- matching

# Leading bytes -> LOKI/signature-base style file type label (well-known file magic).
_FILE_TYPES: tuple[tuple[bytes, str], ...] = tuple(
    sorted(
        (
            (b"MZ", "EXE"),
            (b"\x7fELF", "ELF"),
            (b"PK\x03\x04", "ZIP"),
            (b"PK\x05\x06", "PKZIP"),
            (b"%PDF", "PDF"),
            (b"\x1f\x8b\x08", "GZIP"),
            (b"BZh", "BZip2"),
            (b"Rar!\x1a\x07", "RAR"),
            (b"7z\xbc\xaf\x27\x1c", "7Zip"),
            (b"\xff\xd8\xff", "JPEG"),
            (b"GIF8", "GIF"),
            (b"\x89PNG\r\n\x1a\n", "PNG"),
            (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "OLE"),
            (b"{\\rtf1", "RTF"),
            (b"MSCF", "CAB"),
            (b"\xca\xfe\xba\xbe", "Class"),
            (b"<?php", "PHP"),
            (b"#!/", "UNIX SCRIPT"),
            (b"#!", "Script"),
            (b"MDMP", "MDMP"),
            (b"L\x00\x00\x00\x01\x14\x02\x00", "LNK"),
            (b"regf", "Registry Hive"),
            (b"ElfFile", "EVTX"),
            (b"<?xml", "XML"),
        ),
        key=lambda t: -len(t[0]),
    )
)


def file_type(data: bytes | bytearray) -> str:
    """The file type label LOKI-style rules test in ``filetype`` (``UNKNOWN`` if none fits)."""
    for magic_bytes, label in _FILE_TYPES:
        if data.startswith(magic_bytes):
            return label
    return "UNKNOWN"


def file_externals(
    data: bytes | bytearray, filename: str, path: str, md5: str = ""
) -> dict[str, str]:
    """The per-file externals, as LOKI sets them: directory, extension with its dot."""
    dot = filename.rfind(".")
    slash = path.rfind("/")
    return {
        "filename": filename,
        "filepath": path[:slash] if slash > 0 else ("/" if slash == 0 else ""),
        "extension": filename[dot:].lower() if dot > 0 else "",
        "filetype": file_type(data),
        "owner": "",
        "md5": md5,
    }


def _some_externals(
    names: tuple[str, ...], data: bytes | bytearray, filename: str, path: str, md5: str
) -> dict[str, str]:
    """``file_externals`` limited to ``names``; nothing is computed when the rules read none."""
    return (
        {k: v for k, v in file_externals(data, filename, path, md5).items() if k in names}
        if names
        else {}
    )


class Matcher:
    """The per-process matcher a worker builds from the compiled bytes."""

    def __init__(
        self,
        blob: bytes,
        meta: dict[tuple[str, str], RuleMeta],
        timeout_s: int,
        gate_blob: bytes | None = None,
        gate_prefixes: tuple[bytes, ...] = (),
        externals: frozenset[str] | None = None,
    ) -> None:
        eng = engine_of_blob(blob)
        # only what the rules read is set per file (None: all of them)
        self._externals = None if externals is None else tuple(sorted(externals))
        self.engine = eng
        self._full = eng.scanner(eng.load_for_scan(blob), timeout_s)
        # files whose head cannot satisfy a format-gated rule get the reduced set (rulegate)
        self._reduced = (
            eng.scanner(eng.load_for_scan(gate_blob), timeout_s) if gate_blob else self._full
        )
        self._prefixes = gate_prefixes
        self._meta = meta

    def match(
        self, data: bytes | bytearray, filename: str, path: str, md5: str = ""
    ) -> tuple[RuleMatch, ...]:
        """Rules matching ``data``; raises ``RuleTimeoutError`` / ``RuleScanError``."""
        externals = (
            file_externals(data, filename, path, md5)
            if self._externals is None
            else _some_externals(self._externals, data, filename, path, md5)
        )
        scanner = self._full if data.startswith(self._prefixes) else self._reduced
        out = []
        for ns, rule in scanner.scan(data, externals):
            rm = self._meta[(ns, rule)]
            out.append(RuleMatch(ns, rule, rm.category, rm.severity, rm.description))
        return tuple(sorted(out, key=lambda r: (r.pack, r.rule)))
