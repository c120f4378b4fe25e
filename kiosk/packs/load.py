"""YARA rule packs: verify, compile from source, digest, match.

A pack is a directory ``rules/<pack>/``: ``pack.toml`` (name, version, description, maintainer,
the externals and modules it needs, its categories), ``*.yar`` sources, ``tests/`` (samples, see
``kiosk.packs.selftest``) and ``manifest.dsse.json`` (its signature, see ``kiosk.packs.sign``).
What a valid pack is lives in ``kiosk.packs.check``; this module decides whether the kiosk may
use it.

All packs compile together (one namespace per pack) so each file is matched once. Compiled
rules reach worker processes as bytes in memory, from this compile or from the kiosk's own
HMAC-verified cache (``kiosk.packs.cache``) — never from a compiled file made elsewhere.
Every pack is validated with libyara, the reference; the set a scan matches with is compiled by
the chosen engine (``kiosk.packs.engines``: libyara or YARA-X), whose name and version the
report records.

Externals as LOKI/THOR define them (``filename``, ``filepath`` — the directory, ``extension`` —
lower case with the dot, ``filetype`` — a magic-byte label such as ``EXE``, ``owner``, ``md5``)
are declared at compile time and set per file, so public collections compile and run unchanged.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import rfc8785
import yara

from kiosk import __version__
from kiosk.canonical import utc_text_seconds
from kiosk.errors import KioskError, RulesError, VerificationError
from kiosk.packs.cache import CacheEntry, RulesCache
from kiosk.packs.check import (
    EXTERNALS,
    PackSource,
    RuleMeta,
    compile_pack_sources,
    find_packs,
    read_pack,
)
from kiosk.packs.engines import DEFAULT_ENGINE, LIBYARA, YARA_X, Engine, Stored, engine
from kiosk.packs.gate import Gate, build_gate
from kiosk.packs.imported import Quarantined
from kiosk.packs.match import (  # Matcher and the externals: re-exported, the old home
    PLACE_EXTERNALS,
    Matcher,
    engine_of_blob,
    externals_read,
    file_externals,
    file_type,
    uses_place_externals,
)
from kiosk.packs.quarantine import examine, pack_texts
from kiosk.packs.sign import (
    VerifiedManifest,
    pack_ledger,
    verify_manifest,
)
from kiosk.packs.windowsafe import WindowRules, analysis_id, window_rules
from kiosk.trust.policy import Used, VersionLedger
from kiosk.trust.signing import TrustStore, kiosk_home

if TYPE_CHECKING:  # kiosk.trust.audit imports kiosk.reports.report, which imports this module
    from kiosk.trust.audit import AuditLog

RULEPACK = "rulepack"  # the manifest kind and the rulepack-versions.json key prefix
__all__ = [
    "RULEPACK",
    "CompiledRules",
    "Matcher",
    "RuleMeta",
    "RulePack",
    "compile_packs",
    "engine_of_blob",
    "externals_read",
    "file_externals",
    "file_type",
    "uses_place_externals",
]


@dataclass(frozen=True, slots=True)
class RulePack:
    """One loaded pack as the report records it."""

    name: str
    version: str
    description: str
    path: Path
    files: tuple[str, ...]
    digest: str
    rule_count: int
    signed_by: str | None = None  # key id; None only when dev mode let an unverified pack in
    expires: str | None = None
    quarantined: tuple[Quarantined, ...] = ()  # imported packs: rules left out (by name, why)
    imported: bool = False  # someone else's rule text (kiosk.packs.imported)
    labels: tuple[tuple[str, str], ...] = ()  # category -> words for the scope picker


class CompiledRules:
    """All packs compiled together, with each rule's meta kept for the report."""

    def __init__(
        self,
        packs: tuple[RulePack, ...],
        rules: Any,
        meta: dict[tuple[str, str], RuleMeta],
        gate: Gate | None = None,
        engine: Engine | None = None,
        reduced: Any = None,
        per_file_externals: bool = True,
        externals: frozenset[str] | None = None,
        window: WindowRules | None = None,
    ) -> None:
        self.packs = packs
        self._rules = rules  # Stored when it came from the cache: loaded only if used here
        self.meta = meta
        self.gate = gate  # the reduced set for files no format-gated rule can match (rulegate)
        self.window = window  # the window-safe rules, for byte areas and big files' tails
        self.engine = engine or _engine_of(rules)
        # the gate's set as the engine compiled it (libyara: the gate's own)
        self._reduced = reduced if reduced is not None else (gate.reduced if gate else None)
        # whether any rule reads filename/filepath/extension: if not, a file's matches depend
        # on its content only, and identical content need not be matched twice
        self.per_file_externals = per_file_externals
        self.externals = frozenset(EXTERNALS) if externals is None else externals  # read by rules
        self.priority_areas: tuple[str, ...] = ()  # the packs' pack.toml, in pack order

    @property
    def rules(self) -> Any:
        """The engine's compiled set, to match with in this process."""
        return self._rules.load() if isinstance(self._rules, Stored) else self._rules

    def to_bytes(self) -> bytes:
        """The compiled rules, serialised in memory for worker processes."""
        return self.engine.serialise(self._rules)

    def gate_bytes(self) -> bytes | None:
        """The reduced set, serialised like ``to_bytes``; None when nothing could be gated."""
        if not self.gate or self._reduced is None:
            return None
        return self.engine.serialise(self._reduced)

    @property
    def gate_prefixes(self) -> tuple[bytes, ...]:
        """Heads that need the full set (``MZ``, ``\\x7fELF``); other files get the reduced."""
        return self.gate.prefixes if self.gate else ()

    @property
    def rule_count(self) -> int:
        return len(self.meta)


