"""Signed reports and reviews: what a supervisor, prosecutor or defence expert checks offline.

A report directory holds ``report.json`` (the canonical report, for people and ``jq``),
``report.dsse.json`` (a DSSE envelope whose payload is an in-toto Statement v1: subject = the
image name and SHA-256, predicate = exactly the bytes of report.json), optionally ``files.jsonl``
(its SHA-256 is inside the report), and ``reviews/NNN.dsse.json``: supervisors' signed decisions,
each bound to the SHA-256 of the report envelope. The report is never edited after signing.

Who may sign what, and when, is one policy: the report's key must be trusted for signing reports
and each review's key for reviewing (``kiosk.trust.signing``, purposes); the signing times (the
report's ``finished``, a review's ``time``) are judged by ``kiosk.trust.policy.signature_problem``
— not in the future, within the key's validity, and, once the key is revoked, only if anchored:
a review signed by another trusted key before the revocation proves the report existed then.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kiosk.canonical import canonical, parse_time_text, utc_text
from kiosk.errors import AuditError, SigningError, TimeTextError, VerificationError
from kiosk.reports.folder import (
    MAX_REPORT_BYTES,
    MAX_REVIEW_BYTES,
    count_reviews,
    file_sha256,
    open_reviews_folder,
    read_file,
    unsigned_files,
    write_new_in,
)
from kiosk.reports.text import visible
from kiosk.trust.audit import events_of
from kiosk.trust.policy import signature_problem
from kiosk.trust.signing import (
    INTOTO_STATEMENT,
    REPORT_SIGNING,
    REVIEWING,
    Signer,
    TrustStore,
    verify_envelope,
)

REPORT_PREDICATE = "urn:kiosk:predicate:triage-report:v1"
REVIEW_PREDICATE = "urn:kiosk:predicate:triage-review:v1"
DECISIONS = ("submit", "return", "more_info")
ENVELOPE = "report.dsse.json"
REPORT = "report.json"
INVENTORY = "files.jsonl"


def report_statement(report: dict[str, Any]) -> dict[str, Any]:
    """The in-toto statement for a report: the image is the subject."""
    sha = report["image"].get("sha256")
    digest = {"sha256": sha} if sha else {"kiosk-media-not-hashed": report["outcome"]["status"]}
    return {
        "_type": INTOTO_STATEMENT,
        "subject": [{"name": report["image"]["name"], "digest": digest}],
        "predicateType": REPORT_PREDICATE,
        "predicate": report,
    }


def sign_report(report: dict[str, Any], signer: Signer) -> tuple[bytes, bytes]:
    """(report.json bytes, report.dsse.json bytes) for a complete report."""
    envelope = signer.envelope(canonical(report_statement(report)))
    return canonical(report), canonical(envelope)


def _parse_time(text: object, what: str) -> datetime:
    if not isinstance(text, str):
        raise VerificationError(f"{what}: no signing time in the payload")
    try:
        return parse_time_text(text)
    except TimeTextError as e:
        raise VerificationError(f"{what}: the signing time is not a time") from e


@dataclass(frozen=True, slots=True)
class VerifiedReview:
    path: Path
    keyid: str
    decision: str
    reviewer: str
    reason: str
    time: str
    sha256: str  # of the review file, as the audit log records it


@dataclass(frozen=True, slots=True)
class VerifiedReport:
    """A report whose envelope, payload, report.json and inventory all agree, by a trusted key."""

    directory: Path
    report: dict[str, Any]
    keyid: str
    signed_at: str
    envelope_sha256: str
    reviews: tuple[VerifiedReview, ...]


_INVISIBLE = re.compile(r"[\s\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]+")


def same_person(a: str, b: str) -> bool:
    """Whether two ids name the same person once written alike: NFKC (full-width and other
    compatibility forms), case folded, and spaces and invisible characters (zero-width, soft
    hyphen, direction marks) removed: "PC\u200b-1234" and a full-width "pc-1234" are PC-1234."""

    def norm(text: str) -> str:
        return _INVISIBLE.sub("", unicodedata.normalize("NFKC", text).casefold())

    return norm(a) == norm(b)


def _read(path: Path, what: str, limit: int = MAX_REPORT_BYTES) -> bytes:
    """A regular file of the folder, within a size limit: never a link, device or pipe."""
    return read_file(path, what, limit)


def verify_report_dir(
    directory: Path,
    trust: TrustStore,
    now: datetime | None = None,
    audit: Path | None = None,
) -> VerifiedReport:
    """Verify a report directory completely; raises VerificationError with the exact reason.

    ``now`` (default: the clock) is when the verdict is given: revocations and the clock-skew
    allowance are judged against it. ``audit``: this kiosk's audit log, if it has one; a review
    it recorded for this report must still be in the folder, unchanged (deleting ``reviews/``
    would otherwise quietly undo a supervisor's decision).
    """
    now = now or datetime.now(UTC)
    if not directory.is_dir():
        raise VerificationError(f"{directory} is not a report directory")
    if (directory / "reviews").is_symlink():
        raise VerificationError("reviews is a symbolic link, not the report's own folder")
    env_raw = _read(directory / ENVELOPE, ENVELOPE)
    key, payload = verify_envelope(env_raw, trust, ENVELOPE, purpose=REPORT_SIGNING)
    try:
        statement = json.loads(payload)
    except ValueError as e:
        raise VerificationError(f"{ENVELOPE}: the signed payload is not JSON") from e
    if (
        not isinstance(statement, dict)
        or statement.get("_type") != INTOTO_STATEMENT
        or statement.get("predicateType") != REPORT_PREDICATE
        or not isinstance(statement.get("predicate"), dict)
    ):
        raise VerificationError(f"{ENVELOPE}: the signed payload is not a kiosk triage report")
    report: dict[str, Any] = statement["predicate"]
    signed_at = report.get("finished")
    signed_time = _parse_time(signed_at, ENVELOPE)
    if _read(directory / REPORT, REPORT) != canonical(report):
        raise VerificationError(f"{REPORT} differs from the signed report (tampered or replaced)")
    _check_folder_name(directory, report.get("report_id"))
    subject = statement.get("subject")
    sha = report.get("image", {}).get("sha256")
    if sha and (not isinstance(subject, list) or subject[0].get("digest", {}).get("sha256") != sha):
        raise VerificationError(f"{ENVELOPE}: the statement's subject is not the report's image")
    inv = report.get("inventory")
    if isinstance(inv, dict):
        got = file_sha256(directory / INVENTORY, INVENTORY)
        if got != inv.get("sha256"):
            raise VerificationError(
                f"{INVENTORY} differs from the digest in the signed report (tampered)"
            )
    env_sha = hashlib.sha256(env_raw).hexdigest()
    reviews = tuple(
        _verify_review(
            p, trust, env_sha, now, str(report.get("case", {}).get("officer", "")), key.keyid
        )
        for p in sorted((directory / "reviews").glob("*.dsse.json"))
    )
    anchors = [_parse_time(r.time, r.path.name) for r in reviews if r.keyid != key.keyid]
    problem = signature_problem(
        key,
        signed_time,
        now,
        proven_before=min(anchors, default=None),
        claimed_by="the report",
    )
    if problem:
        raise VerificationError(f"{ENVELOPE}: {problem}")
    if audit is not None:
        _check_recorded_reviews(audit, env_sha, reviews)
    return VerifiedReport(directory, report, key.keyid, str(signed_at), env_sha, reviews)


def _check_recorded_reviews(
    audit: Path, envelope_sha256: str, reviews: tuple[VerifiedReview, ...]
) -> None:
    """Every review the audit log saw written for this report (by its envelope's digest, what a
    review is bound to) is still there, byte for byte."""
    present = {r.path.name: r.sha256 for r in reviews}
    try:
        recorded = events_of(audit, "review_recorded", report_sha256=envelope_sha256)
    except AuditError as e:
        raise VerificationError(f"cannot check the reviews against the audit log: {e}") from e
    for event in recorded:
        name, sha = event.get("review"), event.get("sha256")
        if not isinstance(name, str) or not isinstance(sha, str):
            continue  # recorded before reviews were named in the log: nothing to compare
        if name not in present:
            raise VerificationError(
                f"review {visible(name)} recorded in this kiosk's audit log is missing from the "
                "report folder (deleted)"
            )
        if present[name] != sha:
            raise VerificationError(
                f"review {visible(name)} differs from the one this kiosk's audit log recorded "
                "(replaced)"
            )


def uncovered_files(v: VerifiedReport) -> tuple[str, ...]:
    """Files of a verified report's folder that no signature covers (a planted page, a stray
    note): every view marks them unauthenticated rather than leave them to be taken as part of
    the report."""
    covered = {ENVELOPE, REPORT, *(f"reviews/{r.path.name}" for r in v.reviews)}
    if isinstance(v.report.get("inventory"), dict):
        covered.add(INVENTORY)
    return unsigned_files(v.directory, covered)


def _check_folder_name(directory: Path, report_id: object) -> None:
    """A report lives in a folder named by its id: a signed report renamed, or copied over
    another report's folder, would be read as that other report by whoever goes by the name."""
    name = directory.resolve().name
    if report_id != name:
        raise VerificationError(
            f"the folder is named {visible(name)} but holds the signed report "
            f"{visible(str(report_id))} (renamed or moved)"
        )


