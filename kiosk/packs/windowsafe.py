"""Window-safe rules: which rules may run on a window of a byte range instead of a whole file.

Unallocated space, slack, disk areas outside partitions and the part of a big file beyond the
YARA cap are scanned in overlapping windows (``kiosk.engine.windows``). A rule may run there only
if a match in a window means the same as a match in the whole, and a match in the whole is seen
by some window. That holds for a condition built only from the *presence* of strings -- ``$a``,
``any of them``, ``2 of ($x*)``, ``and``, ``or``, parentheses -- whose strings can match at most a
known number of bytes: the windows overlap by that many, so every match lies wholly inside one.

Everything else is whole-file only, because a window changes its meaning: ``filesize``, offsets
(``at``, ``in``, ``@a``, ``uint16(0)``, and regular expressions anchored with ``^`` or ``$``,
which in a window mean its ends), counts (``#a``), ``not`` (a string missing from a window may
be present in the whole), modules (``pe``, ``math``), externals (``filename``), references to
other rules, ``for`` loops, and strings without a bound on their length (``[-]`` jumps,
unbounded regular expressions, ``base64``). A namespace holding a ``global`` rule is whole-file
only entirely (a false global rule silences its namespace). We decide this from each pack's
source, parsed by plyara, and never guess: a rule we cannot parse or prove is whole-file only,
and the window set must compile to exactly the rules we proved safe, or there is none.

The proof compiles with libyara (whose rule list names every rule); the set a scan runs is then
compiled by the scan's own engine, so the windows cost what the files cost (YARA-X scans these
windows about six times faster than libyara, bench/README.md).

May import: ``kiosk.errors`` and ``kiosk.packs.engines``.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

import plyara
import yara

from kiosk.packs.engines import LIBYARA, Engine, engine

# The longest match we accept as "bounded": beyond it a rule is whole-file only (the windows'
# overlap, and so the bytes scanned twice, grows with it).
MAX_MATCH_BYTES = 64 * 1024
# Names this analysis in the compiled-rules cache: raise it when what is proved safe changes.
WINDOW_ANALYSIS = "windowsafe-2"


@functools.cache
def analysis_id() -> str:
    """This analysis and the parser it reads the rules with (a new plyara may read differently)."""
    import importlib.metadata  # ~75 ms to import: only when the cache key is made

    return f"{WINDOW_ANALYSIS}/plyara-{importlib.metadata.version('plyara')}"


_CONNECTIVES = frozenset({"and", "or", "(", ")", ",", "of", "them", "any", "all"})
_STRING_REF = re.compile(r"\$\w*\*?")
_TEXT_ESCAPE = re.compile(r"\\x[0-9a-fA-F]{2}|\\.")
_HEX_JUMP = re.compile(r"\[\s*(\d*)\s*(?:-\s*(\d*)\s*)?\]")


_PARSER: list[Any] = []  # one plyara parser per process: building its tables takes ~0.5 s


def _parser() -> Any:
    if not _PARSER:
        _PARSER.append(plyara.Plyara())
    p = _PARSER[0]
    p.clear()
    return p


@dataclass(frozen=True, slots=True)
class WindowRules:
    """The window-safe rules compiled on their own, and what the analysis decided for each rule."""

    rules: Any  # exactly ``safe``, as ``engine`` compiled them (``Stored``: from the cache)
    safe: tuple[tuple[str, str], ...]  # (namespace, rule)
    whole_only: tuple[tuple[str, str, str], ...]  # (namespace, rule, why)
    max_match: int  # the longest match any safe rule's string can have, in bytes
    engine: Engine

    def to_bytes(self) -> bytes:
        """Serialised for worker processes and the compiled-rules cache."""
        return self.engine.serialise(self.rules)


def text_length(value: str, modifiers: list[str]) -> int | None:
    """Bytes a text string can match (``wide`` doubles it); None for ``base64``."""
    if any(m.startswith("base64") for m in modifiers):
        return None
    n = len(_TEXT_ESCAPE.sub("x", value))
    return 2 * n if any(m == "wide" for m in modifiers) else n


def hex_length(value: str) -> int | None:
    """Bytes a hex string can match at most: jumps at their upper bound, alternatives at their
    longest branch; None for an open jump (``[-]``, ``[4-]``) or a string we cannot read."""
    body = value.strip()
    if not (body.startswith("{") and body.endswith("}")):
        return None
    body = re.sub(r"//[^\n]*|/\*.*?\*/", " ", body[1:-1], flags=re.DOTALL)
    pos = 0

    def seq() -> int | None:
        nonlocal pos
        total = 0
        while pos < len(body):
            c = body[pos]
            if c.isspace():
                pos += 1
            elif c == "(":
                pos += 1
                best = 0
                while True:
                    n = seq()
                    if n is None or pos >= len(body):
                        return None
                    best = max(best, n)
                    if body[pos] == "|":
                        pos += 1
                        continue
                    if body[pos] == ")":
                        pos += 1
                        break
                    return None
                total += best
            elif c in "|)":
                return total
            elif c == "[":
                m = _HEX_JUMP.match(body, pos)
                if m is None:
                    return None
                lo, dash, hi = m.group(1), "-" in m.group(0), m.group(2)
                if dash and not hi:
                    return None  # open jump: unbounded
                total += int(hi if dash else lo)
                pos = m.end()
            elif c == "~":
                pos += 1
            elif re.match(r"[0-9a-fA-F?]{2}", body[pos : pos + 2]):
                total += 1
                pos += 2
            else:
                return None
        return total

    n = seq()
    return n if pos >= len(body) else None


def _parsed(value: str) -> Any:
    """A YARA ``/regex/flags`` string read by Python's own regex parser (YARA's syntax is a
    subset for what matters here); None if it is not one or cannot be parsed."""
    m = re.fullmatch(r"/(.*)/([a-z]*)", value, re.DOTALL)
    if m is None:
        return None
    try:
        return re._parser.parse(m.group(1))  # type: ignore[attr-defined]
    except (re.error, OverflowError, RecursionError, ValueError, TypeError):
        return None


def regex_length(value: str, modifiers: list[str]) -> int | None:
    """Bytes a regular expression can match at most; None if unbounded or not parseable."""
    parsed = _parsed(value)
    if parsed is None:
        return None
    try:
        lo_hi = parsed.getwidth()
    except (OverflowError, RecursionError, ValueError, TypeError):
        return None
    hi = int(lo_hi[1])
    if hi > MAX_MATCH_BYTES:
        return None
    return 2 * hi if any(x == "wide" for x in modifiers) else hi


def anchored(value: str) -> bool:
    """Whether a regular expression is anchored to the start or the end of the data (``^``,
    ``$``): in a window those mean the window's ends, so ``/^MZ/`` would match at every window
    that begins with ``MZ`` -- an offset condition in disguise, like ``at 0``. Read by Python's
    regex parser, as ``regex_length``; one that cannot be parsed counts as anchored."""
    parsed = _parsed(value)
    if parsed is None:
        return True
    c = re._constants  # type: ignore[attr-defined]
    ends = {c.AT_BEGINNING, c.AT_BEGINNING_STRING, c.AT_END, c.AT_END_STRING}

    def walk(items: Any) -> bool:
        for op, av in items:
            if op is c.AT and av in ends:
                return True
            if op is c.SUBPATTERN and walk(av[-1]):
                return True
            if op is c.BRANCH and any(walk(b) for b in av[1]):
                return True
            if op in (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT) and walk(av[2]):
                return True
        return False

    return walk(parsed)


def string_length(s: dict[str, Any]) -> int | None:
    """The longest match of one plyara string record, or None when it cannot be bounded."""
    mods = [str(x).split("(")[0] for x in s.get("modifiers", [])]
    kind, value = s.get("type"), str(s.get("value", ""))
    if kind == "text":
        return text_length(value, mods)
    if kind == "byte":
        return hex_length(value)
    if kind == "regex":
        return regex_length(value, mods)
    return None


def _condition_why(terms: list[str], names: set[str]) -> str:
    """Why a condition is not window-safe, or "" when it is built only from string presence."""
    for i, t in enumerate(terms):
        if t in _CONNECTIVES:
            continue
        if _STRING_REF.fullmatch(t):
            if not t.endswith("*") and t != "$" and t not in names:
                return f"refers to {t}, which it does not define"
            continue
        if t.isdigit() and i + 1 < len(terms) and terms[i + 1] == "of":
            continue
        return f"its condition uses '{t}', which depends on the whole file"
    return ""


def analyse_rule(rule: dict[str, Any]) -> tuple[int | None, str]:
    """``(longest match, "")`` for a window-safe rule, ``(None, why)`` otherwise."""
    scopes = rule.get("scopes", [])
    if "global" in scopes:
        return None, "global rule"
    strings = rule.get("strings", [])
    if not strings:
        return None, "has no strings: its condition is about the whole file"
    names = {str(s["name"]) for s in strings}
    why = _condition_why([str(t) for t in rule.get("condition_terms", [])], names)
    if why:
        return None, why
    longest = 0
    for s in strings:
        if s.get("type") == "regex" and anchored(str(s.get("value", ""))):
            return None, f"string {s['name']} is anchored to the start or end of the data"
        n = string_length(s)
        if n is None:
            return None, f"string {s['name']} has no bound on its length"
        longest = max(longest, n)
    if longest > MAX_MATCH_BYTES:
        return None, f"a string may match more than {MAX_MATCH_BYTES} bytes"
    return longest, ""


def window_rules(
    sources: dict[str, str], externals: dict[str, Any], eng: Engine | None = None
) -> WindowRules | None:
    """The window set for ``sources`` (namespace -> rule text) compiled by ``eng`` (libyara when
    None), or None when no rule is safe or the safe rules do not compile to exactly themselves.
    Raises ``RulesError`` when ``eng`` refuses them (never a silent fall-back to another engine
    than the report names)."""
    safe: list[tuple[str, str]] = []
    whole: list[tuple[str, str, str]] = []
    out: dict[str, str] = {}
    longest = 1
    for ns, text in sources.items():
        try:
            parsed = _parser().parse_string(text)
        except Exception as e:  # plyara raises its own parse errors and plain ones alike
            whole.append((ns, "*", f"the pack's source could not be analysed ({type(e).__name__})"))
            continue
        lines = text.splitlines(keepends=True)
        has_global = any("global" in r.get("scopes", []) for r in parsed)
        spans = Counter(int(r["start_line"]) for r in parsed)
        kept: list[str] = []
        for r in parsed:
            name = str(r["rule_name"])
            if "private" in r.get("scopes", []):
                continue  # never reported; a rule using it refers to a rule, so is not safe
            n, why = analyse_rule(r)
            if n is not None and has_global:
                n, why = None, "its namespace holds a global rule"
            if n is not None and spans[int(r["start_line"])] > 1:
                n, why = None, "shares a source line with another rule"
            if n is None:
                whole.append((ns, name, why))
                continue
            safe.append((ns, name))
            longest = max(longest, n)
            kept.append("".join(lines[int(r["start_line"]) - 1 : int(r["stop_line"])]))
        if kept:
            out[ns] = "\n".join(kept)
    if not safe:
        return None
    try:
        compiled = yara.compile(sources=out, externals=externals, includes=False)
    except yara.Error:
        return None
    if Counter(r.identifier for r in compiled) != Counter(r for _, r in safe):
        return None
    eng = eng or engine(LIBYARA)
    if eng.name != LIBYARA:  # a subset of what ``eng`` compiled whole: a refusal is its error
        compiled = eng.compile(out, externals)
    return WindowRules(compiled, tuple(safe), tuple(whole), longest, eng)