def _engine_of(rules: Any) -> Engine:
    return engine(LIBYARA if isinstance(rules, yara.Rules) else YARA_X)


# --------------------------------------------------------------------------- loading for a scan


def _audit(audit: AuditLog | None, kind: str, **fields: Any) -> None:
    if audit is not None:
        audit.append(kind, **fields)


def _cache_key(srcs: list[PackSource], eng: Engine) -> str:
    body = rfc8785.dumps(
        {
            "format": "kiosk-rules-cache/2",
            "libyara": yara.__version__,
            "engine": eng.label,
            "kiosk": __version__,
            "externals": sorted(EXTERNALS),
            "packs": [[s.name, s.digest] for s in srcs],
        }
    )
    return hashlib.sha256(body).hexdigest()


_Left = dict[str, tuple[Quarantined, ...]]  # pack -> its quarantined rules
_T = TypeVar("_T")


def _compile_checked(
    srcs: list[PackSource], home: Path, audit: AuditLog | None, use_cache: bool, eng: Engine
) -> tuple[Any, dict[tuple[str, str], RuleMeta], list[str], _Left, dict[str, str] | None]:
    """The engine's compiled set, each rule's meta, every rule identifier libyara found, the
    rules imported packs left out, and their namespace texts (None: the cache had it all)."""
    cache = RulesCache(home)
    key = _cache_key(srcs, eng)
    if use_cache:
        entry, rejected = cache.load(key, eng.label)
        if rejected:
            _audit(audit, "rules_cache_rejected", key=key, reason=rejected)
        if entry is not None:
            try:
                rules = eng.from_cache(entry.blob)
                meta = {(p, r): RuleMeta(c, s, d) for p, r, c, s, d in entry.header["meta"]}
                idents = [str(i) for i in entry.header["rules"]]
                cached: _Left = {
                    p: tuple(Quarantined(*row) for row in rows)
                    for p, rows in entry.header.get("quarantine", {}).items()
                }
                return rules, meta, idents, cached, None
            except (RulesError, KeyError, TypeError, ValueError) as e:
                _audit(audit, "rules_cache_rejected", key=key, reason=f"unusable: {e}")
    meta = {}
    texts: dict[str, str] = {}
    left: _Left = {}
    for src in srcs:
        check = examine(src)
        if check.problems:
            first = check.problems[0].at("")
            more = len(check.problems) - 1
            reason = f"rule pack {src.name}: {first}" + (
                f" (and {more} more problems)" if more else ""
            )
            _audit(audit, "rulepack_refused", pack=src.name, reason=reason)
            raise RulesError(reason)
        meta.update({(src.name, r): m for r, m in check.meta.items()})
        if check.text is not None:
            texts[src.name], left[src.name] = check.text, check.quarantined
    try:
        reference = compile_pack_sources(srcs, texts)
        rules = (
            reference
            if eng.name == LIBYARA
            else eng.compile({**_pack_texts(srcs), **texts}, EXTERNALS)
        )
    except RulesError as e:
        reason = str(e) if eng.name == LIBYARA else f"{eng.label} cannot compile the packs: {e}"
        _audit(audit, "rulepack_refused", pack=None, reason=reason)
        raise RulesError(reason) from e
    idents = [r.identifier for r in reference]
    if use_cache:
        rows = [[p, r, m.category, m.severity, m.description] for (p, r), m in sorted(meta.items())]
        quarantine = {p: [[q.file, q.rule, q.line, q.reason] for q in qs] for p, qs in left.items()}
        head = {"meta": rows, "rules": idents, "quarantine": quarantine}
        failed = cache.store(key, eng.save(rules), head, eng.label)
        if failed:  # the scan is unaffected; the next one compiles again
            _audit(audit, "rules_cache_not_written", key=key, reason=failed)
    return rules, meta, idents, left, texts


