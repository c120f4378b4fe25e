"""What the kiosk screens need from the core, as plain values: no Textual here.

Each function is one step an officer or supervisor takes — read the kiosk's packs and key, list
the evidence folder, preflight an image, check the case form, list and verify reports — so it
can be tested without a terminal, and the screens stay thin. Everything that came from an image
or a report file is passed through ``visible()`` before a screen shows it.
"""

from __future__ import annotations

import dataclasses
import json
import socket
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from kiosk.canonical import parse_time_text
from kiosk.config import DEFAULT_WORKERS, load_config
from kiosk.engine.scope import Scope, hash_categories, rule_categories
from kiosk.errors import ImageError, KioskError, TimeTextError
from kiosk.evidence.keys import VolumeKeys
from kiosk.evidence.logical.common import PASSWORD_NEEDED
from kiosk.evidence.resolve import resolve
from kiosk.evidence.segments import continuation_of
from kiosk.evidence.walker import Walker
from kiosk.hashsets.index import HashIndex
from kiosk.model import (
    CaseRecord,
    DeviceInfo,
    LegalBasis,
    Progress,
    Recommendation,
    VolumeRecord,
)
from kiosk.packs.engines import DEFAULT_ENGINE, check_engine
from kiosk.packs.load import compile_packs
from kiosk.reports.attestation import REPORT, VerifiedReport, verify_report_dir
from kiosk.reports.decode import read_report
from kiosk.reports.folder import MAX_REPORT_BYTES, read_file
from kiosk.reports.model import TriageReport
from kiosk.reports.summary import list_result
from kiosk.reports.text import RECOMMENDATION_TITLES
from kiosk.trust.signing import Signer, TrustStore, load_signer
from kiosk.tui.authority import CategoryChoice, hash_choices, rule_choices

LEGAL_BASIS_LABELS = {
    LegalBasis.WARRANT: "warrant",
    LegalBasis.STATUTORY: "statutory power",
    LegalBasis.CONSENT: "consent",
    LegalBasis.OTHER: "other",
}
DECISION_LABELS = {
    "submit": "submit: send the exhibit for full examination",
    "return": "return: no examination requested",
    "more_info": "more info: ask the officer for more information",
}
# First segments the evidence list offers; continuation segments (.E02, .002, .ab) are found
# from these by the core, so listing them too would only invite the wrong choice.
IMAGE_SUFFIXES = (
    *(".dd", ".raw", ".img", ".bin", ".iso", ".e01", ".000", ".001", ".aa", ".aaa"),
    *(".vmdk", ".vhd", ".vhdx", ".qcow", ".qcow2"),  # offered by name, read by signature
    # logical evidence: phone extractions and backups (folders are offered too)
    *(".zip", ".tar", ".tgz", ".gz", ".bz2", ".tbz2", ".xz", ".txz", ".ab"),
)
MAX_FIELD = 120


def human_bytes(n: int) -> str:
    """Sizes as people read them (decimal units, like disk labels)."""
    size = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def duration(seconds: float) -> str:
    """``h:mm:ss`` or ``m:ss``."""
    s = max(0, int(seconds))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def progress_text(p: Progress | None, wall: float) -> str:
    """The scan screen's numbers line. While the walk is still finding files the totals are
    what it has found so far: no ETA against them (it would run backwards)."""
    if p is None:
        return f"Preparing: opening the image, counting files · elapsed {duration(wall)}"
    elapsed = max(p.elapsed_s, wall)
    rate = p.bytes_done / p.elapsed_s if p.elapsed_s > 0 else 0.0
    frac = p.fraction
    if frac is None:
        return (
            f"Files {p.files_done} of {p.files_total} found so far (still counting) · "
            f"{human_bytes(p.bytes_done)} of {human_bytes(p.bytes_total)} · "
            f"{human_bytes(int(rate))}/s · elapsed {duration(elapsed)} · ETA after the count"
        )
    eta = duration(p.elapsed_s / frac - p.elapsed_s) if frac > 0 else "unknown"
    return (
        f"Files {p.files_done}/{p.files_total} · "
        f"{human_bytes(p.bytes_done)}/{human_bytes(p.bytes_total)} · "
        f"{human_bytes(int(rate))}/s · elapsed {duration(elapsed)} · ETA {eta}"
    )


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True, slots=True)
class Settings:
    """Where this kiosk keeps things; from ``kiosk tui`` options, see ``kiosk/tui/__init__``."""

    evidence_dir: Path
    reports_dir: Path
    rules_dir: Path
    hashsets_dir: Path
    home: Path
    workers: int = DEFAULT_WORKERS
    kiosk_id: str | None = None  # None: host name and the first 8 characters of the key id


