"""The recommendation and coverage rules: pure logic over results, so plain values suffice."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.canonical import canonical
from kiosk.config import MAX_HASHED_ONLY_PERCENT
from kiosk.locator import FsLoc, StreamLoc, VolumeLoc
from kiosk.model import (
    FileResult,
    FileStatus,
    FileTask,
    HashMatch,
    Outcome,
    Recommendation,
    RuleMatch,
    VolumeRecord,
    WalkProblem,
)
from kiosk.reports.decode import read_report
from kiosk.reports.encode import file_json
from kiosk.reports.model import TriageReport, UnreachedFiles
from kiosk.reports.report import MediaHashes, Tally, file_record, not_examined, recommend
from kiosk.reports.text import render_text, visible

GOLDEN = Path(__file__).parent / "golden"

VOL = VolumeRecord(0, 0, 1 << 20, "whole image", "ext4", True)
ENCRYPTED = VolumeRecord(1, 1 << 20, 1 << 20, "MBR: Linux", None, False, "possibly encrypted")
GAP = VolumeRecord(
    2,
    2 << 20,
    4096,
    "MBR: Unallocated",
    None,
    False,
    "unallocated disk space outside any partition: not searched",
)
OK_HASH = MediaHashes({"sha256": "00"}, {})


def _task(seq: int, path: str = "/a", size: int = 10) -> FileTask:
    loc = StreamLoc(FsLoc(VolumeLoc(0, 0), "ext4"), 10 + seq, 1, -1)
    return FileTask(seq, loc, path, True, size)


def _tally(*results: FileResult) -> Tally:
    t = Tally()
    for r in results:
        t.add(r)
    return t


def _rec(
    tally: Tally,
    outcome: Outcome = Outcome.COMPLETE,
    volumes: list[VolumeRecord] | None = None,
    problems: list[WalkProblem] | None = None,
    hashes: MediaHashes = OK_HASH,
    total: int | None = None,
) -> tuple[Recommendation, list[str]]:
    return recommend(
        outcome,
        "",
        tally,
        volumes or [VOL],
        problems or [],
        hashes,
        tally.files_done if total is None else total,
        "demo",
    )


YARA = RuleMatch("demo", "kiosk_demo_marker", "demo_marker", "high", "marker")
BAD = HashMatch("demo-known-bad", "1", "sha256", "known_bad", "demo_known_bad")
GOOD = HashMatch("demo-known-good", "1", "sha256", "known_good", "demo_known_good")


def test_clean_complete_scan_is_no_matches_in_scope_and_never_says_clear() -> None:
    rec, reasons = _rec(_tally(FileResult(_task(1), FileStatus.SCANNED)))
    assert rec is Recommendation.NO_MATCHES
    assert "within scope" in reasons[0]
    assert not any("clear" in r.lower() or "no evidence" in r.lower() for r in reasons)


def test_a_rule_match_or_known_bad_hash_means_submit() -> None:
    tally = _tally(
        FileResult(_task(1), FileStatus.SCANNED, rule_matches=(YARA,)),
        FileResult(_task(2), FileStatus.SCANNED, hash_matches=(BAD,)),
    )
    rec, reasons = _rec(tally)
    assert rec is Recommendation.SUBMIT
    assert reasons == [
        "1 file(s) matched rule-pack rules",
        "1 file(s) are listed in known-bad hash sets",
    ]
    assert tally.categories == {"demo_marker": 1, "demo_known_bad": 1}


def _sized(scanned: int, hashed: int) -> Tally:
    return _tally(
        FileResult(_task(1, "/small", scanned), FileStatus.SCANNED),
        FileResult(_task(2, "/big", hashed), FileStatus.HASHED_ONLY, "larger than the cap"),
        FileResult(_task(3, "/os", 10**9), FileStatus.KNOWN_GOOD, hash_matches=(GOOD,)),
    )


def test_more_than_half_the_content_hashed_only_is_inconclusive_and_says_why() -> None:
    """Known-good bytes are not content the rules should have seen: they do not dilute it."""
    assert MAX_HASHED_ONLY_PERCENT == 50
    rec, reasons = _rec(_sized(49, 51))
    assert rec is Recommendation.INCONCLUSIVE
    assert reasons == [
        "51 of 100 content bytes (51 %) were hashed but not YARA-scanned (files over the size "
        "cap): more than the 50 % limit, so the rule packs did not see most of the content"
    ]
    rec, reasons = _rec(_sized(50, 50))  # exactly the limit is still accepted, and stated
    assert rec is Recommendation.NO_MATCHES
    assert (
        "1 file(s), 50 of 100 content bytes (50 %), were hashed but not YARA-scanned"
        in (reasons[-1])
    )
    assert "up to 50 % is accepted" in reasons[-1]


def test_hashed_only_share_never_outweighs_a_finding_or_a_hash_only_run() -> None:
    tally = _sized(1, 99)
    tally.add(FileResult(_task(4, "/m", 1), FileStatus.SCANNED, rule_matches=(YARA,)))
    assert _rec(tally)[0] is Recommendation.SUBMIT
    only_hashes = recommend(
        Outcome.COMPLETE, "", _sized(0, 99), [VOL], [], OK_HASH, 3, "demo", yara=False
    )
    assert only_hashes[0] is Recommendation.NO_MATCHES  # its own reason says YARA was off


def test_known_good_alone_is_not_a_finding() -> None:
    tally = _tally(FileResult(_task(1), FileStatus.KNOWN_GOOD, hash_matches=(GOOD,)))
    assert tally.findings == []
    assert _rec(tally)[0] is Recommendation.NO_MATCHES


def test_cancelled_or_failed_without_findings_is_inconclusive() -> None:
    tally = _tally(FileResult(_task(1), FileStatus.SCANNED))
    for outcome in (Outcome.CANCELLED, Outcome.FAILED):
        rec, reasons = _rec(tally, outcome, total=5)
        assert rec is Recommendation.INCONCLUSIVE
        assert "4 of 5 files were not examined" in reasons


def test_cancelled_with_a_finding_still_submits_and_says_it_was_incomplete() -> None:
    tally = _tally(FileResult(_task(1), FileStatus.SCANNED, rule_matches=(YARA,)))
    rec, reasons = _rec(tally, Outcome.CANCELLED, total=3)
    assert rec is Recommendation.SUBMIT
    assert any("did not complete" in r for r in reasons)


def test_unexamined_volume_file_error_walk_problem_or_bad_media_hash_make_it_inconclusive() -> None:
    clean = _tally(FileResult(_task(1), FileStatus.SCANNED))
    assert _rec(clean, volumes=[VOL, ENCRYPTED])[0] is Recommendation.INCONCLUSIVE
    err = _tally(FileResult(_task(1), FileStatus.ERROR, "read failed"))
    assert _rec(err)[0] is Recommendation.INCONCLUSIVE
    loop = [WalkProblem(0, "/a", 12, "directory loop")]
    assert _rec(clean, problems=loop)[0] is Recommendation.INCONCLUSIVE
    bad_ewf = MediaHashes({"sha256": "00", "md5": "aa"}, {"md5": "bb"})
    assert bad_ewf.ewf_verified is False
    assert _rec(clean, hashes=bad_ewf)[0] is Recommendation.INCONCLUSIVE


def test_unallocated_gaps_and_unrecoverable_deleted_names_are_listed_but_not_inconclusive() -> None:
    tally = _tally(
        FileResult(_task(1), FileStatus.SCANNED),
        FileResult(_task(2, "/gone"), FileStatus.UNRECOVERABLE, "metadata gone"),
    )
    rec, reasons = _rec(tally, volumes=[VOL, GAP])
    assert rec is Recommendation.NO_MATCHES
    assert any("1 deleted entries" in r for r in reasons)
    listed = not_examined([VOL, GAP], [], tally, Outcome.COMPLETE, 2)
    kinds = [e.kind.value for e in listed]
    assert kinds == ["fs_unallocated", "disk_area", "deleted_file"]
    assert listed[2].where == "/gone"


def test_not_examined_counts_unreached_files_of_a_cancelled_run() -> None:
    tally = _tally(FileResult(_task(1), FileStatus.SCANNED))
    listed = not_examined([VOL], [], tally, Outcome.CANCELLED, 10)
    assert listed[-1] == UnreachedFiles(
        9, "the scan was cancelled before these files were examined"
    )


def test_canonical_json_is_rfc8785() -> None:
    assert canonical({"b": 1, "a": [1.0, "é"]}) == '{"a":[1,"é"],"b":1}'.encode()


def _golden_report() -> TriageReport:
    return read_report(json.loads((GOLDEN / "ext4.report.json").read_bytes()))


def test_text_summary_shows_hostile_names_escaped() -> None:
    hostile = _task(1, "/\x1b[31mred\x07")
    typed_out = _task(2, "/\\x1b[31mred\\x07")  # the same, as the text a name may hold
    tally = _tally(
        FileResult(hostile, FileStatus.SCANNED, rule_matches=(YARA,)),
        FileResult(typed_out, FileStatus.SCANNED, rule_matches=(YARA,)),
    )
    report = dataclasses.replace(_golden_report(), findings=tuple(tally.findings))
    text = render_text(report)
    assert "\x1b" not in text
    assert "\x07" not in text
    shown = [line for line in text.splitlines() if "31mred" in line]
    assert shown == [
        "  [0] /\\x1b[31mred\\x07 (10 bytes): demo:kiosk_demo_marker",
        "  [0] /\\\\x1b[31mred\\\\x07 (10 bytes): demo:kiosk_demo_marker",
    ]


# Names an image can hold that must never print alike: each pair differs in the evidence.
DISTINCT_NAMES = [
    "a\x1bb",  # ESC
    "a\\x1bb",  # the four characters backslash, x, 1, b
    "a\\\x1bb",  # a backslash, then ESC
    "a\nb",  # a newline
    "a\\nb",  # backslash and n
    "a\u202eb",  # RIGHT-TO-LEFT OVERRIDE
    "a\\u202eb",  # its escape, typed out
    "a\u200bb",  # ZERO WIDTH SPACE
    "ab",
    "a b",
    "a\u00a0b",  # NO-BREAK SPACE
    "a\x00b",  # NUL
    "a\ud800b",  # a lone surrogate
    "a\U000e0001b",  # LANGUAGE TAG
]


def test_distinct_names_print_distinctly_and_inert() -> None:
    shown = [visible(n) for n in DISTINCT_NAMES]
    assert len(set(shown)) == len(DISTINCT_NAMES)
    for text in shown:
        assert text.isprintable()
    assert visible("a\x1bb") == "a\\x1bb"
    assert visible("a\\x1bb") == "a\\\\x1bb"
    assert visible("a\nb") == "a\\nb"
    assert visible("a\u202eb") == "a\\u202eb"


def test_readable_names_stay_as_they_are_and_escapes_read_as_python_would_write_them() -> None:
    for name in ("/Documents/marker.txt", "/Users/Zoë/Рабочий стол/照片.jpg", "a b"):
        assert visible(name) == name
    assert visible("a\x1b[31mb") == "a\\x1b[31mb"
    assert visible("evil\u202etxt.exe") == "evil\\u202etxt.exe"
    assert visible("line\nbreak\ttab") == "line\\nbreak\\ttab"
    assert visible("C:\\x1b") == "C:\\\\x1b"  # a literal backslash is never mistaken for one


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=8), st.text(max_size=8))
def test_visible_never_maps_two_names_to_one(a: str, b: str) -> None:
    """Injective: the escapes it writes can always be told from the text around them."""
    if a != b:
        assert visible(a) != visible(b)
    assert visible(a).isprintable()


def test_integers_beyond_i_json_are_written_as_strings() -> None:
    huge = 4163510269329813000000
    assert canonical({"size": huge, "ok": 2**53 - 1, "flag": True}) == (
        b'{"flag":true,"ok":9007199254740991,"size":"4163510269329813000000"}'
    )


_JSON_LEAF = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**60), max_value=2**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.characters(codec="utf-8"), max_size=20)
    | st.text(
        alphabet=st.characters(max_codepoint=0x7F)
        | st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF),  # lone surrogates
        max_size=6,
    )
)
_JSON_VALUE = st.recursive(
    _JSON_LEAF,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=5)
    ),
    max_leaves=20,
)


@settings(max_examples=600, deadline=None)
@given(_JSON_VALUE)
def test_canonical_fast_path_writes_exactly_what_rfc8785_writes(value: object) -> None:
    """The inventory's fast encoder must never change a byte: rfc8785 is the reference."""
    try:
        expected: bytes | type[Exception] = rfc8785.dumps(_reference_i_json(value))
    except Exception as e:  # whatever rfc8785 refuses, canonical must refuse too
        expected = type(e)
    try:
        got: bytes | type[Exception] = canonical(value)
    except Exception as e:
        got = type(e)
    assert got == expected


def _reference_i_json(obj: object) -> object:
    if isinstance(obj, bool):
        return obj
    if isinstance(obj, int):
        return obj if -(2**53 - 1) <= obj <= 2**53 - 1 else str(obj)
    if isinstance(obj, dict):
        return {k: _reference_i_json(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_reference_i_json(v) for v in obj]
    return obj


def test_canonical_inventory_line_for_a_hostile_name_matches_rfc8785() -> None:
    task = _task(3, '/a\x00b\x1f"\\\u2028\u00e9\U0001f600\x7f')
    r = FileResult(task, FileStatus.SCANNED, md5="0" * 32, rule_matches=(YARA,))
    record = file_json(file_record(r))
    assert canonical(record) == rfc8785.dumps(record)
    assert b"\\u0000" in canonical(record)