def _from_cache(
    cache: RulesCache,
    key: str,
    eng: Engine,
    audit: AuditLog | None,
    decode: Callable[[CacheEntry], _T],
) -> tuple[_T] | None:
    """What ``decode`` makes of the entry under ``key`` (in a 1-tuple: it may be None), or None
    when there is none this kiosk wrote for ``eng`` or it cannot be used (both audited: a cache
    is never trusted silently)."""
    entry, rejected = cache.load(key, eng.label)
    if rejected:
        _audit(audit, "rules_cache_rejected", key=key, reason=rejected)
    if entry is not None:
        try:
            return (decode(entry),)
        except (RulesError, KeyError, TypeError, ValueError) as e:
            _audit(audit, "rules_cache_rejected", key=key, reason=f"unusable: {e}")
    return None


def _gate(
    srcs: list[PackSource],
    texts: Callable[[], dict[str, str]],  # read only to build it: lexing costs a big pack
    idents: list[str],
    eng: Engine,
    home: Path,
    use_cache: bool,
    audit: AuditLog | None,
) -> tuple[Gate | None, Any]:
    """The gate and its reduced set as ``eng`` compiled it, from the cache when it holds them.

    Building it compiles the reduced set twice (libyara for the proof, then the engine): about
    as long as a cache hit of the full set, on every scan, so the result is cached beside it.
    """
    cache = RulesCache(home)
    key = hashlib.sha256(f"{_cache_key(srcs, eng)}/gate-1".encode()).hexdigest()

    def decode(entry: CacheEntry) -> tuple[Gate | None, Any]:
        g = entry.header["gate"]
        if g is None:
            return None, None
        reduced = eng.from_cache(entry.blob)
        gated = tuple((str(ns), str(r)) for ns, r in g["gated"])
        prefixes = tuple(bytes.fromhex(p) for p in g["prefixes"])
        return Gate(reduced if eng.name == LIBYARA else None, prefixes, gated), reduced

    if use_cache:
        hit = _from_cache(cache, key, eng, audit, decode)
        if hit is not None:
            return hit[0]
    gate = build_gate(texts(), dict(EXTERNALS), idents)
    reduced = gate.reduced if gate is not None else None
    if gate is not None and eng.name != LIBYARA:
        try:
            reduced = eng.compile(gate.sources, EXTERNALS)
        except RulesError:
            gate, reduced = None, None  # the engine refuses the split: the full set for all
    if use_cache and gate is not None and reduced is not None:  # nothing gated: cheap to redo
        header: dict[str, Any] = {
            "gate": {
                "gated": [list(g) for g in gate.gated],
                "prefixes": [p.hex() for p in gate.prefixes],
            }
        }
        failed = cache.store(key, eng.save(reduced), header, eng.label)
        if failed:
            _audit(audit, "rules_cache_not_written", key=key, reason=failed)
    return gate, reduced


