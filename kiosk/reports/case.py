"""CASE 1.5 / UCO JSON-LD export of a verified triage report, for other forensic tools.

Labs and prosecutors' systems exchange case data as CASE (https://caseontology.org); a kiosk
report they can load as a graph saves someone retyping hashes from a PDF. The bundle describes
the triage as an investigative action (times, outcome, performer, tool and engines, rule packs
and hash sets), the authority for it, the image with its hashes, every finding with its hashes
and what it matched, and provenance: the signed envelope's SHA-256 and the signing key id.

Why it is built the way it is:

* Only from a ``VerifiedReport``: the bundle can never say more, or other, than what the kiosk
  signed, and it carries the envelope digest so a reader can go back to the signed original.
* Pure and deterministic: no clock, no I/O, no random ids. Every ``@id`` is ``kb:<Class>-`` plus
  a uuid5 of (report id, item), so exporting one report twice gives the same bytes and bundles of
  different reports (whose ids are random) can be pooled into one graph without clashes.
* Strings from the image or the case form (file names, references, reasons) only ever appear as
  JSON string values — never in an ``@id``, never as a key — so a file named ``<script>`` or
  ``@id`` stays plain data, kept verbatim.
* Nothing is silent here either: what was *not* examined travels with the findings (an
  annotation on the image), so a reader of the graph cannot mistake it for full coverage.

Modelling follows shared/reference/governance-and-signing.md §3.2 (validated with
``case_validate``); the tests validate real exports with case-utils against CASE 1.5.0.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from kiosk.canonical import canonical
from kiosk.model import BUILTIN_PACK, Outcome, RuleMatch
from kiosk.reports.attestation import ENVELOPE, REPORT, REPORT_PREDICATE, VerifiedReport
from kiosk.reports.decode import read_report
from kiosk.reports.encode import settings_json
from kiosk.reports.model import FileRecord, ImageRecord, Match, TriageReport

Node = dict[str, Any]

CASE_VERSION = "case-1.5.0"
KB = "urn:kiosk:"
CONTEXT: dict[str, str] = {
    "kb": KB,
    "case-investigation": "https://ontology.caseontology.org/case/investigation/",
    "uco-action": "https://ontology.unifiedcyberontology.org/uco/action/",
    "uco-analysis": "https://ontology.unifiedcyberontology.org/uco/analysis/",
    "uco-configuration": "https://ontology.unifiedcyberontology.org/uco/configuration/",
    "uco-core": "https://ontology.unifiedcyberontology.org/uco/core/",
    "uco-identity": "https://ontology.unifiedcyberontology.org/uco/identity/",
    "uco-observable": "https://ontology.unifiedcyberontology.org/uco/observable/",
    "uco-tool": "https://ontology.unifiedcyberontology.org/uco/tool/",
    "uco-types": "https://ontology.unifiedcyberontology.org/uco/types/",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
}

# Fixed forever: changing it would change every @id of every export.
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:kiosk:case-export")

# Our outcome -> UCO ActionStatusTypeVocab. A cancelled run stopped short of its goal ("Fail");
# a failed run hit an error ("Error"). The exact outcome and reason are in the description too.
_ACTION_STATUS = {
    Outcome.COMPLETE: "Complete/Finish",
    Outcome.CANCELLED: "Fail",
    Outcome.FAILED: "Error",
}

# Report hash keys -> UCO HashNameVocab, in the order they are written.
_HASH_METHODS = (("md5", "MD5"), ("sha1", "SHA1"), ("sha256", "SHA256"))

_TOOL_TYPE = "digital triage (MD5/SHA-1/SHA-256, libmagic, YARA rule packs, hash sets)"


def _time(text: str) -> Node:
    return {"@type": "xsd:dateTime", "@value": text}


def _ref(node: Node) -> Node:
    return {"@id": node["@id"]}


_I_JSON_MAX = 2**53 - 1


def _integer(value: int) -> int | Node:
    """A size as xsd:integer. Reports write integers beyond 2^53 (crafted metadata) as decimal
    strings (kiosk.canonical.canonical); they stay exact here, typed rather than plain
    strings."""
    if -_I_JSON_MAX <= value <= _I_JSON_MAX:
        return value
    return {"@type": "xsd:integer", "@value": str(value)}


class _Graph:
    """Mints the deterministic IRIs of one report and collects its top-level nodes in order."""

    def __init__(self, report_id: str) -> None:
        self._report_id = report_id
        self.nodes: dict[str, Node] = {}

    def iri(self, kind: str, key: str) -> str:
        # A unit separator between the parts, so ("a", "b/c") and ("a/b", "c") never meet.
        name = "\x1f".join((self._report_id, kind, key))
        return f"kb:{kind}-{uuid.uuid5(_NAMESPACE, name)}"

    def inner(self, kind: str, key: str, types: str | list[str], props: Node) -> Node:
        """A node nested inside another (facets, hashes, configuration entries)."""
        return {"@id": self.iri(kind, key), "@type": types, **props}

    def add(self, kind: str, key: str, types: str | list[str], props: Node) -> Node:
        """A top-level node; adding the same (kind, key) again returns the first one."""
        node = self.inner(kind, key, types, props)
        return self.nodes.setdefault(node["@id"], node)

    def hashes(self, key: str, values: dict[str, Any]) -> list[Node]:
        return [
            self.inner(
                "Hash",
                f"{key}/{algo}",
                "uco-types:Hash",
                {
                    "uco-types:hashMethod": method,
                    "uco-types:hashValue": {"@type": "xsd:hexBinary", "@value": str(values[algo])},
                },
            )
            for algo, method in _HASH_METHODS
            if values.get(algo)
        ]

    def file(
        self,
        key: str,
        name: str,
        *,
        path: str | None = None,
        size: int | None = None,
        allocated: bool | None = None,
        hashes: dict[str, Any] | None = None,
        mime: str | None = None,
        extra_facets: tuple[Node, ...] = (),
    ) -> Node:
        """A ``uco-observable:File`` with its FileFacet and, when anything is known of its
        content, a ContentDataFacet."""
        file_facet: Node = {"uco-observable:fileName": name}
        if path is not None:
            file_facet["uco-observable:filePath"] = path
        if size is not None:
            file_facet["uco-observable:sizeInBytes"] = _integer(size)
        if allocated is not None:
            file_facet["uco-observable:allocationStatus"] = (
                "allocated" if allocated else "unallocated"
            )
        facets = [self.inner("FileFacet", key, "uco-observable:FileFacet", file_facet)]
        content: Node = {}
        hash_nodes = self.hashes(key, hashes or {})
        if hash_nodes:
            content["uco-observable:hash"] = hash_nodes
        if mime:
            content["uco-observable:mimeType"] = mime
        if content:
            facets.append(
                self.inner("ContentDataFacet", key, "uco-observable:ContentDataFacet", content)
            )
        return self.add(
            "File", key, "uco-observable:File", {"uco-core:hasFacet": [*facets, *extra_facets]}
        )

    def contained_within(
        self, key: str, inner: Node, outer: Node, description: str, path: str | None = None
    ) -> Node:
        """``inner`` is Contained_Within ``outer``, at ``path`` inside it when there is one."""
        props: Node = {
            "uco-core:source": _ref(inner),
            "uco-core:target": _ref(outer),
            "uco-core:kindOfRelationship": "Contained_Within",
            "uco-core:isDirectional": True,
            "uco-core:description": description,
        }
        if path is not None:
            props["uco-core:hasFacet"] = [
                self.inner(
                    "PathRelationFacet",
                    key,
                    "uco-observable:PathRelationFacet",
                    {"uco-observable:path": path},
                )
            ]
        return self.add(
            "ObservableRelationship", key, "uco-observable:ObservableRelationship", props
        )

    def person(self, person_id: str) -> Node:
        # Keyed by the id alone: an officer who is also the authoriser is one person.
        return self.add(
            "Person", f"person/{person_id}", "uco-identity:Person", {"uco-core:name": person_id}
        )

    def result(
        self, key: str, name: str, statements: list[str], about: Node, classes: list[str]
    ) -> Node:
        """What the triage concluded about one object: an AnalyticResult (pointing back to the
        triage) that is also an Annotation (pointing at the object it is about)."""
        props: Node = {
            "uco-core:name": name,
            "uco-core:statement": statements,
            "uco-core:object": [_ref(about)],
            "uco-analysis:originatingAnalysis": {"@id": self.iri("InvestigativeAction", "triage")},
        }
        if classes:
            props["uco-core:hasFacet"] = [
                self.inner(
                    "ArtifactClassificationResultFacet",
                    key,
                    "uco-analysis:ArtifactClassificationResultFacet",
                    {
                        "uco-analysis:classification": [
                            self.inner(
                                "ArtifactClassification",
                                f"{key}/{i}",
                                "uco-analysis:ArtifactClassification",
                                {"uco-analysis:class": c},
                            )
                            for i, c in enumerate(classes)
                        ]
                    },
                )
            ]
        return self.add(
            "AnalyticResult", key, ["uco-analysis:AnalyticResult", "uco-core:Annotation"], props
        )


def _configured_tool(g: _Graph, report: TriageReport) -> Node:
    """kiosk as configured for this run: engines, rule packs, hash sets and settings."""
    version = report.tool.version
    base = g.add(
        "Tool",
        "kiosk",
        "uco-tool:AnalyticTool",
        {"uco-core:name": "kiosk", "uco-tool:version": version, "uco-tool:toolType": _TOOL_TYPE},
    )
    entries: list[Node] = []

    def entry(item: str, props: Node) -> None:
        entries.append(
            g.inner(
                "ConfigurationEntry",
                f"{len(entries)}",
                "uco-configuration:ConfigurationEntry",
                {"uco-configuration:itemName": item, **props},
            )
        )

    engines = report.tool.engines
    for name, engine_version in (
        ("libmagic", engines.libmagic),
        ("libyara", engines.libyara),
        ("sleuthkit", engines.sleuthkit),
    ):
        engine = g.add(
            "Tool",
            f"engine/{name}",
            "uco-tool:Tool",
            {
                "uco-core:name": name,
                "uco-tool:version": engine_version,
                "uco-tool:toolType": "library",
            },
        )
        entry("engine", {"uco-configuration:itemObject": _ref(engine)})
    for p in report.rule_packs:
        entry(
            "rule_pack",
            {
                "uco-configuration:itemValue": f"{p.name} {p.version}",
                "uco-configuration:itemDescription": (
                    f"YARA rule pack, {p.rules} rules, compiled from source; digest {p.digest}"
                ),
            },
        )
    for s in report.hash_sets:
        entry(
            "hash_set",
            {
                "uco-configuration:itemValue": f"{s.name} {s.version}",
                "uco-configuration:itemDescription": (
                    f"{s.disposition} hash set, {s.count} {s.algorithm} digests, "
                    f"category {s.category}; digest {s.digest}"
                ),
            },
        )
    # each setting as the signed report writes it: keys sorted, big integers as decimal text
    settings: dict[str, Any] = json.loads(canonical(settings_json(report.settings)))
    for name, value in sorted(settings.items()):
        entry(name, {"uco-configuration:itemValue": json.dumps(value)})
    return g.add(
        "ConfiguredTool",
        "kiosk",
        ["uco-tool:AnalyticTool", "uco-tool:ConfiguredTool"],
        {
            "uco-core:name": "kiosk",
            "uco-tool:version": version,
            "uco-tool:toolType": _TOOL_TYPE,
            "uco-configuration:isConfigurationOf": _ref(base),
            "uco-configuration:usesConfiguration": g.inner(
                "Configuration",
                "kiosk",
                "uco-configuration:Configuration",
                {"uco-configuration:configurationEntry": entries},
            ),
        },
    )


def _image(g: _Graph, img: ImageRecord) -> tuple[Node, list[Node]]:
    """The media as read (its hashes are of the media content, e.g. inside the EWF container)
    and the segment files it was read from."""
    hashes: dict[str, Any] = {"sha256": img.sha256}
    if img.ewf:
        hashes.update(img.ewf.computed)
    content: Node = {"uco-observable:sizeInBytes": _integer(img.size)}
    hash_nodes = g.hashes("image", hashes)
    if hash_nodes:
        content["uco-observable:hash"] = hash_nodes
    image = g.add(
        "Image",
        "image",
        "uco-observable:Image",
        {
            "uco-core:name": img.name,
            "uco-core:hasFacet": [
                g.inner(
                    "ImageFacet",
                    "image",
                    "uco-observable:ImageFacet",
                    {"uco-observable:imageType": img.format},
                ),
                g.inner("ContentDataFacet", "image", "uco-observable:ContentDataFacet", content),
            ],
        },
    )
    segments = []
    for i, name in enumerate(img.segments):
        seg = g.file(f"segment/{i}", name)
        g.contained_within(
            f"segment/{i}",
            image,
            seg,
            f"segment {i + 1} of {len(img.segments)} of the {img.format} image",
        )
        segments.append(seg)
    return image, segments


def _match(m: Match) -> tuple[str, str]:
    """(name, statement) of one match, as the report recorded it."""
    if isinstance(m, RuleMatch) and m.pack == BUILTIN_PACK:  # the kiosk's own checks
        return (
            f"kiosk check {m.rule}",
            f"the kiosk's own check {m.rule} (category {m.category}, severity {m.severity}): "
            f"{m.description}",
        )
    if isinstance(m, RuleMatch):
        return (
            f"YARA rule {m.pack}:{m.rule}",
            f"matched YARA rule {m.rule} of rule pack {m.pack} (category {m.category}, "
            f"severity {m.severity}): {m.description}",
        )
    if m.distance is not None:
        return (
            f"hash set {m.hashset} {m.version}",
            f"its PDQ hash is {m.distance} bits from one in perceptual hash set {m.hashset} "
            f"{m.version} (threshold {m.threshold}; {m.disposition}, category {m.category})",
        )
    return (
        f"hash set {m.hashset} {m.version}",
        f"its {m.algorithm.upper()} is listed in hash set {m.hashset} {m.version} "
        f"({m.disposition}, category {m.category})",
    )


def _coverage_statements(r: TriageReport) -> list[str]:
    files = r.coverage.files
    out = [
        f"files: {files.found} found, {files.scanned} scanned, "
        f"{files.hashed_only} hashed only (over the YARA size cap), "
        f"{files.known_good} known-good (not YARA-scanned), "
        f"{files.unrecoverable} unrecoverable, {files.error} errors, "
        f"{files.not_reached} not reached"
    ]
    img = r.image
    if img.hash_error:
        out.append(f"the image could not be hashed in full: {img.hash_error}")
    ewf = img.ewf
    if ewf:
        for algo, stored in sorted(ewf.stored.items()):
            computed = ewf.computed.get(algo)
            verdict = "matches" if computed == stored else f"does NOT match ({computed})"
            out.append(f"EWF container's stored {algo} {stored} {verdict} the media as read")
        if not ewf.stored:
            out.append("the EWF container stored no hash to check the media against")
    for n in r.not_examined:
        out.append(f"not examined ({n.kind.value}): {n.where}: {n.reason}")
    return out


def _findings(g: _Graph, findings: tuple[FileRecord, ...], image: Node) -> list[Node]:
    """Each finding as a File inside the image, and one result per match saying what matched."""
    results: list[Node] = []
    for i, f in enumerate(findings):
        key = f"finding/{i}"
        file = g.file(
            key,
            f.path.rsplit("/", 1)[-1],
            path=f.path,
            size=f.size,
            allocated=f.allocated,
            hashes={"md5": f.md5, "sha1": f.sha1, "sha256": f.sha256},
            mime=f.mime,
        )
        g.contained_within(
            key,
            file,
            image,
            f"volume {f.volume}, {f.fs_type} filesystem at byte offset {f.fs_offset}, "
            f"inode {f.inode}" + ("" if f.allocated else ", deleted"),
            f.path,
        )
        for j, m in enumerate(f.matches):
            name, statement = _match(m)
            results.append(g.result(f"{key}/{j}", name, [statement], file, [m.category]))
    return results


def _signed_report(g: _Graph, verified: VerifiedReport, r: TriageReport) -> tuple[Node, Node]:
    """(ProvenanceRecord, envelope File): the signed report's files with their SHA-256, and who
    signed it — so a reader of the graph can go back to the signed original and check it."""
    signature = g.inner(
        "DigitalSignatureInfoFacet",
        "envelope",
        "uco-observable:DigitalSignatureInfoFacet",
        {
            "uco-observable:signatureExists": True,
            "uco-observable:signatureVerified": True,
            "uco-observable:signatureDescription": (
                f"DSSE envelope, Ed25519, key id {verified.keyid}, signed at {verified.signed_at}; "
                f"payload an in-toto Statement v1 with predicate {REPORT_PREDICATE}; verified "
                "against the kiosk trust store when this bundle was made"
            ),
        },
    )
    envelope = g.file(
        "envelope",
        ENVELOPE,
        hashes={"sha256": verified.envelope_sha256},
        extra_facets=(signature,),
    )
    report_bytes = canonical(verified.report)  # exactly the bytes of report.json
    report_file = g.file(
        "report",
        REPORT,
        size=len(report_bytes),
        hashes={"sha256": hashlib.sha256(report_bytes).hexdigest()},
    )
    report_files = [envelope, report_file]
    if r.inventory is not None:
        report_files.append(
            g.file("inventory", r.inventory.file, hashes={"sha256": r.inventory.sha256})
        )
    provenance = g.add(
        "ProvenanceRecord",
        "report",
        "case-investigation:ProvenanceRecord",
        {
            "uco-core:name": f"signed triage report {r.report_id}",
            "uco-core:description": (
                f"kiosk triage report {r.report_id}, signed by key {verified.keyid} at "
                f"{verified.signed_at}; {ENVELOPE} SHA-256 {verified.envelope_sha256}"
            ),
            "case-investigation:rootExhibitNumber": r.case.exhibit_ref,
            "uco-core:object": [_ref(n) for n in report_files],
        },
    )
    return provenance, envelope


def case_bundle(verified: VerifiedReport) -> dict[str, Any]:
    """The CASE 1.5 JSON-LD bundle (``@context`` + ``@graph``) of one verified report;
    ``ReportError`` if the report is not this kiosk's schema."""
    r = read_report(verified.report)
    g = _Graph(r.report_id)
    case = r.case

    authoriser = g.person(case.authorised_by)
    authorization = g.add(
        "Authorization",
        "authorization",
        "case-investigation:Authorization",
        {
            "case-investigation:authorizationType": case.legal_basis.value,
            "case-investigation:authorizationIdentifier": case.legal_ref,
        },
    )
    authorise = g.add(
        "InvestigativeAction",
        "authorisation",
        "case-investigation:InvestigativeAction",
        {
            "uco-core:name": "authorisation of the triage",
            "uco-action:performer": _ref(authoriser),
            "uco-action:result": [_ref(authorization)],
        },
    )
    officer = g.person(case.officer)
    tool = _configured_tool(g, r)
    image, segments = _image(g, r.image)

    results = _findings(g, r.findings, image)
    rec = r.recommendation
    results[:0] = [
        g.result(
            "recommendation",
            "triage recommendation",
            list(rec.reasons),
            image,
            [rec.result.value],
        ),
        g.result("coverage", "coverage", _coverage_statements(r), image, []),
    ]

    provenance, envelope = _signed_report(g, verified, r)
    exhibit: Node = {
        "uco-core:name": f"exhibit {case.exhibit_ref}",
        "case-investigation:exhibitNumber": case.exhibit_ref,
        "uco-core:object": [_ref(image), *[_ref(s) for s in segments]],
    }
    if case.device_description:
        exhibit["uco-core:description"] = case.device_description
    exhibit_record = g.add(
        "ProvenanceRecord", "exhibit", "case-investigation:ProvenanceRecord", exhibit
    )

    outcome = r.outcome
    description = f"triage of exhibit {case.exhibit_ref}: the scan was {outcome.status.value}"
    if outcome.reason:
        description += f" ({outcome.reason})"
    triage = g.add(
        "InvestigativeAction",
        "triage",
        ["case-investigation:InvestigativeAction", "uco-analysis:Analysis"],
        {
            "uco-core:name": "kiosk triage",
            "uco-core:description": f"{description}; recommendation: {rec.result.value}",
            "uco-action:startTime": _time(r.started),
            "uco-action:endTime": _time(r.finished),
            "uco-action:actionStatus": _ACTION_STATUS[outcome.status],
            "uco-action:performer": _ref(officer),
            "uco-action:instrument": [_ref(tool)],
            "uco-action:object": [_ref(image)],
            "uco-action:result": [_ref(provenance), *[_ref(n) for n in results]],
            "case-investigation:wasInformedBy": _ref(authorise),
        },
    )
    reviews = [
        g.add(
            "InvestigativeAction",
            f"review/{k}",
            "case-investigation:InvestigativeAction",
            {
                "uco-core:name": "supervisor review",
                "uco-core:description": (
                    f"decision {rv.decision}: {rv.reason} (signed review {rv.path.name}, "
                    f"key id {rv.keyid})"
                ),
                "uco-action:endTime": _time(rv.time),
                "uco-action:actionStatus": "Complete/Finish",
                "uco-action:performer": _ref(g.person(rv.reviewer)),
                "uco-action:object": [_ref(envelope)],
            },
        )
        for k, rv in enumerate(verified.reviews)
    ]
    g.add(
        "Investigation",
        "investigation",
        "case-investigation:Investigation",
        {
            "uco-core:name": case.case_ref,
            "case-investigation:investigationForm": "case",
            "case-investigation:relevantAuthorization": _ref(authorization),
            "uco-core:object": [
                _ref(n) for n in (authorise, triage, *reviews, exhibit_record, provenance)
            ],
        },
    )
    return {"@context": CONTEXT, "@graph": list(g.nodes.values())}


def case_json(bundle: dict[str, Any]) -> bytes:
    """The bundle's bytes: sorted keys and ASCII-only escapes, so the same report always gives
    the same bytes and any file name — control characters, lone surrogates — survives."""
    return (json.dumps(bundle, sort_keys=True, indent=2, ensure_ascii=True) + "\n").encode("ascii")