@dataclass(frozen=True, slots=True)
class ItemStatus:
    """One pack or set line of the home screen: what it is, and whether it may be used."""

    label: str
    ok: bool
    detail: str


@dataclass(slots=True)
class KioskState:
    """Everything the home screen shows, loaded once per visit."""

    kiosk_id: str
    signer: Signer | None
    key_problem: str
    trust: TrustStore | None
    trust_problem: str
    allow_self_authorisation: bool
    packs: list[ItemStatus] = field(default_factory=list)
    sets: list[ItemStatus] = field(default_factory=list)
    rule_categories: list[str] = field(default_factory=list)
    hash_categories: list[str] = field(default_factory=list)
    categories: list[CategoryChoice] = field(default_factory=list)  # the form's choices, labelled
    problems: list[str] = field(default_factory=list)
    yara_engine: str = DEFAULT_ENGINE  # config.toml's yara_engine, else the default

    @property
    def can_triage(self) -> bool:
        """A triage needs every pack and set accepted, a signing key and a readable policy."""
        return self.signer is not None and not self.problems


def load_state(settings: Settings) -> KioskState:
    """Read the key, trust store, policy, rule packs and hash sets; every refusal is kept."""
    signer: Signer | None = None
    key_problem = trust_problem = ""
    try:
        signer = load_signer(settings.home / "keys" / "kiosk.key")
    except KioskError as e:
        key_problem = str(e)
    trust: TrustStore | None = None
    try:
        trust = TrustStore.load(settings.home / "trust.json")
    except KioskError as e:
        trust_problem = str(e)
    kiosk_id = settings.kiosk_id or (
        f"{socket.gethostname()}-{signer.keyid[:8]}" if signer else socket.gethostname()
    )
    state = KioskState(kiosk_id, signer, key_problem, trust, trust_problem, False)
    try:
        config = load_config(settings.home)
        state.allow_self_authorisation = config.allow_self_authorisation
        state.yara_engine = check_engine(config.yara_engine or DEFAULT_ENGINE)
    except KioskError as e:
        state.problems.append(str(e))
    try:
        rules = compile_packs(settings.rules_dir, yara_engine=state.yara_engine)
    except KioskError as e:
        state.packs.append(ItemStatus(f"rule packs in {settings.rules_dir}", False, str(e)))
        state.problems.append(str(e))
    else:
        for p in rules.packs:
            cats = sorted({m.category for (pack, _), m in rules.meta.items() if pack == p.name})
            state.packs.append(
                ItemStatus(
                    f"{p.name} {p.version}",
                    True,
                    f"{p.rule_count} rules"
                    + (f", {len(p.quarantined)} quarantined" if p.imported else "")
                    + f"; categories: {', '.join(cats)}",
                )
            )
        state.rule_categories = rule_categories(rules)
        state.categories += rule_choices(rules)
    try:
        index = HashIndex.load(settings.hashsets_dir)  # refuses unsigned or untrusted sets
    except KioskError as e:
        state.sets.append(ItemStatus(f"hash sets in {settings.hashsets_dir}", False, str(e)))
        state.problems.append(str(e))
    else:
        with index:
            for s in index.sets:
                state.sets.append(
                    ItemStatus(
                        f"{s.name} {s.version}",
                        True,
                        f"{s.disposition.replace('_', '-')}, {s.category}, {s.count} {s.algorithm}",
                    )
                )
            state.hash_categories = hash_categories(index)
            state.categories += hash_choices(index)
    return state


# --------------------------------------------------------------------------- the case form

CASE_FIELDS = {
    "case_ref": "Case reference",
    "exhibit_ref": "Exhibit reference",
    "officer": "Your officer ID",
    "authorised_by": "Authorising officer",
    "legal_basis": "Legal basis",
    "legal_ref": "Legal basis reference",
    "device": "Device description",
}
REQUIRED = ("case_ref", "exhibit_ref", "officer", "authorised_by", "legal_ref")


def check_field(name: str, value: str) -> str:
    """The message for one text field of the case form, or "" when it is acceptable."""
    text = value.strip()
    if name in REQUIRED and not text:
        return f"{CASE_FIELDS[name]} is required."
    if len(text) > MAX_FIELD:
        return f"{CASE_FIELDS[name]} is too long ({len(text)} characters; at most {MAX_FIELD})."
    if any(not ch.isprintable() for ch in text):
        return f"{CASE_FIELDS[name]} contains a control character."
    return ""