def _verify_review(
    path: Path, trust: TrustStore, env_sha: str, now: datetime, officer: str, report_key: str
) -> VerifiedReview:
    what = f"review {path.name}"
    raw = _read(path, what, MAX_REVIEW_BYTES)
    key, payload = verify_envelope(raw, trust, what, purpose=REVIEWING)
    try:
        st = json.loads(payload)
        pred = st["predicate"]
        subject_sha = st["subject"][0]["digest"]["sha256"]
    except (ValueError, KeyError, IndexError, TypeError) as e:
        raise VerificationError(f"{what}: the signed payload is not a kiosk review") from e
    if st.get("predicateType") != REVIEW_PREDICATE or not isinstance(pred, dict):
        raise VerificationError(f"{what}: the signed payload is not a kiosk review")
    if subject_sha != env_sha:
        raise VerificationError(f"{what}: it reviews a different report envelope")
    problem = signature_problem(
        key, _parse_time(pred.get("time"), what), now, claimed_by="the review"
    )
    if problem:
        raise VerificationError(f"{what}: {problem}")
    # the reviewer is whom the trust store binds to the key, not what the payload says
    reviewer = key.label
    if key.keyid == report_key:
        raise VerificationError(f"{what}: signed by the key that signed the report")
    if not same_person(str(pred.get("reviewer", "")), reviewer):
        raise VerificationError(
            f"{what}: it names the reviewer {visible(str(pred.get('reviewer')))} but is signed "
            f"by the key of {visible(reviewer)}"
        )
    if same_person(reviewer, officer):  # signed elsewhere than write_review
        raise VerificationError(f"{what}: the reviewer is the officer who ran the scan")
    return VerifiedReview(
        path,
        key.keyid,
        str(pred.get("decision")),
        reviewer,
        str(pred.get("reason")),
        str(pred.get("time")),
        hashlib.sha256(raw).hexdigest(),
    )


