"""Overlapping windows (kiosk.engine.windows) and window safety (kiosk.packs.windowsafe).

Real libyara and YARA-X on real bytes; the oracle is a brute-force search of the same bytes: every
occurrence must be reported exactly once, whatever the window size, wherever it falls (on a
window edge, on a range task's edge), and a rule is window-safe only when the analysis proves it.
"""

from __future__ import annotations

import random
import re

import pytest
import yara

from kiosk.engine.windows import Hits, WindowMatcher
from kiosk.packs.check import RuleMeta
from kiosk.packs.engines import ENGINE_NAMES, LIBYARA, engine
from kiosk.packs.windowsafe import analyse_rule, hex_length, regex_length, window_rules

META = 'meta: category = "test" severity = "low" description = "d"'


def _rule(name: str, cond: str, strings: str = "", prefix: str = "") -> str:
    s = f"strings: {strings}" if strings else ""
    return f"{prefix}rule {name}\n{{\n {META}\n {s}\n condition: {cond}\n}}\n"


def _matcher(src: str, window: int, eng: str = LIBYARA) -> WindowMatcher:
    wr = window_rules({"t": src}, {}, engine(eng))
    assert wr is not None
    assert wr.engine.name == eng  # compiled by the engine asked for, not quietly by another
    meta = {("t", r): RuleMeta("test", "low", "d") for _, r in wr.safe}
    return WindowMatcher(eng, wr.to_bytes(), meta, wr.max_match, 10, window, len(wr.safe))


MARK = b"EDGE-MARK-91c3"
HEXMARK = bytes.fromhex("de ad be ef 00 11 22 33 44 55 66 77".replace(" ", ""))
SRC = (
    _rule("text", "$m", f'$m = "{MARK.decode()}"')
    + _rule("hexj", "any of them", "$h = { DE AD BE EF [2-6] 55 66 77 }")
    + _rule("rx", "$r", r"$r = /LONG-[0-9]{3,40}-END/")
)


