"""YARA rule packs: load, validate, compile from source, digest, match.

A pack is ``rules/<pack>/pack.toml`` (name, version, …) plus ``*.yar`` sources. Every pack is
compiled from source into one namespace (the pack name), all packs into one ``yara.Rules`` so
each file is matched once. Compiled rules cross into worker processes as bytes in memory,
straight from this compile — never from a file on disk, because compiled rules can run code.

Externals as LOKI/THOR define them (``filename``, ``filepath``, ``extension``, ``filetype``,
``owner``) are declared at compile time and set per file, so public collections compile as-is.
"""

from __future__ import annotations

import hashlib
import io
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yara

from kiosk.errors import RulesError
from kiosk.model import RuleMatch

SEVERITIES = ("low", "medium", "high", "critical")
REQUIRED_META = ("category", "severity", "description")
EXTERNALS: dict[str, str] = {
    "filename": "",
    "filepath": "",
    "extension": "",
    "filetype": "",
    "owner": "",
}
_PACK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


@dataclass(frozen=True, slots=True)
class RulePack:
    """One pack as found on disk: its metadata and the digest of exactly what was compiled."""

    name: str
    version: str
    description: str
    path: Path
    files: tuple[str, ...]
    digest: str  # SHA-256 over pack.toml and every .yar, names and bytes, in sorted order
    rule_count: int


@dataclass(frozen=True, slots=True)
class RuleMeta:
    category: str
    severity: str
    description: str


class CompiledRules:
    """All packs compiled together, with each rule's meta kept for the report."""

    def __init__(
        self, packs: tuple[RulePack, ...], rules: Any, meta: dict[tuple[str, str], RuleMeta]
    ) -> None:
        self.packs = packs
        self.rules = rules
        self.meta = meta

    def to_bytes(self) -> bytes:
        """The compiled rules, serialised in memory for worker processes."""
        buf = io.BytesIO()
        self.rules.save(file=buf)
        return buf.getvalue()

    @property
    def rule_count(self) -> int:
        return len(self.meta)


def _pack_name(raw: object, where: Path) -> str:
    if not isinstance(raw, str) or not _PACK_NAME.match(raw):
        raise RulesError(f"{where}: 'name' must be a letter followed by letters, digits or _")
    return raw


def load_pack(pack_dir: Path) -> tuple[RulePack, str]:
    """Read one pack directory; returns the pack and its joined source text."""
    toml_path = pack_dir / "pack.toml"
    try:
        meta = tomllib.loads(toml_path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise RulesError(f"rule pack {pack_dir.name}: pack.toml is missing") from e
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise RulesError(f"rule pack {pack_dir.name}: pack.toml cannot be read: {e}") from e
    name = _pack_name(meta.get("name"), toml_path)
    version = meta.get("version")
    if not isinstance(version, str) or not version:
        raise RulesError(f"rule pack {name}: pack.toml has no 'version'")
    yars = sorted(p for p in pack_dir.glob("*.yar") if p.is_file())
    if not yars:
        raise RulesError(f"rule pack {name}: no .yar files in {pack_dir}")
    h = hashlib.sha256()
    sources: list[str] = []
    for p in [toml_path, *yars]:
        data = p.read_bytes()
        h.update(p.name.encode() + b"\0" + len(data).to_bytes(8, "big") + data)
        if p.suffix == ".yar":
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError as e:
                raise RulesError(f"rule pack {name}: {p.name} is not UTF-8 text") from e
            _compile_one(name, p, text)  # locate errors by file and line before joining
            sources.append(text)
    pack = RulePack(
        name=name,
        version=version,
        description=str(meta.get("description", "")),
        path=pack_dir,
        files=tuple(p.name for p in yars),
        digest=h.hexdigest(),
        rule_count=0,
    )
    return pack, "\n".join(sources)


def _compile_one(pack: str, path: Path, text: str) -> Any:
    try:
        return yara.compile(
            source=text, externals=EXTERNALS, includes=False, error_on_warning=False
        )
    except yara.SyntaxError as e:
        raise RulesError(f"rule pack {pack}: {path.name}: {e}") from e
    except yara.Error as e:
        raise RulesError(f"rule pack {pack}: {path.name} does not compile: {e}") from e


def find_packs(rules_dir: Path) -> list[Path]:
    """Pack directories under ``rules_dir``: each sub-directory holding a pack.toml."""
    if not rules_dir.is_dir():
        raise RulesError(f"rules directory not found: {rules_dir}")
    packs = sorted(p for p in rules_dir.iterdir() if p.is_dir() and (p / "pack.toml").exists())
    if not packs:
        raise RulesError(f"no rule packs (directories with pack.toml) in {rules_dir}")
    return packs


def compile_packs(rules_dir: Path) -> CompiledRules:
    """Load and compile every pack under ``rules_dir``; any broken pack stops the run."""
    loaded = [load_pack(p) for p in find_packs(rules_dir)]
    names = [p.name for p, _ in loaded]
    if len(set(names)) != len(names):
        raise RulesError(f"two rule packs share a name in {rules_dir}: {sorted(names)}")
    try:
        rules = yara.compile(
            sources={p.name: src for p, src in loaded}, externals=EXTERNALS, includes=False
        )
    except yara.Error as e:
        raise RulesError(f"rule packs do not compile together: {e}") from e
    meta: dict[tuple[str, str], RuleMeta] = {}
    counts: dict[str, int] = {}
    for pack, src in loaded:
        # yara.Rules does not tell a rule's namespace, so each pack is read on its own for meta
        for r in _compile_one(pack.name, pack.path, src):
            meta[(pack.name, r.identifier)] = _rule_meta(pack.name, r)
            counts[pack.name] = counts.get(pack.name, 0) + 1
    packs = tuple(
        RulePack(p.name, p.version, p.description, p.path, p.files, p.digest, counts.get(p.name, 0))
        for p, _ in loaded
    )
    return CompiledRules(packs, rules, meta)


def _rule_meta(pack: str, rule: Any) -> RuleMeta:
    m = dict(rule.meta)
    missing = [k for k in REQUIRED_META if not isinstance(m.get(k), str) or not m.get(k)]
    if missing:
        raise RulesError(
            f"rule pack {pack}: rule {rule.identifier} lacks meta {', '.join(missing)}"
        )
    sev = str(m["severity"]).lower()
    if sev not in SEVERITIES:
        raise RulesError(
            f"rule pack {pack}: rule {rule.identifier} has severity {m['severity']!r}; "
            f"expected one of {', '.join(SEVERITIES)}"
        )
    return RuleMeta(str(m["category"]), sev, str(m["description"]))


class Matcher:
    """The per-process matcher a worker builds from the compiled bytes."""

    def __init__(self, blob: bytes, meta: dict[tuple[str, str], RuleMeta], timeout_s: int) -> None:
        self._rules = yara.load(file=io.BytesIO(blob))
        self._meta = meta
        self._timeout = timeout_s

    def match(
        self, data: bytes, filename: str, filepath: str, filetype: str
    ) -> tuple[RuleMatch, ...]:
        """Rules matching ``data``; raises ``yara.TimeoutError`` / ``yara.Error`` to the caller."""
        ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
        externals = {
            "filename": filename,
            "filepath": filepath,
            "extension": ext,
            "filetype": filetype,
            "owner": "",
        }
        found = self._rules.match(data=data, externals=externals, timeout=self._timeout)
        out = []
        for m in found:
            rm = self._meta[(m.namespace, m.rule)]
            out.append(RuleMatch(m.namespace, m.rule, rm.category, rm.severity, rm.description))
        return tuple(sorted(out, key=lambda r: (r.pack, r.rule)))
