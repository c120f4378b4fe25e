"""The text of an imported collection, read as YARA reads it: rules, imports and includes.

Public collections (signature-base, YARA-Rules, ReversingLabs, Elastic) are imported into a
pack without editing one byte of their rule files (``kiosk.packs.importer``). Yet a pack
compiles as one namespace without includes, and rules that cannot run are left out by name
(``kiosk.packs.quarantine``). Both need to know where each rule starts and ends, which
``import`` and ``include`` statements a file holds, and which files an ``include`` names — and
a commented-out rule, or ``rule`` inside a string, must not count. So this module lexes just
enough of YARA: comments, text strings and regular expressions are masked (same length, line
breaks kept), and rule headers, imports and includes are found in what is left.

The text the compiler gets (``effective_text``) is the file with its ``include`` lines and its
left-out rules blanked — replaced by line breaks only, so every line number still points into
the file on disk. Included files are compiled before the files that include them, once each,
in the same namespace: that is what an include means for a pack that is one namespace.

Pure text: nothing here compiles or touches the disk beyond what the caller passes in.
"""

from __future__ import annotations

import functools
import posixpath
import re
from collections.abc import Set
from dataclasses import dataclass

_HEADER = re.compile(
    r"^[ \t]*((?:(?:private|global)[ \t\r\n]+)*)rule[ \t\r\n]+([A-Za-z_][A-Za-z0-9_]*)",
    re.MULTILINE,
)
_IMPORT = re.compile(r'^[ \t]*import[ \t]+"([^"\n]*)"', re.MULTILINE)
_INCLUDE = re.compile(r'^[ \t]*include[ \t]+"([^"\n]*)"', re.MULTILINE)
_NOT_NEWLINE = re.compile(r"[^\n]")
_INTERESTING = re.compile(r'[/"]')
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
RULE_SUFFIXES = (".yar", ".yara")


def mask(text: str) -> str:
    """``text`` with comments and the insides of strings and regexes blanked, same length.

    A ``/`` starts a regular expression only where YARA expects one: after ``=`` (a string
    definition) or after the keyword ``matches``; elsewhere it is a division or a comment.
    """
    out = list(text)
    i, n = 0, len(text)

    def blank(a: int, b: int) -> None:
        out[a:b] = _NOT_NEWLINE.sub(" ", text[a:b])

    while True:
        m = _INTERESTING.search(text, i)
        if m is None:
            break
        i = m.start()
        c = text[i]
        if text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            blank(i, end)
            i = end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            blank(i, end)
            i = end
        elif c == '"' or _regex_may_start(text, i):
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            blank(i + 1, j)
            i = j + 1
        else:
            i += 1
    return "".join(out)


def _regex_may_start(text: str, at: int) -> bool:
    before = text[max(0, at - 40) : at].rstrip()
    if before.endswith("matches"):
        return True
    return before.endswith("=") and not before.endswith(("==", "!=", "<=", ">="))


@dataclass(frozen=True, slots=True)
class RuleChunk:
    """One rule's text: ``[start, end)`` offsets in its file, from its header to the next."""

    name: str
    private: bool
    start: int
    end: int
    line: int  # 1-based line of the header


@dataclass(frozen=True, slots=True)
class RuleFile:
    """A collection's file as YARA sees it."""

    path: str  # "/"-joined, relative to the pack's rules/ directory
    text: str
    rules: tuple[RuleChunk, ...]
    imports: tuple[tuple[str, int], ...]  # (module, line)
    includes: tuple[tuple[str, int], ...]  # (the text inside the quotes, line)
    masked: str

    def chunk_at(self, line: int) -> RuleChunk | None:
        """The rule whose text holds ``line`` (None: before the first rule)."""
        found = None
        for r in self.rules:
            if r.line <= line:
                found = r
        return found

    def words(self, chunk: RuleChunk) -> set[str]:
        """The identifiers a rule's code uses (comments and strings excluded)."""
        return set(_WORD.findall(self.masked[chunk.start : chunk.end]))

    def effective_text(
        self, left_out: set[str] | frozenset[str], blank_lines: Set[int] = frozenset()
    ) -> str:
        """The file for the compiler: includes, left-out rules and ``blank_lines`` (imports of
        modules that are not used) blanked, every line break kept."""
        spans = [(r.start, r.end) for r in self.rules if r.name in left_out]
        for m in _INCLUDE.finditer(self.masked):
            spans.append((m.start(), m.end()))
        for m in _IMPORT.finditer(self.masked):
            if _line(self.text, m.start()) in blank_lines:
                spans.append((m.start(), m.end()))
        if not spans:
            return self.text
        parts, at = [], 0
        for a, b in sorted(spans):
            parts.append(self.text[at:a])
            parts.append("\n" * self.text.count("\n", a, b))
            at = b
        parts.append(self.text[at:])
        return "".join(parts)