def check_case_form(
    values: dict[str, str],
    legal_basis: LegalBasis | None,
    rule_cats: list[str],
    hash_cats: list[str],
    allow_self_authorisation: bool,
) -> dict[str, str]:
    """Every problem with the form, by field name ("scope" for the categories); empty if none."""
    errors = {n: m for n in CASE_FIELDS if n != "legal_basis" if (m := check_field(n, values[n]))}
    if legal_basis is None:
        errors["legal_basis"] = "Choose the legal basis."
    same = values["officer"].strip().casefold() == values["authorised_by"].strip().casefold()
    if same and values["officer"].strip() and not allow_self_authorisation:
        errors["authorised_by"] = "The authorising officer must be someone other than you."
    if not rule_cats and not hash_cats:
        errors["scope"] = "Tick at least one category the authority covers."
    return errors


def case_from_form(values: dict[str, str], legal_basis: LegalBasis) -> CaseRecord:
    return CaseRecord(
        case_ref=values["case_ref"].strip(),
        exhibit_ref=values["exhibit_ref"].strip(),
        officer=values["officer"].strip(),
        authorised_by=values["authorised_by"].strip(),
        legal_basis=legal_basis,
        legal_ref=values["legal_ref"].strip(),
        device_description=values["device"].strip(),
    )


def scope_from_form(rule_cats: list[str], hash_cats: list[str]) -> Scope:
    return Scope(frozenset(rule_cats), frozenset(hash_cats))


# --------------------------------------------------------------------------- evidence


@dataclass(frozen=True, slots=True)
class EvidenceItem:
    """One image offered in the evidence folder; ``problem`` says why it cannot be chosen."""

    path: Path
    format: str
    size: int
    segments: int
    problem: str = ""


def continuation_problem(path: Path) -> str:
    """Why ``path`` cannot be opened on its own when it continues a split or EWF image; or "".

    Opened alone, ``split.002`` looks like random bytes ("possibly encrypted") and ``ewf.E02``
    like nothing at all: the officer needs the first segment's name, not those symptoms.
    """
    first = continuation_of(path)
    if first is None:
        return ""
    if first.is_file():
        return (
            f"{path.name} is a continuation segment: choose {first.name}, the first segment; "
            "the others are found from it."
        )
    return (
        f"{path.name} looks like a continuation segment, but its first segment {first.name} is "
        f"not in {path.parent}: put every segment in one folder and choose the first."
    )


def describe_image(path: Path) -> EvidenceItem:
    """Format, total size and segment count of one image, from its first bytes only."""
    if problem := continuation_problem(path):  # a .001 beside a .000, both listed
        return EvidenceItem(path, "?", 0, 0, problem)
    try:
        ref = resolve([path])
    except KioskError as e:
        return EvidenceItem(path, "?", 0, 0, str(e))
    return EvidenceItem(path, ref.format, ref.size, len(ref.files))


def list_evidence(folder: Path) -> list[EvidenceItem]:
    """The images in the evidence folder, by name; other files are not offered."""
    if not folder.is_dir():
        return []
    return [
        describe_image(p)
        for p in sorted(folder.iterdir(), key=lambda p: p.name)
        if not p.name.startswith(".")
        and ((p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES) or _is_folder_evidence(p))
    ]


def _is_folder_evidence(p: Path) -> bool:
    """A folder in the evidence folder is offered as a logical copy (or a phone backup)."""
    return p.is_dir() and not p.is_symlink()


@dataclass(frozen=True, slots=True)
class Preflight:
    """What opening the image found, before any file is read."""

    path: Path
    format: str
    segments: tuple[str, ...]
    size: int
    media_check: str
    volumes: tuple[VolumeRecord, ...]
    device: DeviceInfo | None = None  # a phone backup's device details

    @property
    def needs_password(self) -> bool:
        """An encrypted backup opened without its password: the officer is asked for it."""
        return any(v.reason == PASSWORD_NEEDED for v in self.volumes)

    @property
    def examinable(self) -> int:
        return sum(1 for v in self.volumes if v.examined)


def preflight(
    path: Path, secret: bytes | None = None, keys: VolumeKeys | None = None
) -> Preflight:
    """Open the image read-only and list its volumes; raises ``ImageError`` like a scan would.

    The partition tables and filesystems are parsed in the walker's child process, as in a
    scan: a hostile image that crashes the parser ends this preflight with a one-line error,
    never the app. Only the segments are found here (the first bytes and the folder). A
    continuation segment chosen alone is refused by its name before anything is opened.
    ``keys``: the passphrase the officer typed for an encrypted volume, if any (never shown).
    """
    if problem := continuation_problem(path):
        raise ImageError(problem)
    ref = dataclasses.replace(resolve([path], secret=secret), keys=keys or VolumeKeys())
    with Walker(ref, count=False) as walker:
        found = walker.survey()
    rec, volumes = found.media, found.volumes
    if rec.format == "ewf":
        stored = ", ".join(sorted(rec.ewf_stored_hashes)) or "none"
        media_check = (
            f"E01 stores {stored.upper()}: checked against the whole image during the scan"
            if rec.ewf_stored_hashes
            else "E01 stores no media hash: the scan records the SHA-256 it computes"
        )
    elif rec.format in ("folder", "itunes"):
        media_check = (
            "a folder: the scan records the SHA-256 of its manifest (every file's SHA-256, "
            "size and path)"
        )
    else:
        media_check = f"{rec.format} image: no stored hash; the scan records its SHA-256"
    return Preflight(
        path, rec.format, rec.segments, rec.size, media_check, tuple(volumes), rec.device
    )