def _window(
    srcs: list[PackSource],
    texts: Callable[[], dict[str, str]],
    eng: Engine,
    home: Path,
    use_cache: bool,
    audit: AuditLog | None,
) -> WindowRules | None:
    """The window-safe rules as ``eng`` compiled them, from the cache when it holds them.

    Deciding them parses every pack with plyara (~0.3 s for a 200-rule pack, more for a big
    collection, on every scan and before the first file): cached beside the full set, with
    what was decided for each rule."""
    cache = RulesCache(home)
    key = hashlib.sha256(f"{_cache_key(srcs, eng)}/{analysis_id()}".encode()).hexdigest()

    def decode(entry: CacheEntry) -> WindowRules | None:
        w = entry.header["window"]
        if w is None:
            return None
        used = engine(str(w["engine"]))
        return WindowRules(
            used.from_cache(entry.blob),
            tuple((str(ns), str(r)) for ns, r in w["safe"]),
            tuple((str(ns), str(r), str(why)) for ns, r, why in w["whole_only"]),
            int(w["max_match"]),
            used,
        )

    if use_cache:
        hit = _from_cache(cache, key, eng, audit, decode)
        if hit is not None:
            return hit[0]
    window = window_rules(texts(), dict(EXTERNALS), eng)
    if use_cache:
        header: dict[str, Any] = {"window": None}
        if window is not None:
            header["window"] = {
                "engine": window.engine.name,
                "safe": [list(x) for x in window.safe],
                "whole_only": [list(x) for x in window.whole_only],
                "max_match": window.max_match,
            }
        failed = cache.store(key, window.to_bytes() if window else b"", header, eng.label)
        if failed:
            _audit(audit, "rules_cache_not_written", key=key, reason=failed)
    return window


def _pack_texts(srcs: list[PackSource]) -> dict[str, str]:
    return {s.name: "\n".join(t for _, t in s.sources) for s in srcs}


