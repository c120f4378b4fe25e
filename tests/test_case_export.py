"""CASE/UCO export: real triages, exported through the CLI, checked by case-utils' own validator.

``case_validate`` takes a few seconds a run (it loads the whole CASE 1.5.0 ontology), so only two
tests call it; the rest read the bundle as RDF (rdflib, which case-utils brings) or as JSON.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import rdflib

from kiosk.cli.main import main
from kiosk.engine.triage import TriageResult
from kiosk.reports.attestation import verify_report_dir, write_review
from kiosk.reports.case import case_bundle, case_json
from kiosk.trust.signing import TrustStore, kiosk_home
from tests.conftest import CASE, IMAGES, MARKER, supervisor

Triage = Callable[..., TriageResult]

PREFIXES = """
PREFIX case-investigation: <https://ontology.caseontology.org/case/investigation/>
PREFIX uco-action: <https://ontology.unifiedcyberontology.org/uco/action/>
PREFIX uco-analysis: <https://ontology.unifiedcyberontology.org/uco/analysis/>
PREFIX uco-core: <https://ontology.unifiedcyberontology.org/uco/core/>
PREFIX uco-observable: <https://ontology.unifiedcyberontology.org/uco/observable/>
PREFIX uco-types: <https://ontology.unifiedcyberontology.org/uco/types/>
"""


def _case_validate(path: Path) -> subprocess.CompletedProcess[str]:
    """case-utils' command line (its console-script entry point, run by this interpreter),
    pinned to CASE 1.5.0; exit 0 means the graph conforms, Info results included."""
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "from case_utils.case_validate import main; main()",
            "--built-version",
            "case-1.5.0",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def _export(directory: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> Path:
    assert main(["report", "case", str(directory), *extra]) == 0
    return Path(capsys.readouterr().out.strip().splitlines()[-1])


def _graph(path: Path) -> rdflib.Graph:
    """The bundle as RDF, read the way any JSON-LD consumer reads it."""
    with warnings.catch_warnings():
        # rdflib 7's own JSON-LD parser builds a ConjunctiveGraph inside and warns about that
        warnings.filterwarnings("ignore", "ConjunctiveGraph is deprecated", DeprecationWarning)
        return rdflib.Graph().parse(data=path.read_text(encoding="ascii"), format="json-ld")


def _rows(graph: rdflib.Graph, query: str) -> set[tuple[str, ...]]:
    return {tuple(str(v) for v in row) for row in graph.query(PREFIXES + query)}


def _nodes(obj: Any) -> Iterator[dict[str, Any]]:
    """Every node written out in full (it has an @type), nested ones included."""
    if isinstance(obj, dict):
        if "@type" in obj and "@id" in obj:
            yield obj
        for v in obj.values():
            yield from _nodes(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _nodes(v)


def _expected_matches(report: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {
        (
            f["path"],
            f"YARA rule {m['pack']}:{m['rule']}"
            if m["type"] == "yara"
            else f"hash set {m['set']} {m['version']}",
            m["category"],
        )
        for f in report["findings"]
        for m in f["matches"]
    }


def test_ewf_triage_exports_a_conformant_bundle_with_findings_hashes_and_provenance(
    triage: Triage, capsys: pytest.CaptureFixture[str]
) -> None:
    result = triage("ewf.E01")
    report = json.loads((result.report_dir / "report.json").read_bytes())  # as signed
    assert report["findings"]
    store = TrustStore.load(kiosk_home() / "trust.json")
    verified = verify_report_dir(result.report_dir, store)
    when = datetime(2026, 11, 27, 13, 0, tzinfo=UTC)
    signer = supervisor("INSP-2")
    write_review(verified, "submit", "matches confirmed", signer, when, store)

    out = _export(result.report_dir, capsys)
    assert out == result.report_dir / "report.case.jsonld"
    run = _case_validate(out)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Conforms: True" in run.stdout

    g = _graph(out)
    # every finding: path, size, MD5/SHA-1/SHA-256 and mime, as in the signed report
    files = _rows(
        g,
        """SELECT ?path ?size ?mime WHERE {
             ?f a uco-observable:File ; uco-core:hasFacet ?ff , ?cf .
             ?ff uco-observable:filePath ?path ; uco-observable:sizeInBytes ?size .
             ?cf uco-observable:mimeType ?mime . }""",
    )
    assert files == {(f["path"], str(f["size"]), f["mime"]) for f in report["findings"]}
    hashes = _rows(
        g,
        """SELECT ?path ?method ?value WHERE {
             ?f a uco-observable:File ; uco-core:hasFacet ?ff , ?cf .
             ?ff uco-observable:filePath ?path .
             ?cf uco-observable:hash ?h .
             ?h uco-types:hashMethod ?method ; uco-types:hashValue ?value . }""",
    )
    assert {(p, m, v.lower()) for p, m, v in hashes} == {
        (f["path"], method, f[key])
        for f in report["findings"]
        for key, method in (("md5", "MD5"), ("sha1", "SHA1"), ("sha256", "SHA256"))
    }
    # what matched each file, with its category, traced back to the triage action
    matched = _rows(
        g,
        """SELECT ?path ?name ?class WHERE {
             ?r a uco-analysis:AnalyticResult ; uco-core:object ?f ; uco-core:name ?name ;
                uco-analysis:originatingAnalysis ?a ;
                uco-core:hasFacet/uco-analysis:classification/uco-analysis:class ?class .
             ?a a case-investigation:InvestigativeAction ; uco-action:result ?r .
             ?f uco-core:hasFacet/uco-observable:filePath ?path . }""",
    )
    assert matched == _expected_matches(report)
    assert {m for _, m, _ in matched} >= {"YARA rule demo:kiosk_demo_marker"}
    # the image: media SHA-256 and the EWF container's MD5, and the segments read
    image = _rows(
        g,
        """SELECT ?name ?size ?method ?value WHERE {
             ?i a uco-observable:Image ; uco-core:name ?name ; uco-core:hasFacet ?cf .
             ?cf uco-observable:sizeInBytes ?size ; uco-observable:hash ?h .
             ?h uco-types:hashMethod ?method ; uco-types:hashValue ?value . }""",
    )
    img = report["image"]
    assert {(n, s, m, v.lower()) for n, s, m, v in image} >= {
        ("ewf.E01", str(img["size"]), "SHA256", IMAGES["ewf.E01"]["sha256"]),
        ("ewf.E01", str(img["size"]), "MD5", img["ewf"]["stored"]["md5"]),
    }
    # the action: times, outcome, officer, tool; the authority and who gave it
    action = _rows(
        g,
        """SELECT ?start ?end ?status ?officer ?tool ?version WHERE {
             ?a a uco-analysis:Analysis ; uco-action:startTime ?start ; uco-action:endTime ?end ;
                uco-action:actionStatus ?status ; uco-action:performer/uco-core:name ?officer ;
                uco-action:instrument ?t .
             ?t uco-core:name ?tool ; <https://ontology.unifiedcyberontology.org/uco/tool/version>
                ?version . }""",
    )
    assert action == {
        (
            # as RDF reads it: an xsd:dateTime, which rdflib writes back with +00:00
            datetime.fromisoformat(report["started"]).isoformat(),
            datetime.fromisoformat(report["finished"]).isoformat(),
            "Complete/Finish",
            CASE.officer,
            "kiosk",
            report["tool"]["version"],
        )
    }
    authority = _rows(
        g,
        """SELECT ?type ?ref ?by WHERE {
             ?inv a case-investigation:Investigation ;
                  case-investigation:relevantAuthorization ?auth .
             ?auth case-investigation:authorizationType ?type ;
                   case-investigation:authorizationIdentifier ?ref .
             ?give uco-action:result ?auth ; uco-action:performer/uco-core:name ?by . }""",
    )
    assert authority == {(CASE.legal_basis.value, CASE.legal_ref, CASE.authorised_by)}
    # provenance: the signed envelope's SHA-256 (of the bytes on disk) and the signing key id
    envelope_sha = hashlib.sha256((result.report_dir / "report.dsse.json").read_bytes()).hexdigest()
    provenance = _rows(
        g,
        """SELECT ?value ?signature WHERE {
             ?p a case-investigation:ProvenanceRecord ; uco-core:object ?f .
             ?f uco-core:hasFacet ?ff , ?cf , ?sf .
             ?ff uco-observable:fileName "report.dsse.json" .
             ?cf uco-observable:hash/uco-types:hashValue ?value .
             ?sf uco-observable:signatureVerified true ;
                 uco-observable:signatureDescription ?signature . }""",
    )
    assert len(provenance) == 1
    ((value, signature),) = provenance
    assert value.lower() == envelope_sha
    assert report["signing_key"] in signature
    reviews = _rows(
        g,
        """SELECT ?by ?what WHERE {
             ?r uco-core:name "supervisor review" ; uco-core:description ?what ;
                uco-action:performer/uco-core:name ?by . }""",
    )
    assert reviews == {
        (
            "INSP-2",
            "decision submit: matches confirmed (signed review "
            f"001.dsse.json, key id {signer.keyid})",
        )
    }


def test_export_is_deterministic_and_every_id_is_minted_once(
    triage: Triage, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    result = triage("ntfs.dd")
    first = _export(result.report_dir, capsys)
    second = _export(result.report_dir, capsys, "--out", str(tmp_path / "again.jsonld"))
    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes().isascii()
    bundle = json.loads(first.read_bytes())
    ids = [n["@id"] for n in _nodes(bundle["@graph"])]
    assert len(ids) == len(set(ids))
    assert all(i.startswith("kb:") for i in ids)
    # an id names the item of this report, not the text: the same report id gives the same ids
    verified = verify_report_dir(result.report_dir, TrustStore.load(kiosk_home() / "trust.json"))
    assert case_json(case_bundle(verified)) == first.read_bytes()
    # the alternate data stream is a finding of its own, with its stream name in the path
    paths = {n.get("uco-observable:filePath") for n in _nodes(bundle["@graph"])}
    assert "/report.txt:hidden" in paths


def test_sizes_beyond_i_json_range_stay_exact_typed_integers(triage: Triage) -> None:
    """Crafted metadata can claim a size past 2^53; the signed report holds it as a decimal
    string, and the bundle must give it back as an xsd:integer, not a string or a rounded float.
    """
    result = triage("fat16.dd")
    verified = verify_report_dir(result.report_dir, TrustStore.load(kiosk_home() / "trust.json"))
    giant = str(2**62)
    report = json.loads(json.dumps(verified.report))
    report["findings"][0]["size"] = giant
    crafted = dataclasses.replace(verified, report=report)
    facets = [
        n
        for n in _nodes(case_bundle(crafted)["@graph"])
        if n["@type"] == "uco-observable:FileFacet"
    ]
    sizes = [n["uco-observable:sizeInBytes"] for n in facets if "uco-observable:filePath" in n]
    assert sizes[0] == {"@type": "xsd:integer", "@value": giant}
    assert all(isinstance(x, int) for x in sizes[1:])


def _ext4_with(tmp_path: Path, files: dict[str, bytes]) -> Path:
    """A real ext4 image (mke2fs -d) holding the given files: ext4 names may be any bytes but
    "/" and NUL, which is how hostile names reach a kiosk."""
    stage = tmp_path / "stage"
    stage.mkdir()
    for name, data in files.items():
        (stage / name).write_bytes(data)  # the tests' own names: valid UTF-8
    image = tmp_path / "hostile.dd"
    subprocess.run(
        ["mke2fs", "-q", "-F", "-t", "ext4", "-b", "1024", "-d", str(stage), str(image), "2048k"],
        check=True,
        capture_output=True,
    )
    return image


def test_names_from_the_image_stay_verbatim_json_strings(
    triage: Triage, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    names = {
        '<script>alert("x")<\\script> & @id.txt',  # markup, quotes, a JSON-LD keyword
        "\x1b[31mred\x07.txt",  # an escape sequence and a bell: shown inert on screen, but
    }  # kept as they are here, where JSON escaping already makes them inert
    body = b"plain text before the marker\n" + MARKER + b"\n"
    # the sample name only picks the fixture's defaults; the image is the one made here
    result = triage("ext4.dd", image=(_ext4_with(tmp_path, dict.fromkeys(names, body)),))
    paths = {f"/{n}" for n in names}
    assert {f.path for f in result.report.findings} == paths

    out = _export(result.report_dir, capsys)
    run = _case_validate(out)
    assert run.returncode == 0, run.stdout + run.stderr

    raw = out.read_bytes()
    assert raw.isascii()
    for p in paths:  # JSON-escaped, nothing else done to them
        assert json.dumps(p).encode() in raw
    bundle = json.loads(raw)
    facets = [n for n in _nodes(bundle["@graph"]) if "uco-observable:filePath" in n]
    assert {(n["uco-observable:fileName"], n["uco-observable:filePath"]) for n in facets} == {
        (n, f"/{n}") for n in names
    }
    assert not any("<" in n["@id"] or "@id" in n["@id"][3:] for n in _nodes(bundle["@graph"]))
    g = _graph(out)
    assert _rows(g, "SELECT ?p WHERE { ?f uco-observable:filePath ?p . }") == {(p,) for p in paths}


def test_a_tampered_report_is_refused_and_nothing_is_written(
    triage: Triage, capsys: pytest.CaptureFixture[str]
) -> None:
    result = triage("fat16.dd")
    report_json = result.report_dir / "report.json"
    report_json.write_bytes(report_json.read_bytes().replace(b"PC-1234", b"PC-9999"))
    assert main(["report", "case", str(result.report_dir)]) == 1
    out = capsys.readouterr().out.strip().splitlines()
    assert out == ["invalid: report.json differs from the signed report (tampered or replaced)"]
    assert not (result.report_dir / "report.case.jsonld").exists()