# --------------------------------------------------------------------------- reports


@dataclass(frozen=True, slots=True)
class ReportEntry:
    """One line of the review list: verified and read, or invalid with the reason."""

    directory: Path
    finished: str
    case_ref: str
    exhibit_ref: str
    officer: str
    recommendation: str
    verified: VerifiedReport | None
    problem: str
    report: TriageReport | None = None  # the records of a verified report
    result: str = ""  # the list's Result: the title, a stopped run, matches outside the scope

    @property
    def reviews(self) -> int:
        return len(self.verified.reviews) if self.verified else 0


class ReviewFilter(StrEnum):
    """Which reports the review list shows (the case filter applies on top of any of these)."""

    ALL = "all"
    UNREVIEWED = "unreviewed"
    SUBMIT = "submit"
    INCONCLUSIVE = "inconclusive"


def shown_in_list(entry: ReportEntry, kind: ReviewFilter, case: str = "") -> bool:
    """Whether the review list shows ``entry`` under a filter and a case text ("" for any case).

    An INVALID report stays in every status filter: what it claims (its result, whether it was
    reviewed) cannot be trusted, and a supervisor must see that a report failed to verify. The
    case filter matches the case reference as shown, case-insensitively, anywhere in it.
    """
    if case and case.strip().casefold() not in entry.case_ref.casefold():
        return False
    if entry.report is None or kind is ReviewFilter.ALL:
        return True
    if kind is ReviewFilter.UNREVIEWED:
        return entry.reviews == 0
    wanted = Recommendation.SUBMIT if kind is ReviewFilter.SUBMIT else Recommendation.INCONCLUSIVE
    return entry.report.recommendation.result is wanted


def _unverified(directory: Path) -> dict[str, Any]:
    """The report as it lies on disk, only to label an invalid entry; never trusted."""
    try:  # a regular file within the size limit: a planted FIFO or /dev/zero must not hang us
        data = json.loads(read_file(directory / REPORT, REPORT, MAX_REPORT_BYTES))
    except (KioskError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _text(obj: object, *keys: str) -> str:
    for k in keys:
        obj = obj.get(k) if isinstance(obj, dict) else None
    return str(obj) if obj is not None else "?"


def _title(result: str) -> str:
    try:
        return RECOMMENDATION_TITLES[Recommendation(result)]
    except ValueError:
        return "?"


def short_time(text: str) -> str:
    """``2026-11-27T12:00:00.000000Z`` as ``2026-11-27 12:00`` (UTC)."""
    try:
        t = parse_time_text(text, naive_is_utc=True)
    except TimeTextError:
        return text
    return t.strftime("%Y-%m-%d %H:%M")


def check_report(
    directory: Path, trust: TrustStore | None, audit: Path | None = None
) -> ReportEntry:
    """Verify and read one report directory; an invalid or unreadable one is still listed, with
    why (labelled from its unverified file, which is never otherwise trusted). ``audit``: this
    kiosk's log, against which the reviews it recorded are checked."""
    problem = ""
    if trust is None:
        problem = "no trust store: reports cannot be verified on this kiosk"
    else:
        try:
            verified = verify_report_dir(directory, trust, audit=audit)
            report = read_report(verified.report)
        except KioskError as e:
            problem = str(e)
        else:
            return ReportEntry(
                directory,
                short_time(report.finished),
                report.case.case_ref,
                report.case.exhibit_ref,
                report.case.officer,
                RECOMMENDATION_TITLES[report.recommendation.result],
                verified,
                problem,
                report,
                list_result(report),
            )
    r = _unverified(directory)
    title = _title(_text(r, "recommendation", "result"))
    outcome = _text(r, "outcome", "status")
    return ReportEntry(
        directory,
        short_time(_text(r, "finished")),
        _text(r, "case", "case_ref"),
        _text(r, "case", "exhibit_ref"),
        _text(r, "case", "officer"),
        title,
        None,
        problem,
        result=title if outcome in ("complete", "?") else f"{title} · {outcome.upper()}",
    )


def report_dirs(reports_dir: Path) -> list[Path]:
    """Report directories, newest first (hidden partial directories are never listed)."""
    if not reports_dir.is_dir():
        return []
    dirs = [p for p in reports_dir.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return sorted(dirs, key=lambda p: (_text(_unverified(p), "finished"), p.name), reverse=True)
