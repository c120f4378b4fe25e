"""The report's shape: records, their JSON both ways, and the published JSON Schema agree.

The goldens are read back into records and written again byte for byte; the schema accepts
them and every report the suite writes (conftest's session sweep), and refuses a report with a
part missing or mistyped — as ``read_report`` does, with one line naming the part.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kiosk.canonical import canonical
from kiosk.cli.main import main
from kiosk.errors import ReportError
from kiosk.reports.attestation import ENVELOPE, REPORT, report_statement, sign_report
from kiosk.reports.decode import read_report
from kiosk.reports.encode import report_json
from kiosk.trust.signing import TrustStore, load_signer
from kiosk.tui.flow import check_report
from tests.report_schema import SCHEMA, line_problems, problems

GOLDEN = Path(__file__).parent / "golden"
GOLDEN_REPORT = (GOLDEN / "ext4.report.json").read_bytes()


def _golden() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(GOLDEN_REPORT)
    return data


def test_the_golden_report_and_inventory_fit_the_schema() -> None:
    assert problems(_golden()) == []
    lines = (GOLDEN / "ext4.files.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == _golden()["inventory"]["records"]
    for line in lines:
        assert line_problems(json.loads(line)) == []


def test_the_golden_reads_into_records_that_write_the_same_bytes() -> None:
    report = read_report(_golden())
    assert canonical(report_json(report)) == GOLDEN_REPORT
    assert report.findings[0].path == "/Documents/deleted_marker.txt"
    assert report.findings[0].allocated is False


def test_the_golden_envelope_signs_exactly_the_records_written_again() -> None:
    envelope = json.loads((GOLDEN / "ext4.report.dsse.json").read_bytes())
    statement = json.loads(base64.b64decode(envelope["payload"]))
    report = read_report(statement["predicate"])
    assert canonical(report_statement(report_json(report))) == base64.b64decode(envelope["payload"])


def _at(data: dict[str, Any], path: str) -> tuple[Any, str | int]:
    """The container holding ``path`` ("a.b.0.c") and the last key in it."""
    keys: list[str | int] = [int(k) if k.isdigit() else k for k in path.split(".")]
    node: Any = data
    for k in keys[:-1]:
        node = node[k]
    return node, keys[-1]


def _without(path: str) -> dict[str, Any]:
    data = copy.deepcopy(_golden())
    node, key = _at(data, path)
    del node[key]
    return data


def _with(path: str, value: object) -> dict[str, Any]:
    data = copy.deepcopy(_golden())
    node, key = _at(data, path)
    node[key] = value
    return data


UNFIT = [
    pytest.param(_without("image.sha256"), "report.image.sha256 is missing", id="missing-field"),
    pytest.param(_without("recommendation"), "report.recommendation is missing", id="missing-part"),
    pytest.param(
        _without("findings.1.matches.0.rule"),
        "report.findings[1].matches[0].rule is missing",
        id="missing-in-a-finding",
    ),
    pytest.param(
        _with("coverage.files.found", "14"),
        "report.coverage.files.found is not an integer",
        id="integer-as-short-text",
    ),
    pytest.param(
        _with("settings.inventory", 1), "report.settings.inventory is not true or false", id="bool"
    ),
    pytest.param(
        _with("outcome.status", "done"),
        "report.outcome.status has an unknown value 'done'",
        id="unknown-enum-value",
    ),
    pytest.param(
        _with("not_examined", [{"kind": "volume_set"}]),  # the golden's areas were all scanned
        "report.not_examined[0].kind has an unknown value 'volume_set'",
        id="unknown-kind",
    ),
    pytest.param(
        _with("areas.coverage.0.kind", "swap"),
        "report.areas.coverage[0].kind has an unknown value 'swap'",
        id="unknown-area-kind",
    ),
    pytest.param(
        _with("case.legal_basis.extra", "x"),
        "report.case.legal_basis.extra is not a field of this schema",
        id="unknown-field",
    ),
    pytest.param(_with("findings", {}), "report.findings is not a list", id="not-a-list"),
    pytest.param(_with("image.ewf", []), "report.image.ewf is not an object", id="not-an-object"),
    pytest.param(
        _with("schema", "kiosk.triage-report/0"),
        "the report's schema 'kiosk.triage-report/0' is not kiosk.triage-report/1",
        id="other-schema",
    ),
]


@pytest.mark.parametrize(("data", "message"), UNFIT)
def test_a_report_that_does_not_fit_is_refused_by_the_schema_and_the_reader(
    data: dict[str, Any], message: str
) -> None:
    assert problems(data) != []
    with pytest.raises(ReportError) as caught:
        read_report(data)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_integers_beyond_i_json_are_read_back_exactly_and_short_ones_as_text_are_not() -> None:
    giant = str(2**62)
    data = _with("findings.0.size", giant)
    assert problems(data) == []
    report = read_report(data)
    assert report.findings[0].size == 2**62
    assert canonical(report_json(report)) == canonical(data)
    for wrong in ("4448", "04611686018427387904", "4.6e18", True):
        with pytest.raises(ReportError, match=r"findings\[0\]\.size is not an integer"):
            read_report(_with("findings.0.size", wrong))


ADDED_WITHIN_VERSION = {
    "max_hashed_only_percent",  # settings: the hashed-only limit
    "archive_members",  # coverage: archive members (only when there were some)
    "device",  # image: a phone backup's device details, absent for any other evidence
    "stored_name",  # file: a backup's hashed name for the file, absent for any other evidence
    "evidence_files",  # image: every evidence file (only when more than one raw file)
    # issue 17: settings.unallocated, the report's areas and a big file's yara_reach
    "unallocated",
    "areas",
    "yara_reach",
    "distance",  # hash-set matches: perceptual (pdq) ones only, absent from exact matches
    "threshold",
    "cluster",  # settings: present only for a run on a Dask cluster
    "yara_engine",  # tool.engines: the YARA engine (absent when no pack applied)
    "quarantined",  # rule_packs[]: the quarantine count, imported packs only
}


def test_every_closed_object_of_the_schema_refuses_unknown_fields() -> None:
    """``additionalProperties: false`` wherever the shape is closed: every object that lists
    its properties (maps keyed by algorithm or category are the only open ones)."""

    def objects(node: object) -> list[dict[str, Any]]:
        if isinstance(node, list):
            return [o for x in node for o in objects(x)]
        if not isinstance(node, dict):
            return []
        found = [node] if "properties" in node else []
        return found + [o for v in node.values() for o in objects(v)]

    closed = objects(SCHEMA)
    assert len(closed) > 20
    for o in closed:
        assert o.get("additionalProperties") is False, o.get("description")
        if "required" in o:  # every property is always present, null where nothing is known,
            # except a field added within the schema's version: absent from reports signed
            # before it, which must still read (kiosk writes it always)
            added = set(o["properties"]) & ADDED_WITHIN_VERSION
            assert set(o["required"]) == set(o["properties"]) - added, o.get("description")


def test_every_field_of_the_schema_is_described() -> None:
    def walk(node: object, where: str) -> list[str]:
        if isinstance(node, list):
            return [m for i, x in enumerate(node) for m in walk(x, f"{where}[{i}]")]
        if not isinstance(node, dict):
            return []
        missing = []
        for name, prop in node.get("properties", {}).items():
            if "description" not in prop:
                missing.append(f"{where}.{name}")
        return missing + [m for k, v in node.items() for m in walk(v, f"{where}.{k}")]

    assert walk(SCHEMA, "") == []


# --------------------------------------------------------------------------- front ends


@pytest.fixture
def unfit_but_signed(tmp_path: Path) -> Iterator[Path]:
    """A report directory signed by a trusted key whose report lacks a part (as an older kiosk
    or another tool might have written it): it verifies, and must still not be half-read.
    Removed afterwards: the session's schema sweep is for reports kiosk wrote."""
    data = _without("coverage.bytes")
    signer = load_signer(Path(os.environ["KIOSK_HOME"]) / "keys" / "kiosk.key")
    report_bytes, envelope_bytes = sign_report(data, signer)
    directory = tmp_path / "r1"
    directory.mkdir()
    (directory / REPORT).write_bytes(report_bytes)
    (directory / ENVELOPE).write_bytes(envelope_bytes)
    shutil.copyfile(GOLDEN / "ext4.files.jsonl", directory / "files.jsonl")
    yield directory
    shutil.rmtree(directory)


@pytest.mark.parametrize("command", ["show", "html", "case"])
def test_report_commands_refuse_an_unfit_report_in_one_line(
    unfit_but_signed: Path, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "verify", str(unfit_but_signed)]) == 0  # the signature is fine
    capsys.readouterr()
    assert main(["report", command, str(unfit_but_signed)]) == 1
    _, err = capsys.readouterr()
    assert err == (
        "kiosk: error: the report does not fit schema kiosk.triage-report/1: "
        "report.coverage.bytes is missing\n"
    )
    assert not (unfit_but_signed / "report.html").exists()
    assert not (unfit_but_signed / "report.case.jsonld").exists()


def test_the_app_lists_an_unfit_report_with_the_reason_and_offers_no_review(
    unfit_but_signed: Path, kiosk_home: Path
) -> None:
    entry = check_report(unfit_but_signed, TrustStore.load(kiosk_home / "trust.json"))
    assert entry.verified is None
    assert entry.report is None
    assert "report.coverage.bytes is missing" in entry.problem
    assert entry.case_ref == "CASE-2026-0042"  # labelled from the file, for the list only
