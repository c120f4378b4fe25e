"""Module gating: rules that can only match one file format run only on files of that format.

Why: yara-python builds a scanner for every ``match()``, and every module the compiled set
imports runs on every file: ``import "pe"`` alone costs 270-420 us per call even on text, more
than scanning a 10 KiB file (bench/README.md). Most ``pe`` and ``elf`` rules say so themselves
with a guard such as ``pe.is_pe and ...`` or ``uint16(0) == 0x5A4D and ...``: they cannot match a
file that does not start with ``MZ`` (or ``\\x7fELF``), whatever else it holds. So do rules
with a top-level conjunct that reads a pe field, such as ``pe.number_of_sections > 6 and ...``:
the module fills its fields only for a PE, and a comparison with an undefined value is false
(``_PE_READS`` says exactly which forms; tests/test_engines.py checks both engines).

So, at compile time and from the pack sources alone, we build a second, *reduced* set: every
rule except those whose condition is a top-level conjunction with such a guard, and without the
imports only they needed. A file whose head starts with a gated prefix is matched against the
full set, every other file against the reduced one. The findings are identical by
construction: a gated rule is false on a file without the prefix, and every other rule is
byte-for-byte the same source. What we do not gate, because removing it could change a result:
``global`` rules (a false global rule silences its whole namespace), guards under ``or`` or
``not``, and rules another rule refers to by name or through a wildcard rule set such as
``all of (pe_*)`` (we then keep one set). If the reduced set does not compile to exactly "all
rules minus the gated ones", gating is off for the run and the full set is used for every file.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import yara

# Top-level conjuncts that imply the data starts with the given prefix. yara's pe and dotnet
# modules parse only data that starts with the DOS header (MZ), elf only data with its magic.
_GUARDS: tuple[tuple[re.Pattern[str], bytes], ...] = tuple(
    (re.compile(p, re.IGNORECASE), prefix)
    for p, prefix in (
        (r"pe\.is_pe(\s*==\s*(1|true))?", b"MZ"),
        (r"pe\.is_dll\(\)|pe\.is_32bit\(\)|pe\.is_64bit\(\)", b"MZ"),
        (r"dotnet\.is_dotnet(\s*==\s*(1|true))?", b"MZ"),
        (r"uint16\(0\)\s*==\s*0x5a4d|0x5a4d\s*==\s*uint16\(0\)", b"MZ"),
        (r"uint16be\(0\)\s*==\s*0x4d5a", b"MZ"),
        (r"uint32\(0\)\s*==\s*0x464c457f|0x464c457f\s*==\s*uint32\(0\)", b"\x7fELF"),
        (r"uint32be\(0\)\s*==\s*0x7f454c46", b"\x7fELF"),
    )
)
# Conjuncts that are false on data without the MZ head because they read a field (or call a
# function) the pe module fills only for a PE: every such field is undefined otherwise, in
# libyara and YARA-X alike, and a comparison with an undefined value is false. Matched case-
# sensitively: pe.MACHINE_I386 and the other upper-case names are constants, defined for any
# file. Only ==, <, <=, >, >= (not !=), only bare exports()/imports() calls (YARA-X returns 0,
# not undefined, for ``pe.imports("x.dll")`` on a non-PE, so ``== 0`` would be true there), and
# only ``for any`` over sections/resources/signatures (``for all`` over nothing is true).
_LIT = r'(-?(0x[0-9a-fA-F]+|\d+)(KB|MB)?|"(?:[^"\\]|\\.)*"|pe\.[A-Z][A-Z0-9_]*)'
_FIELD = r"pe\.(?!is_pe\b)[a-z_][a-z0-9_]*(\[\s*\d+\s*\])?(\.[a-z_][a-z0-9_]*)*"
_PE_READS: tuple[re.Pattern[str], ...] = tuple(
    re.compile(p)
    for p in (
        rf"{_FIELD}\s*(==|<=|>=|<|>)\s*{_LIT}",
        rf"{_LIT}\s*(==|<=|>=|<|>)\s*{_FIELD}",
        r'pe\.(exports|imports)\(\s*("(?:[^"\\]|\\.)*"\s*,?\s*)+\)',
        r"for\s+any\s+\w+\s+in\s+pe\.(sections|resources|signatures)\s*:\s*\(.*\)",
    )
)
GATED_MODULES = ("pe", "dotnet", "elf")
# every guard and pe read above contains one of these; a rule without any cannot be gated
_MAY_GUARD = re.compile(r"pe\.|dotnet\.is_dotnet|uint(16|32)(be)?\(0\)", re.IGNORECASE)
_HEADER = re.compile(r"^[ \t]*((?:(?:private|global)\s+)*)rule\s+(\w+)", re.MULTILINE)
_IMPORT = re.compile(r'^[ \t]*import\s+"(\w+)"[ \t]*\r?$', re.MULTILINE)
# a rule set by wildcard, ``any of (pe_*)``; not a string set, ``1 of ($s*)`` (signature-base
# writes that in most rules: mistaking it for a rule set turned gating off for the whole run)
_RULE_SET = re.compile(r"(?<![\w$])[A-Za-z_]\w*\*\s*[,)]")
_COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Gate:
    """The reduced set, the prefixes that need the full one, and what was gated (for the report)."""

    reduced: Any  # yara.Rules (libyara), what the proof below compiled
    prefixes: tuple[bytes, ...]
    gated: tuple[tuple[str, str], ...]  # (namespace, rule)
    sources: dict[str, str] = field(default_factory=dict)  # the reduced set's sources, per ns


def _conjuncts(cond: str) -> list[str] | None:
    """Top-level ``and`` operands of a condition, or None if it has a top-level ``or``."""
    cond = cond.strip()
    while cond.startswith("(") and _closing(cond, 0) == len(cond) - 1:
        cond = cond[1:-1].strip()
    parts, depth, start, i = [], 0, 0, 0
    in_str = False
    while i < len(cond):
        c = cond[i]
        if in_str:
            if c == "\\":
                i += 1
            elif c == '"':
                in_str = False
        elif c == '"':
            in_str = True
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif (
            depth == 0
            and re.match(r"\b(and|or)\b", cond[i:])
            and (i == 0 or (not cond[i - 1].isalnum() and cond[i - 1] != "_"))
        ):
            if cond.startswith("or", i):
                return None
            parts.append(cond[start:i].strip())
            start = i + 3
            i += 2
        i += 1
    parts.append(cond[start:].strip())
    return parts


def _closing(s: str, at: int) -> int:
    depth = 0
    for i in range(at, len(s)):
        if s[i] == "(":
            depth += 1
        elif s[i] == ")":
            depth -= 1
            if depth == 0:
                return i
    return -1


def gate_prefix(rule_text: str) -> bytes | None:
    """The head prefix a rule's condition requires, or None when it must run on every file."""
    if not _MAY_GUARD.search(rule_text):
        return None  # most rules of a big pack: no guard to find, no condition to parse
    body = _COMMENT.sub(" ", rule_text)
    at = body.rfind("condition:")
    end = body.rfind("}")
    if at < 0 or end < at:
        return None
    parts = _conjuncts(body[at + len("condition:") : end])
    if not parts:
        return None
    for part in parts:
        for pattern, prefix in _GUARDS:
            if pattern.fullmatch(part):
                return prefix
        if any(p.fullmatch(part) for p in _PE_READS):
            return b"MZ"
    return None


