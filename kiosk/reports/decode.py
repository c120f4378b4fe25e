"""A verified report's JSON back into the report records, or one clear line why not.

``read_report`` is strict both ways: a missing part, a wrongly typed value, a field this schema
does not have, or another schema id is refused with a ``ReportError`` that names the field, so
a report read and written again (``kiosk.reports.encode.report_json``) gives the same bytes and
no renderer ever meets a half-understood report. Older reports that lack a part are refused the
same way rather than guessed at.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Any, TypeVar

from kiosk.errors import ReportError
from kiosk.model import (
    CaseRecord,
    DeviceInfo,
    FileStatus,
    HashMatch,
    LegalBasis,
    Outcome,
    Recommendation,
    RuleMatch,
    VolumeRecord,
)
from kiosk.reports.model import (
    SCHEMA_VERSION,
    ArchiveNotExamined,
    AreaCoverage,
    AreaFinding,
    AreaNotExamined,
    AreasRecord,
    ByteCounts,
    ClusterRecord,
    Coverage,
    DirectoryNotExamined,
    Engines,
    EvidenceFileRecord,
    EwfCheck,
    FileCounts,
    FileNotExamined,
    FileRecord,
    HashSetRecord,
    ImageRecord,
    InventoryRecord,
    Match,
    MatchType,
    MemberCounts,
    NotExamined,
    NotExaminedKind,
    OutcomeRecord,
    OutOfScope,
    RecommendationRecord,
    RulePackRecord,
    ScopeRecord,
    SettingsRecord,
    ToolRecord,
    TriageReport,
    UnreachedFiles,
    YaraReach,
)
from kiosk.reports.text import visible
from kiosk.trust.audit import Checkpoint

_I_JSON_MAX = 2**53 - 1
E = TypeVar("E", bound=StrEnum)
T = TypeVar("T")


def _unfit(where: str, problem: str) -> ReportError:
    # ``where`` may hold a key of the report's own (a category, an unknown field): shown inert
    return ReportError(
        f"the report does not fit schema {SCHEMA_VERSION}: {visible(where)} {problem}"
    )


class _Obj:
    """One JSON object being read: a missing or wrongly typed field is named by its path, and
    ``done()`` refuses any field that was not read (a newer or foreign report)."""

    def __init__(self, value: object, where: str) -> None:
        if not isinstance(value, dict):
            raise _unfit(where, "is not an object")
        self._d: dict[str, Any] = value
        self._where = where
        self._read: set[str] = set()

    def at(self, key: str) -> str:
        return f"{self._where}.{key}"

    def get(self, key: str) -> Any:
        if key not in self._d:
            raise _unfit(self.at(key), "is missing")
        self._read.add(key)
        return self._d[key]

    def done(self, record: T) -> T:
        extra = sorted(set(self._d) - self._read)
        if extra:
            raise _unfit(self.at(extra[0]), "is not a field of this schema")
        return record

    def text(self, key: str) -> str:
        return _str(self.get(key), self.at(key))

    def opt_text(self, key: str) -> str | None:
        value = self.get(key)
        return None if value is None else _str(value, self.at(key))

    def integer(self, key: str) -> int:
        return _int(self.get(key), self.at(key))

    def has(self, key: str) -> bool:
        """Whether an optional field added within this schema is present."""
        return key in self._d

    def absent_or_integer(self, key: str) -> int | None:
        """An optional field added within this schema: absent in reports written before it."""
        return self.integer(key) if key in self._d else None

    def absent_or_obj(self, key: str) -> _Obj | None:
        """An optional object added within this schema: absent in reports written before it."""
        return self.obj(key) if key in self._d else None

    def absent_or_text(self, key: str) -> str | None:
        """An optional text added within this schema: absent when unused or written before it."""
        return self.text(key) if key in self._d else None

    def flag(self, key: str) -> bool:
        value = self.get(key)
        if not isinstance(value, bool):
            raise _unfit(self.at(key), "is not true or false")
        return value

    def opt_flag(self, key: str) -> bool | None:
        return None if self.get(key) is None else self.flag(key)

    def enum(self, key: str, cls: type[E]) -> E:
        value = self.text(key)
        try:
            return cls(value)
        except ValueError:
            raise _unfit(self.at(key), f"has an unknown value {value!r}") from None

    def obj(self, key: str) -> _Obj:
        return _Obj(self.get(key), self.at(key))

    def opt_obj(self, key: str) -> _Obj | None:
        return None if self.get(key) is None else self.obj(key)

    def items(self, key: str, read: Callable[[_Obj], T]) -> tuple[T, ...]:
        """A list of objects, each read by ``read``."""
        return tuple(read(_Obj(v, f"{self.at(key)}[{i}]")) for i, v in enumerate(self.array(key)))

    def absent_or_items(self, key: str, read: Callable[[_Obj], T]) -> tuple[T, ...]:
        """An optional list added within this schema: absent (and empty) in older reports."""
        return self.items(key, read) if key in self._d else ()

    def texts(self, key: str) -> tuple[str, ...]:
        return tuple(_str(v, f"{self.at(key)}[{i}]") for i, v in enumerate(self.array(key)))

    def array(self, key: str) -> list[Any]:
        value = self.get(key)
        if not isinstance(value, list):
            raise _unfit(self.at(key), "is not a list")
        return value

    def text_map(self, key: str) -> dict[str, str]:
        m = self.obj(key)
        return {k: _str(v, m.at(k)) for k, v in m._d.items()}

    def int_map(self, key: str) -> dict[str, int]:
        m = self.obj(key)
        return {k: _int(v, m.at(k)) for k, v in m._d.items()}


def _str(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise _unfit(where, "is not text")
    return value


def _int(value: object, where: str) -> int:
    """An integer, or the decimal string ``canonical()`` writes for one beyond I-JSON range."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            n = int(value)
        except ValueError:
            n = 0
        if abs(n) > _I_JSON_MAX and str(n) == value:
            return n
    raise _unfit(where, "is not an integer")