def compile_packs(
    rules_dir: Path,
    *,
    dev: bool = False,
    home: Path | None = None,
    trust: TrustStore | None = None,
    audit: AuditLog | None = None,
    clock: Callable[[], datetime] | None = None,
    use_cache: bool = True,
    yara_engine: str = DEFAULT_ENGINE,
    record_use: bool = True,
) -> CompiledRules:
    """Verify, validate and compile every pack under ``rules_dir``; one refused pack stops all.

    Each pack must carry a manifest signed by a key in the trust store (default
    ``$KIOSK_HOME/trust.json``), cover exactly its files, be unexpired, and not be older than
    the highest version this kiosk has used. ``dev`` (forensic staff only) lets a pack that
    fails those checks in, each one logged; the caller must record dev mode in its report.
    Versions are recorded only after every pack verified and compiled, and never in dev mode,
    so a refused update leaves the version in use working. ``yara_engine`` names the engine
    that compiles the set the scan matches with (``kiosk.packs.engines``). ``record_use``
    False: compiled ahead of a scan (``kiosk.engine.standby``), not used yet -- no version is
    recorded; the scan's own call records them.
    """
    eng = engine(yara_engine)
    home = home or kiosk_home()
    now = clock() if clock else datetime.now(UTC)
    trust = trust if trust is not None else TrustStore.load(home / "trust.json", missing_ok=True)
    ledger = pack_ledger(home)
    srcs: list[PackSource] = []
    verified: dict[str, VerifiedManifest | None] = {}
    for pack_dir in find_packs(rules_dir):
        name = pack_dir.name
        try:
            v = _verify(pack_dir, trust, ledger, now, dev, audit)
            src = read_pack(pack_dir)
            if v is not None:
                _same_as_signed(src, v)
        except KioskError as e:
            _audit(audit, "rulepack_refused", pack=name, reason=str(e))
            raise RulesError(str(e)) from e
        srcs.append(src)
        verified[name] = v
    rules, meta, idents, left, imported = _compile_checked(srcs, home, audit, use_cache, eng)
    texts = _pack_texts(srcs)  # what externals_read reads: quarantined rules too (errs to more)

    def gate_texts() -> dict[str, str]:  # imported packs without their quarantined rules
        return {**pack_texts(srcs, left), **(imported or {})}

    gate, reduced = _gate(srcs, gate_texts, idents, eng, home, use_cache, audit)
    # the window-safe rules, in the scan's engine: byte areas and big files' tails; never a
    # quarantined rule
    window = _window(srcs, gate_texts, eng, home, use_cache, audit)
    counts: dict[str, int] = {}
    for pack, _ in meta:
        counts[pack] = counts.get(pack, 0) + 1
    packs: list[RulePack] = []
    for src in srcs:
        v = verified[src.name]
        packs.append(
            RulePack(
                name=src.name,
                version=src.version,
                description=src.description,
                path=src.path,
                files=tuple(f for f, _ in src.sources),
                digest=src.digest,
                rule_count=counts.get(src.name, 0),
                signed_by=v.keyid if v else None,
                expires=utc_text_seconds(v.manifest.expires) if v else None,
                quarantined=left.get(src.name, ()),
                imported=src.imported,
                labels=tuple(sorted(src.labels.items())),
            )
        )
    if not dev and record_use:
        try:
            ledger.record((Used(f"{RULEPACK}:{p.name}", p.version) for p in packs), now)
        except KioskError as e:
            raise RulesError(str(e)) from e
    for p in packs:
        _audit(
            audit,
            "rulepack_loaded",
            pack=p.name,
            version=p.version,
            digest=p.digest,
            rules=p.rule_count,
            signed_by=p.signed_by,
            dev_mode=dev,
            **({"quarantined": len(p.quarantined)} if p.imported else {}),
        )
    read = externals_read(texts)
    compiled = CompiledRules(
        tuple(packs),
        rules,
        meta,
        gate,
        eng,
        reduced,
        bool(read & set(PLACE_EXTERNALS)),
        read,
        window=window,
    )
    compiled.priority_areas = tuple(dict.fromkeys(a for s in srcs for a in s.priority_areas))
    return compiled


def _same_as_signed(src: PackSource, v: VerifiedManifest) -> None:
    """What will be compiled is what was signed: the files were read again after the check."""
    if v.manifest.version != src.version:
        raise RulesError(
            f"rule pack {src.name}: signed as version {v.manifest.version} but pack.toml "
            f"says {src.version}"
        )
    changed = sorted(f for f, d in src.file_digests.items() if v.manifest.files.get(f) != d)
    if changed:
        raise RulesError(
            f"rule pack {src.name}: tampered while being loaded: changed: {', '.join(changed)}"
        )


def _verify(
    pack_dir: Path,
    trust: TrustStore,
    ledger: VersionLedger,
    now: datetime,
    dev: bool,
    audit: AuditLog | None,
) -> VerifiedManifest | None:
    label = f"rule pack {pack_dir.name}"
    try:
        v = verify_manifest(pack_dir, RULEPACK, pack_dir.name, trust, now, label)
        downgrade = ledger.check(f"{RULEPACK}:{pack_dir.name}", v.manifest.version)
        if downgrade:
            raise VerificationError(f"{label}: {downgrade}")
    except KioskError as e:
        if not dev:
            raise
        _audit(audit, "rulepack_unverified_dev", pack=pack_dir.name, reason=str(e))
        return None
    return v