def _plant(size: int, seed: int, window: int) -> tuple[bytes, dict[str, list[int]]]:
    rng = random.Random(seed)
    data = bytearray(rng.randbytes(size))
    where: list[int] = []
    for k in range(1, size // window):  # straddle every window edge, at a random split
        where.append(k * window - rng.randrange(1, len(MARK)))
    where += [0, size - len(MARK)] + [rng.randrange(0, size - 64) for _ in range(20)]
    for off in where:
        data[off : off + len(MARK)] = MARK
    for k in range(1, size // window, 2):
        off = k * window - 5
        data[off : off + len(HEXMARK)] = HEXMARK
    long = b"LONG-" + b"7" * 40 + b"-END"
    data[window - 20 : window - 20 + len(long)] = long
    blob = bytes(data)
    oracle = {
        "text": [m.start() for m in re.finditer(re.escape(MARK), blob)],
        "hexj": [m.start() for m in re.finditer(re.escape(b"\xde\xad\xbe\xef"), blob)],
        "rx": [m.start() for m in re.finditer(rb"LONG-[0-9]{3,40}-END", blob)],
    }
    return blob, oracle


def _offsets(h: Hits) -> dict[str, tuple[list[int], int]]:
    return {rule: (sorted(kept), n[0]) for (_, rule), (kept, n) in h.by_rule.items()}


@pytest.mark.parametrize("eng", ENGINE_NAMES)
@pytest.mark.parametrize("window", [4096, 4099, 65536])
def test_every_match_is_found_once_across_window_edges(window: int, eng: str) -> None:
    data, oracle = _plant(20 * window + 123, window, window)
    wm = _matcher(SRC, window, eng)
    assert wm.overlap >= len(b"LONG-" + b"7" * 40 + b"-END")
    hits = Hits()
    chunks = [data[i : i + 1000] for i in range(0, len(data), 1000)]  # chunk != window
    base = 10_000_000  # absolute offsets: the area's place in the media
    assert wm.scan(base, chunks, None, hits) == len(data)
    got = _offsets(hits)
    for rule, offs in oracle.items():
        want = sorted({base + o for o in offs})
        assert got[rule][1] == len(want), rule  # counted once each
        assert got[rule][0] == want[: len(got[rule][0])]


@pytest.mark.parametrize("eng", ENGINE_NAMES)
def test_range_tasks_own_only_what_starts_inside_them(eng: str) -> None:
    """Two range tasks that meet at a boundary, each reading the overlap past its end: a match
    across the boundary is the first task's, once."""
    window = 4096
    data, _oracle = _plant(12 * window, 3, window)
    cut = 5 * window + 1  # not a window edge of either task
    data = data[: cut - 6] + MARK + data[cut - 6 + len(MARK) :]
    want = sorted({m.start() for m in re.finditer(re.escape(MARK), data)})
    assert cut - 6 in want
    wm = _matcher(SRC, window, eng)
    hits = Hits()
    wm.scan(0, [data[: cut + wm.overlap]], cut, hits)
    wm.scan(cut, [data[cut:]], None, hits)
    kept, count = hits.by_rule[("t", "text")]
    assert count[0] == len(want)
    assert sorted(kept) == want[: len(kept)]


WORD = b"EDGEWORD"
WORD_SRC = _rule("full", "$w", f'$w = "{WORD.decode()}" fullword') + _rule(
    "bound", "$b", r"$b = /\bEDGEWORD\b/"
)


def _words(size: int, window: int) -> tuple[bytes, list[int]]:
    """Dots, with ``EDGEWORD`` at every window edge: after a letter (part of a longer word: no
    match) at odd edges, after a dot (a whole word) at even ones, and a few whole words
    elsewhere. Returns the bytes and where the whole words are, by brute force."""
    data = bytearray(b"." * size)
    for k in range(1, size // window):
        data[k * window - 1 : k * window + len(WORD)] = (b"x" if k % 2 else b".") + WORD
    for off in (100, window + 700, 3 * window + 1234):
        data[off : off + len(WORD)] = WORD
    blob = bytes(data)
    return blob, [m.start() for m in re.finditer(rb"(?<![A-Za-z0-9])EDGEWORD(?![A-Za-z0-9])", blob)]


@pytest.mark.parametrize("eng", ENGINE_NAMES)
def test_a_word_cut_at_a_window_edge_is_matched_as_the_whole_scan_would(eng: str) -> None:
    """``fullword`` and ``\\b`` look at the byte before a match: a window beginning where
    ``xEDGEWORD`` is cut before ``E`` must not see a whole word there."""
    window = 4096
    data, whole = _words(12 * window, window)
    full = yara.compile(source=WORD_SRC).match(data=data)  # the reference: one buffer
    assert {m.rule for m in full} == {"full", "bound"}
    assert (
        sorted(i.offset for m in full for s in m.strings for i in s.instances if m.rule == "full")
        == whole
    )
    wm = _matcher(WORD_SRC, window, eng)
    hits = Hits()
    chunks = [data[i : i + 1000] for i in range(0, len(data), 1000)]
    wm.scan(0, chunks, None, hits)
    got = _offsets(hits)
    assert got["full"] == (whole, len(whole))
    assert got["bound"] == (whole, len(whole))
    assert 5 * window not in whole  # odd edges: a longer word, not reported


@pytest.mark.parametrize("eng", ENGINE_NAMES)
def test_a_range_task_given_the_byte_before_it_sees_the_word_edge(eng: str) -> None:
    """Two area pieces of one run of free space: the second is given the byte before it
    (``Evidence.spans(before=1)``), so a word cut by the boundary is no whole word there."""
    window = 4096
    data, whole = _words(12 * window, window)
    cut = 5 * window  # an odd edge: x + EDGEWORD across the boundary
    assert cut not in whole
    wm = _matcher(WORD_SRC, window, eng)
    hits = Hits()
    wm.scan(0, [data[: cut + wm.overlap]], cut, hits)
    wm.scan(cut, [data[cut:]], None, hits, context=data[cut - 1 : cut])
    assert _offsets(hits)["full"] == (whole, len(whole))
    alone = Hits()  # without the byte before: the piece's start is an edge of the data
    wm.scan(cut, [data[cut:]], None, alone)
    assert cut in _offsets(alone)["full"][0]


@pytest.mark.parametrize("eng", ENGINE_NAMES)
def test_zero_windows_are_skipped_only_when_rules_cannot_match_zeros(eng: str) -> None:
    wm = _matcher(SRC, 4096, eng)
    assert wm.zero_proof
    zeros = _matcher(_rule("z", "$z", "$z = { 00 00 00 00 }"), 4096, eng)
    assert not zeros.zero_proof
    hits = Hits()
    zeros.scan(0, [bytes(3 * 4096)], None, hits)
    assert hits.by_rule[("t", "z")][1][0] == 3 * 4096 - 3  # every offset, once


@pytest.mark.parametrize(
    ("cond", "strings", "safe"),
    [
        ("$a", '$a = "x"', True),
        ("any of them", '$a = "x" $b = "y"', True),
        ("2 of ($a*) and ($b or $a1)", '$a1 = "x" $a2 = "z" $b = "y"', True),
        ("all of them", '$a = "x" wide $b = { 01 [0-3] 02 }', True),
        ("$a and filesize < 10KB", '$a = "x"', False),
        ("$a at 0", '$a = "x"', False),
        ("$a in (0..100)", '$a = "x"', False),
        ("#a > 2", '$a = "x"', False),
        ("@a[1] < 5 and $a", '$a = "x"', False),
        ("$a and not $b", '$a = "x" $b = "y"', False),
        ("$a and uint16(0) == 0x5A4D", '$a = "x"', False),
        ("none of them", '$a = "x"', False),
        ("$a", "$a = { 01 [-] 02 }", False),
        ("$a", "$a = /x.*y/", False),
        ("$a", "$a = /^MZ/", False),  # anchored: in a window it means the window's start
        ("$a", "$a = /(ab|cd$)/", False),
        ("$a", "$a = /[^a]b\\$/", True),  # a negated class and an escaped dollar: not anchors
        ("$a", '$a = "xyz" base64', False),
        ("filesize > 0", "", False),
        ("true", "", False),
    ],
)
def test_window_safety_is_proven_from_the_condition(cond: str, strings: str, safe: bool) -> None:
    wr = window_rules({"t": _rule("r", cond, strings)}, {})
    assert (wr is not None and ("t", "r") in wr.safe) is safe


def test_module_rules_global_namespaces_and_rule_references_are_whole_file() -> None:
    src = (
        'import "pe"\n'
        + _rule("uses_pe", "$a and pe.is_pe", '$a = "x"')
        + _rule("base", "$a", '$a = "x"')
        + _rule("refers", "base and $b", '$b = "y"')
    )
    wr = window_rules({"t": src}, {})
    assert wr is not None
    assert wr.safe == (("t", "base"),)
    why = {r: w for _, r, w in wr.whole_only}
    assert "pe.is_pe" in why["uses_pe"]
    assert "base" in why["refers"]
    glob = _rule("g", "$a", '$a = "x"', prefix="global ") + _rule("k", "$b", '$b = "y"')
    assert window_rules({"t": glob}, {}) is None  # a global rule silences its namespace


def test_string_lengths() -> None:
    assert hex_length("{ 4D 5A [2-4] ?? (01 | 02 03) }") == 9
    assert hex_length("{ 4D [4] 5A }") == 6
    assert hex_length("{ 4D [2-] 5A }") is None
    assert regex_length("/ab{2,5}c/is", []) == 7
    assert regex_length("/ab{2,5}c/", ["wide"]) == 14
    assert regex_length("/a+/", []) is None
    n, why = analyse_rule(
        {
            "strings": [{"name": "$a", "value": 'a\\x00\\"b', "type": "text"}],
            "condition_terms": ["$a"],
        }
    )
    assert (n, why) == (4, "")


def test_the_window_set_matches_what_the_full_set_matches_on_safe_rules() -> None:
    """The window set is the safe rules' own source, compiled: on any data it agrees with the
    full set on those rules."""
    src = SRC + _rule("sized", "$m and filesize < 1KB", f'$m = "{MARK.decode()}"')
    wr = window_rules({"t": src}, {})
    assert wr is not None
    assert {r for _, r in wr.safe} == {"text", "hexj", "rx"}
    full = yara.compile(sources={"t": src})
    data, _ = _plant(4 * 4096, 9, 4096)
    safe = {r for _, r in wr.safe}
    assert {m.rule for m in full.match(data=data)} & safe == {
        m.rule for m in wr.rules.match(data=data)
    }