def read_report(data: object) -> TriageReport:
    """The records of a report's JSON (a ``VerifiedReport.report``); ``ReportError`` if it is
    not exactly this kiosk's schema."""
    if isinstance(data, dict) and data.get("schema") != SCHEMA_VERSION:
        raise ReportError(
            f"the report's schema {data.get('schema')!r} is not {SCHEMA_VERSION}: "
            "this kiosk cannot read it"
        )
    r = _Obj(data, "report")
    return r.done(
        TriageReport(
            schema=r.text("schema"),
            report_id=r.text("report_id"),
            tool=_tool(r.obj("tool")),
            case=_case(r.obj("case")),
            image=_image(r.obj("image")),
            rule_packs=r.items("rule_packs", _pack),
            hash_sets=r.items("hash_sets", _hashset),
            settings=_settings(r.obj("settings")),
            started=r.text("started"),
            finished=r.text("finished"),
            outcome=_outcome(r.obj("outcome")),
            coverage=_coverage(r.obj("coverage")),
            not_examined=r.items("not_examined", _not_examined),
            findings=r.items("findings", _file),
            findings_by_category=r.int_map("findings_by_category"),
            recommendation=_recommendation(r.obj("recommendation")),
            inventory=_inventory(r.opt_obj("inventory")),
            signing_key=r.text("signing_key"),
            audit_checkpoint=_checkpoint(r.opt_obj("audit_checkpoint")),
            areas=_areas(r.absent_or_obj("areas")),
        )
    )


_AREA_KINDS = ("unallocated", "slack", "outside_partitions")


def _area_kind(o: _Obj) -> str:
    kind = o.text("kind")
    if kind not in _AREA_KINDS:
        raise _unfit(o.at("kind"), f"has an unknown value {kind!r}")
    return kind


def _areas(o: _Obj | None) -> AreasRecord | None:
    if o is None:
        return None
    return o.done(
        AreasRecord(
            searched=o.flag("searched"),
            reason=o.text("reason"),
            window_rules=o.texts("window_rules"),
            window_bytes=o.integer("window_bytes"),
            overlap=o.integer("overlap"),
            coverage=o.items(
                "coverage",
                lambda c: c.done(
                    AreaCoverage(
                        _area_kind(c),
                        c.integer("volume"),
                        c.integer("offset"),
                        c.integer("length"),
                        c.integer("scanned"),
                    )
                ),
            ),
            findings=o.items("findings", _area_finding),
        )
    )


def _area_finding(o: _Obj) -> AreaFinding:
    m = _match(o.obj("match"))
    if not isinstance(m, RuleMatch):
        raise _unfit(o.at("match"), "is not a rule match")
    return o.done(
        AreaFinding(
            kind=_area_kind(o),
            volume=o.integer("volume"),
            offset=o.integer("offset"),
            length=o.integer("length"),
            file=o.opt_text("file"),
            match=m,
            offsets=tuple(
                _int(v, f"{o.at('offsets')}[{i}]") for i, v in enumerate(o.array("offsets"))
            ),
            count=o.integer("count"),
        )
    )


def _tool(o: _Obj) -> ToolRecord:
    e = o.obj("engines")
    engines = e.done(
        Engines(
            e.text("kiosk"),
            e.text("sleuthkit"),
            e.text("libyara"),
            e.text("libmagic"),
            e.absent_or_text("yara_engine"),
        )
    )
    return o.done(ToolRecord(o.text("name"), o.text("version"), engines))