def build_gate(sources: dict[str, str], externals: dict[str, Any], full: Any) -> Gate | None:
    """The reduced set for ``sources`` (namespace -> text), or None when gating cannot be proven.

    ``full`` is the set libyara compiled from the same sources (or its rule identifiers, as a
    cache recorded them); the reduced set must hold exactly its rules minus the gated ones. The
    proof is made with libyara, the reference; another engine compiles ``Gate.sources``.
    """
    reduced_src: dict[str, str] = {}
    gated: list[tuple[str, str]] = []
    prefixes: set[bytes] = set()
    for ns, text in sources.items():
        heads = list(_HEADER.finditer(text))
        imports = _IMPORT.findall(text)
        keep = [_IMPORT.sub("", text[: heads[0].start()] if heads else text)]
        for k, h in enumerate(heads):
            chunk = text[h.start() : heads[k + 1].start() if k + 1 < len(heads) else len(text)]
            prefix = None if "global" in h.group(1) else gate_prefix(_IMPORT.sub("", chunk))
            if prefix is None:
                keep.append(_IMPORT.sub("", chunk))
            else:
                gated.append((ns, h.group(2)))
                prefixes.add(prefix)
        body = "\n".join(keep)
        needed = [
            m
            for m in dict.fromkeys(imports)
            if m not in GATED_MODULES or re.search(rf"\b{m}\.", _COMMENT.sub(" ", body))
        ]
        reduced_src[ns] = "".join(f'import "{m}"\n' for m in needed) + body
    if not gated:
        return None
    names = {r for _, r in gated}
    for text in reduced_src.values():
        words = set(re.findall(r"\b\w+\b", _COMMENT.sub(" ", text)))
        if words & names or _RULE_SET.search(_COMMENT.sub(" ", text)):
            # a kept rule names a gated one, or uses a wildcard rule set such as
            # ``all of (pe_*)``, whose meaning would change without the gated rules
            return None
    try:
        reduced = yara.compile(sources=reduced_src, externals=externals, includes=False)
    except yara.Error:
        return None  # a kept rule refers to a gated one, or the split went wrong: no gating
    # yara.Rule carries no namespace: compare identifiers as multisets
    want = Counter(getattr(r, "identifier", r) for r in full) - Counter(r for _, r in gated)
    if Counter(r.identifier for r in reduced) != want:
        return None
    return Gate(reduced, tuple(sorted(prefixes)), tuple(sorted(gated)), reduced_src)
