"""Disguised files: content of one kind under a name that says another (a JPEG named ``.dll``).

Why by *family* and not by exact type: a ``.jpg`` that is really a PNG, or a ``.doc`` that Word
saved as ``.docx``, is sloppy, not hidden; what hides material from a quick look is a picture, a
video, an archive or a program given the name of something of another family. So the extension
gives a family, libmagic's type (of the file's head, as the scan already computed it) gives the
families the content may belong to, and only when the two do not meet is the file a finding.

Kept deliberately narrow, because every false alarm costs an officer's time:

- an extension not in the table (``.dat``, ``.bin``, ``.tmp``, none) says nothing: no finding;
- a type libmagic cannot name (``application/octet-stream``, empty files) says nothing;
- ZIP content belongs to archives *and* documents (OOXML, ODF and EPUB are ZIPs, and libmagic
  names them ``application/zip`` when their head does not show more), so a ZIP named ``.docx``
  is not a finding, a ZIP named ``.txt`` or ``.jpg`` is;
- OLE compound files belong to documents, executables (``.msi``) and databases (``Thumbs.db``).
"""

from __future__ import annotations

from kiosk.model import BUILTIN_PACK, DISGUISED_FILE, RuleMatch

PICTURE, VIDEO, ARCHIVE, EXECUTABLE, DOCUMENT, DATABASE, TEXT = (
    "picture",
    "video",
    "archive",
    "executable",
    "document",
    "database",
    "text",
)
SEVERITY = "low"

# extension (lower case, without the dot) -> the family its name claims
_EXTENSIONS: dict[str, str] = {
    **dict.fromkeys(
        (
            "jpg",
            "jpeg",
            "jpe",
            "jfif",
            "png",
            "gif",
            "bmp",
            "webp",
            "tif",
            "tiff",
            "heic",
            "heif",
            "ico",
        ),
        PICTURE,
    ),
    **dict.fromkeys(
        ("mp4", "m4v", "mov", "avi", "mkv", "webm", "wmv", "flv", "mpg", "mpeg", "3gp"), VIDEO
    ),
    **dict.fromkeys(
        ("zip", "7z", "rar", "gz", "tgz", "bz2", "xz", "tar", "zst", "cab", "jar", "apk"),
        ARCHIVE,
    ),
    # not ".so": on Linux, libc.so and friends are text linker scripts
    **dict.fromkeys(("exe", "dll", "sys", "scr", "cpl", "ocx", "msi"), EXECUTABLE),
    **dict.fromkeys(
        ("pdf", "doc", "docx", "xls", "xlsx", "ppt", "pptx", "odt", "ods", "odp", "rtf", "epub"),
        DOCUMENT,
    ),
    **dict.fromkeys(("sqlite", "sqlite3", "db3", "mdb", "accdb"), DATABASE),
    **dict.fromkeys(("txt", "csv", "log", "md", "ini", "json", "xml", "htm", "html"), TEXT),
}

_ZIP = frozenset({ARCHIVE, DOCUMENT})
_OLE = frozenset({DOCUMENT, EXECUTABLE, DATABASE})

# exact libmagic MIME types -> the families such content may be named as
_TYPES: dict[str, frozenset[str]] = {
    "application/zip": _ZIP,
    "application/java-archive": frozenset({ARCHIVE}),
    "application/vnd.android.package-archive": frozenset({ARCHIVE}),
    "application/x-7z-compressed": frozenset({ARCHIVE}),
    "application/vnd.rar": frozenset({ARCHIVE}),
    "application/x-rar": frozenset({ARCHIVE}),
    "application/gzip": frozenset({ARCHIVE}),
    "application/x-bzip2": frozenset({ARCHIVE}),
    "application/x-xz": frozenset({ARCHIVE}),
    "application/x-tar": frozenset({ARCHIVE}),
    "application/zstd": frozenset({ARCHIVE}),
    "application/vnd.ms-cab-compressed": frozenset({ARCHIVE}),
    "application/vnd.microsoft.portable-executable": frozenset({EXECUTABLE}),
    "application/x-dosexec": frozenset({EXECUTABLE}),
    "application/x-executable": frozenset({EXECUTABLE}),
    "application/x-pie-executable": frozenset({EXECUTABLE}),
    "application/x-sharedlib": frozenset({EXECUTABLE}),
    "application/x-mach-binary": frozenset({EXECUTABLE}),
    "application/x-msi": frozenset({EXECUTABLE}),
    "application/pdf": frozenset({DOCUMENT}),
    "application/msword": frozenset({DOCUMENT}),
    "application/vnd.ms-excel": frozenset({DOCUMENT}),
    "application/vnd.ms-powerpoint": frozenset({DOCUMENT}),
    "application/vnd.ms-office": _OLE,
    "application/x-ole-storage": _OLE,
    "application/CDFV2": _OLE,
    "application/rtf": frozenset({DOCUMENT}),
    "text/rtf": frozenset({DOCUMENT}),
    "application/epub+zip": frozenset({DOCUMENT}),
    "application/vnd.sqlite3": frozenset({DATABASE}),
    "application/x-sqlite3": frozenset({DATABASE}),
    "application/x-msaccess": frozenset({DATABASE}),
}
# families named by the start of the MIME type
_PREFIXES: tuple[tuple[str, frozenset[str]], ...] = (
    ("image/", frozenset({PICTURE})),
    ("video/", frozenset({VIDEO})),
    ("application/vnd.openxmlformats-officedocument.", _ZIP),
    ("application/vnd.oasis.opendocument.", _ZIP),
    ("text/", frozenset({TEXT})),
)
_LABEL = {
    PICTURE: "a picture",
    VIDEO: "a video",
    ARCHIVE: "an archive",
    EXECUTABLE: "a program",
    DOCUMENT: "a document",
    DATABASE: "a database",
    TEXT: "text",
}


def claimed_family(filename: str) -> str | None:
    """The family a name's extension claims; None for names the table does not know."""
    stem, dot, ext = filename.rpartition(".")
    if not dot or not stem:
        return None
    if ":" in ext:  # an NTFS alternate stream ("a.jpg:x"): its content is not the file's
        return None
    return _EXTENSIONS.get(ext.lower())


def content_families(mime: str | None) -> frozenset[str]:
    """The families content of this libmagic type may be named as; empty when it says nothing."""
    if not mime:
        return frozenset()
    mime = mime.split(";", 1)[0].strip()
    found = _TYPES.get(mime)
    if found is not None:
        return found
    for prefix, families in _PREFIXES:
        if mime.startswith(prefix):
            return families
    return frozenset()


def disguised(filename: str, mime: str | None) -> RuleMatch | None:
    """A finding when the content's families and the name's family do not meet; else None."""
    claimed = claimed_family(filename)
    actual = content_families(mime)
    if claimed is None or not actual or claimed in actual:
        return None
    ext = filename.rpartition(".")[2]
    kinds = " or ".join(_LABEL[f] for f in sorted(actual))
    return RuleMatch(
        BUILTIN_PACK,
        DISGUISED_FILE,
        DISGUISED_FILE,
        SEVERITY,
        f"the content is {kinds} ({mime}) but the name .{ext} says {_LABEL[claimed]}",
    )