def _case(o: _Obj) -> CaseRecord:
    basis = o.obj("legal_basis")
    legal_basis, legal_ref = basis.enum("type", LegalBasis), basis.text("reference")
    basis.done(None)
    return o.done(
        CaseRecord(
            case_ref=o.text("case_ref"),
            exhibit_ref=o.text("exhibit_ref"),
            officer=o.text("officer"),
            authorised_by=o.text("authorised_by"),
            legal_basis=legal_basis,
            legal_ref=legal_ref,
            device_description=o.text("device_description"),
        )
    )


def _device(o: _Obj | None) -> DeviceInfo | None:
    if o is None:
        return None
    return o.done(
        DeviceInfo(
            kind=o.text("kind"),
            name=o.text("name"),
            model=o.text("model"),
            os_version=o.text("os_version"),
            serial=o.text("serial"),
            imei=o.text("imei"),
        )
    )


def _image(o: _Obj) -> ImageRecord:
    ewf = o.opt_obj("ewf")
    device = _device(o.obj("device")) if o.has("device") else None  # added within schema 1
    return o.done(
        ImageRecord(
            name=o.text("name"),
            format=o.text("format"),
            segments=o.texts("segments"),
            size=o.integer("size"),
            sha256=o.opt_text("sha256"),
            hash_error=o.opt_text("hash_error"),
            ewf=None
            if ewf is None
            else ewf.done(
                EwfCheck(ewf.text_map("stored"), ewf.text_map("computed"), ewf.opt_flag("verified"))
            ),
            device=device,
            evidence_files=o.absent_or_items("evidence_files", _evidence_file),
        )
    )


def _evidence_file(o: _Obj) -> EvidenceFileRecord:
    return o.done(
        EvidenceFileRecord(name=o.text("name"), size=o.integer("size"), sha256=o.opt_text("sha256"))
    )


def _pack(o: _Obj) -> RulePackRecord:
    return o.done(
        RulePackRecord(
            name=o.text("name"),
            version=o.text("version"),
            digest=o.text("digest"),
            files=o.texts("files"),
            rules=o.integer("rules"),
            signed_by=o.opt_text("signed_by"),
            quarantined=o.absent_or_integer("quarantined"),
        )
    )


def _hashset(o: _Obj) -> HashSetRecord:
    return o.done(
        HashSetRecord(
            name=o.text("name"),
            version=o.text("version"),
            algorithm=o.text("algorithm"),
            disposition=o.text("disposition"),
            category=o.text("category"),
            count=o.integer("count"),
            digest=o.text("digest"),
            signed_by=o.opt_text("signed_by"),
            dev_override=o.texts("dev_override"),
        )
    )


def _settings(o: _Obj) -> SettingsRecord:
    return o.done(
        SettingsRecord(
            max_yara_bytes=o.integer("max_yara_bytes"),
            yara_timeout_s=o.integer("yara_timeout_s"),
            workers=o.integer("workers"),
            inventory=o.flag("inventory"),
            allow_self_authorisation=o.flag("allow_self_authorisation"),
            dev_mode=o.flag("dev_mode"),
            scope=_scope(o.obj("scope")),
            yara=o.flag("yara"),
            max_hashed_only_percent=o.absent_or_integer("max_hashed_only_percent"),
            unallocated=o.flag("unallocated") if "unallocated" in o._d else None,
            cluster=_cluster(o.absent_or_obj("cluster")),
        )
    )


def _cluster(o: _Obj | None) -> ClusterRecord | None:
    if o is None:
        return None
    return o.done(
        ClusterRecord(
            scheduler=o.text("scheduler"),
            transport=o.text("transport"),
            workers=o.integer("workers"),
            run_fields=o.texts("run_fields"),
        )
    )


def _scope(o: _Obj) -> ScopeRecord:
    return o.done(
        ScopeRecord(
            restricted=o.flag("restricted"),
            rule_categories=o.texts("rule_categories"),
            hash_categories=o.texts("hash_categories"),
            out_of_scope_matches=o.items(
                "out_of_scope_matches",
                lambda x: x.done(
                    OutOfScope(x.enum("type", MatchType), x.text("category"), x.integer("matches"))
                ),
            ),
        )
    )


def _outcome(o: _Obj) -> OutcomeRecord:
    return o.done(OutcomeRecord(o.enum("status", Outcome), o.opt_text("reason")))