@dataclass(frozen=True, slots=True)
class WrittenReview:
    """What the audit log records of a review just written: where, by whom, and its digest."""

    path: Path
    reviewer: str
    sha256: str


def reviewer_of(signer: Signer, trust: TrustStore) -> str:
    """The name a review by ``signer`` carries: the label this kiosk's trust store binds to the
    key for reviewing, or SigningError saying how to have it trusted."""
    key = trust.keys.get(signer.keyid)
    if key is None or REVIEWING not in key.purposes:
        raise SigningError(
            f"the key {signer.keyid[:16]}… is not trusted here for reviewing reports: have its "
            "public key trusted with 'kiosk keys trust KEY.pub --purpose review --label NAME'"
        )
    return key.label


def write_review(
    verified: VerifiedReport,
    decision: str,
    reason: str,
    signer: Signer,
    when: datetime,
    trust: TrustStore,
) -> WrittenReview:
    """Sign a supervisor's decision about a verified report; never overwrites anything.

    The reviewer is the person ``trust`` binds to ``signer``'s key (``reviewer_of``): a name
    typed at review time would let anyone sign as anyone.
    """
    if decision not in DECISIONS:
        raise VerificationError(f"decision must be one of {', '.join(DECISIONS)}")
    if not reason.strip():
        raise VerificationError("a review needs a reason")
    reviewer = reviewer_of(signer, trust)
    if signer.keyid == verified.keyid:
        raise VerificationError("the key that signed the report cannot review it")
    officer = str(verified.report.get("case", {}).get("officer", ""))
    if same_person(reviewer, officer):
        raise VerificationError(
            "the reviewer must be someone other than the officer who ran the scan"
        )
    statement = {
        "_type": INTOTO_STATEMENT,
        "subject": [{"name": ENVELOPE, "digest": {"sha256": verified.envelope_sha256}}],
        "predicateType": REVIEW_PREDICATE,
        "predicate": {
            "report_id": verified.report.get("report_id"),
            "decision": decision,
            "reviewer": reviewer,
            "reason": reason,
            "time": utc_text(when),
        },
    }
    data = canonical(signer.envelope(canonical(statement)))
    folder_fd = open_reviews_folder(verified.directory)
    try:
        n = count_reviews(folder_fd) + 1
        while not write_new_in(folder_fd, f"{n:03d}.dsse.json", data):
            n += 1
    except OSError as e:
        raise VerificationError(f"cannot write the review: {e.strerror or e}") from e
    finally:
        os.close(folder_fd)
    path = verified.directory / "reviews" / f"{n:03d}.dsse.json"
    return WrittenReview(path, reviewer, hashlib.sha256(data).hexdigest())