def _line(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


@functools.lru_cache(maxsize=8192)
def parse_rule_file(path: str, text: str) -> RuleFile:
    """Lex a file once per process: the same text is examined, diffed and benchmarked."""
    masked = mask(text)
    heads = list(_HEADER.finditer(masked))
    rules = tuple(
        RuleChunk(
            name=h.group(2),
            private="private" in h.group(1),
            start=h.start(),
            end=heads[k + 1].start() if k + 1 < len(heads) else len(text),
            line=_line(text, h.start() + len(h.group(0)) - len(h.group(0).lstrip())),
        )
        for k, h in enumerate(heads)
    )

    def quoted(m: re.Match[str]) -> str:
        # the quoted text from the real file (the mask blanked the inside of the quotes)
        a = text.index('"', m.start())
        return text[a + 1 : text.index('"', a + 1)]

    return RuleFile(
        path=path,
        text=text,
        rules=rules,
        imports=tuple((quoted(m), _line(text, m.start())) for m in _IMPORT.finditer(masked)),
        includes=tuple((quoted(m), _line(text, m.start())) for m in _INCLUDE.finditer(masked)),
        masked=masked,
    )


def resolve_include(including: str, target: str, known: set[str] | frozenset[str]) -> str:
    """The pack file an include names, or a reason starting with ``!`` why it names none.

    Resolved against the including file's directory, then the collection's root (index files
    at the top of YARA-Rules name ``./malware/x.yar``). Never outside the collection: absolute
    paths, drive letters and ``..`` that climb above the root are refused, not followed.
    """
    t = target.replace("\\", "/")
    if t.startswith("/") or re.match(r"^[A-Za-z]:", t):
        return f"!includes {target!r}, an absolute path outside the collection"
    top = including.split("/")[0] + "/" if "/" in including else ""  # the pack's rules/
    outside = False
    for base in (posixpath.dirname(including), top.rstrip("/")):
        joined = posixpath.normpath(posixpath.join(base, t))
        if not joined.startswith(top) or joined.startswith("../") or joined == "..":
            outside = True
            continue
        if joined in known:
            return joined
    if outside:
        return f"!includes {target!r}, outside the collection"
    return f"!includes {target!r}, which is not in the collection"


def compile_order(files: dict[str, RuleFile]) -> list[str]:
    """Files in the order they are compiled: included before including, else by path."""
    order: list[str] = []
    state: dict[str, int] = {}  # 1 visiting, 2 done; a cycle is broken where it closes
    known = frozenset(files)

    def visit(p: str) -> None:
        if state.get(p):
            return
        state[p] = 1
        for target, _ in files[p].includes:
            dep = resolve_include(p, target, known)
            if not dep.startswith("!"):
                visit(dep)
        state[p] = 2
        order.append(p)

    for p in sorted(files):
        visit(p)
    return order


def include_closure(path: str, files: dict[str, RuleFile], order: list[str]) -> list[str]:
    """``path`` and every pack file it includes, directly or not, in ``order``."""
    known = frozenset(files)
    seen: list[str] = []

    def visit(p: str) -> None:
        if p in seen:
            return
        seen.append(p)  # mark before recursing: a cycle stops here
        for target, _ in files[p].includes:
            dep = resolve_include(p, target, known)
            if not dep.startswith("!"):
                visit(dep)

    visit(path)
    rank = {p: k for k, p in enumerate(order)}
    return sorted(seen, key=rank.__getitem__)


def is_rule_file(name: str) -> bool:
    return name.lower().endswith(RULE_SUFFIXES)