def _coverage(o: _Obj) -> Coverage:
    f, b = o.obj("files"), o.obj("bytes")
    files = f.done(
        FileCounts(
            found=f.integer("found"),
            examined=f.integer("examined"),
            scanned=f.integer("scanned"),
            hashed_only=f.integer("hashed_only"),
            known_good=f.integer("known_good"),
            unrecoverable=f.integer("unrecoverable"),
            error=f.integer("error"),
            not_reached=f.integer("not_reached"),
        )
    )
    sizes = b.done(
        ByteCounts(
            b.integer("found"),
            b.integer("read"),
            b.integer("yara_scanned"),
            b.integer("hashed_only"),
        )
    )
    members = None
    if o.has("archive_members"):  # added within the schema: absent when there were none
        m = o.obj("archive_members")
        members = m.done(
            MemberCounts(
                found=m.integer("found"),
                scanned=m.integer("scanned"),
                hashed_only=m.integer("hashed_only"),
                known_good=m.integer("known_good"),
                error=m.integer("error"),
                bytes=m.integer("bytes"),
            )
        )
    return o.done(Coverage(o.items("volumes", _volume), files, sizes, members))


def _volume(o: _Obj) -> VolumeRecord:
    status = o.text("status")
    if status not in ("examined", "not_examined"):
        raise _unfit(o.at("status"), f"has an unknown value {status!r}")
    return o.done(
        VolumeRecord(
            index=o.integer("index"),
            offset=o.integer("offset"),
            length=o.integer("length"),
            description=o.text("description"),
            fs_type=o.opt_text("fs_type"),
            examined=status == "examined",
            reason=o.opt_text("reason") or "",
        )
    )


def _not_examined(o: _Obj) -> NotExamined:
    kind = o.enum("kind", NotExaminedKind)
    if kind is NotExaminedKind.UNREACHED:
        return o.done(UnreachedFiles(o.integer("count"), o.text("reason")))
    if kind is NotExaminedKind.DIRECTORY:
        return o.done(
            DirectoryNotExamined(
                o.integer("volume"), o.text("path"), o.integer("inode"), o.text("reason")
            )
        )
    if kind is NotExaminedKind.ARCHIVE:
        return o.done(
            ArchiveNotExamined(
                o.integer("volume"), o.text("path"), o.integer("inode"), o.text("reason")
            )
        )
    if kind in (NotExaminedKind.FILE, NotExaminedKind.DELETED_FILE, NotExaminedKind.ARCHIVE_MEMBER):
        return o.done(
            FileNotExamined(
                kind,
                o.integer("volume"),
                o.text("path"),
                o.integer("inode"),
                o.integer("size"),
                o.text("reason"),
            )
        )
    return o.done(
        AreaNotExamined(
            kind,
            o.integer("volume"),
            o.integer("offset"),
            o.integer("length"),
            o.text("description"),
            o.text("reason"),
        )
    )


def _file(o: _Obj) -> FileRecord:
    return o.done(
        FileRecord(
            volume=o.integer("volume"),
            fs_offset=o.integer("fs_offset"),
            fs_type=o.text("fs_type"),
            path=o.text("path"),
            inode=o.integer("inode"),
            allocated=o.flag("allocated"),
            size=o.integer("size"),
            md5=o.opt_text("md5"),
            sha1=o.opt_text("sha1"),
            sha256=o.opt_text("sha256"),
            mime=o.opt_text("mime"),
            status=o.enum("status", FileStatus),
            error=o.opt_text("error"),
            reason=o.opt_text("reason"),
            matches=o.items("matches", _match),
            stored_name=o.text("stored_name") if o.has("stored_name") else None,
            yara_reach=_reach(o.absent_or_obj("yara_reach")),
        )
    )


def _reach(o: _Obj | None) -> YaraReach | None:
    if o is None:
        return None
    return o.done(YaraReach(o.integer("whole_file_rules"), o.integer("window_rules")))


def _match(o: _Obj) -> Match:
    if o.enum("type", MatchType) is MatchType.YARA:
        return o.done(
            RuleMatch(
                pack=o.text("pack"),
                rule=o.text("rule"),
                category=o.text("category"),
                severity=o.text("severity"),
                description=o.text("description"),
            )
        )
    return o.done(
        HashMatch(
            hashset=o.text("set"),
            version=o.text("version"),
            algorithm=o.text("algorithm"),
            disposition=o.text("disposition"),
            category=o.text("category"),
            distance=o.absent_or_integer("distance"),  # perceptual (pdq) matches only
            threshold=o.absent_or_integer("threshold"),
        )
    )


def _recommendation(o: _Obj) -> RecommendationRecord:
    return o.done(RecommendationRecord(o.enum("result", Recommendation), o.texts("reasons")))


def _inventory(o: _Obj | None) -> InventoryRecord | None:
    if o is None:
        return None
    return o.done(InventoryRecord(o.text("file"), o.text("sha256"), o.integer("records")))


def _checkpoint(o: _Obj | None) -> Checkpoint | None:
    if o is None:
        return None
    return o.done(Checkpoint(o.integer("size"), o.text("head")))
