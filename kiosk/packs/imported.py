"""What makes a pack an *imported* one, and how its rules' meta becomes kiosk's.

An imported pack's ``pack.toml`` carries an ``[upstream]`` table (which collection, commit and
date, the archive it came from and its licence file): that table is what tells the kiosk the
rule text is someone else's, unedited, so rules that cannot run are quarantined by name
instead of refusing the pack (``kiosk.packs.quarantine``). Kiosk's own packs have no
``[upstream]`` and keep the strict checks.

Collections do not speak kiosk's meta: signature-base has ``score`` (0-100) and no category,
YARA-Rules sorts rules into folders, ReversingLabs writes ``category = "MALWARE"``, Elastic has
a numeric ``severity`` and ``creation_date``. The ``[import]`` table says where each of
kiosk's five meta keys comes from, first source that gives a usable value wins, then
``[meta_defaults]``::

    [import]
    category = ["meta:category", "folder"]   # a meta key, or the folder the rule file is in
    severity = ["meta:severity", "meta:score"]   # a word, or a 0-100 score through [import.score]
    date = ["meta:date", "meta:creation_date"]
    [import.score]                            # the lowest score of each severity
    critical = 90
    high = 75
    medium = 50
    low = 0
    exclude = ["deprecated/*"]                # optional: collection paths not imported
    [import.category_map]                     # optional: collection value -> kiosk category
    exploit_kits = "exploit_kit"

Category values are made into kiosk identifiers (``MALWARE`` -> ``malware``, ``Exploit Kits`` ->
``exploit_kits``); ``[category_labels]`` gives each the words the scope picker shows.

``quarantine.toml`` lists the rules left out, by file, name and reason; the import writes it
(it alone knows which rules timed out on the benchmark buffer) and it is signed with the pack.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kiosk.errors import RulesError

QUARANTINE_FILE = "quarantine.toml"
RULES_DIR = "rules"  # an imported pack's rule files live under rules/, as upstream laid them out
_SEVERITIES = ("low", "medium", "high", "critical")
DEFAULT_SCORE = (("critical", 90), ("high", 75), ("medium", 50), ("low", 0))
SOURCE_KEYS = ("category", "severity", "date", "author", "description")
DEFAULT_SOURCES: dict[str, tuple[str, ...]] = {
    "category": ("meta:category", "folder"),
    "severity": ("meta:severity", "meta:score"),
    "date": ("meta:date", "meta:creation_date", "meta:created", "meta:modified"),
    "author": ("meta:author",),
    "description": ("meta:description", "meta:threat_name", "meta:info"),
}
UPSTREAM_KEYS = ("name", "commit", "date", "source", "sha256", "licence", "url")
_SOURCE = re.compile(r"^(meta:[A-Za-z_][A-Za-z0-9_]*|folder)$")
_CATEGORY = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_DATE_PREFIX = re.compile(r"^(\d{4})[-/.](\d{2})[-/.](\d{2})(?:$|[T ])")
_NUMBER = re.compile(r"^\d{1,3}$")
# folders that hold a collection's rules without saying what they are about
_GENERIC = {"yara", "rules", "yara-rules", "yara_rules", "signatures", "src", "detections"}


@dataclass(frozen=True, slots=True)
class Quarantined:
    """A rule left out of an imported pack, and why (one line, for staff and the report)."""

    file: str  # pack-relative, "/"-joined
    rule: str
    line: int | None
    reason: str


@dataclass(frozen=True, slots=True)
class ImportMapping:
    """Where an imported rule's category, severity, date, author and description come from."""

    sources: dict[str, tuple[str, ...]]
    score: tuple[tuple[str, int], ...]  # (severity, lowest score), highest first
    category_map: dict[str, str] = field(default_factory=dict)
    exclude: tuple[str, ...] = ()  # glob patterns of collection paths the import leaves out

    def resolve(
        self, meta: dict[str, Any], rule: str, path: str, defaults: dict[str, str]
    ) -> dict[str, str]:
        """Kiosk's five meta values for one rule; a key nothing gives is left empty."""
        out: dict[str, str] = {}
        for key in SOURCE_KEYS:
            value = ""
            for source in self.sources.get(key, ()):
                value = self._value(key, source, meta, path)
                if value:
                    break
            out[key] = value or defaults.get(key, "")
        if not out["description"]:
            out["description"] = rule
        return out

    def _value(self, key: str, source: str, meta: dict[str, Any], path: str) -> str:
        if source == "folder":  # the folder the file is in, unless it only says "rules"
            parts = path.split("/")[1:-1]  # below rules/, without the file name
            raw: object = parts[-1] if parts and parts[-1].lower() not in _GENERIC else ""
        else:
            raw = meta.get(source.removeprefix("meta:"))
        if raw is None or isinstance(raw, bool):
            return ""
        if key == "category":
            cat = category_id(str(raw))
            return self.category_map.get(cat, cat)
        if key == "severity":
            return self.severity(raw)
        if key == "date":
            m = _DATE_PREFIX.match(str(raw).strip())
            return f"{m.group(1)}-{m.group(2)}-{m.group(3)}" if m else ""
        return str(raw).strip()

    def severity(self, raw: object) -> str:
        """A severity word as it is, or a 0-100 score through the pack's ranges."""
        text = str(raw).strip().lower()
        if text in _SEVERITIES:
            return text
        if isinstance(raw, int) or _NUMBER.match(text):
            score = int(text)
            for name, lowest in self.score:
                if score >= lowest:
                    return name
        return ""


def category_id(value: str) -> str:
    """A collection's category as a kiosk identifier: ``Exploit Kits`` -> ``exploit_kits``."""
    cat = re.sub(r"[^a-z0-9]+", "_", value.strip().lower()).strip("_")
    if cat and not cat[0].isalpha():
        cat = "c_" + cat
    return cat[:64]


def default_label(category: str) -> str:
    words = category.replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def _texts(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise RulesError(f"{where} must be a list of text")
    return tuple(value)


def parse_mapping(table: object, where: str) -> ImportMapping:
    """``[import]`` of pack.toml, checked; unknown keys refused like the rest of pack.toml."""
    if not isinstance(table, dict):
        raise RulesError(f"{where}: 'import' must be a table")
    unknown = sorted(set(table) - {*SOURCE_KEYS, "score", "category_map", "exclude"})
    if unknown:
        raise RulesError(f"{where}: unknown key(s) in [import]: {', '.join(unknown)}")
    sources = dict(DEFAULT_SOURCES)
    for key in SOURCE_KEYS:
        if key in table:
            given = _texts(table[key], f"{where}: import.{key}")
            bad = [
                s for s in given if not _SOURCE.match(s) or (s == "folder" and key != "category")
            ]
            if bad:
                raise RulesError(
                    f"{where}: import.{key}: {bad[0]!r} is not 'meta:<key>'"
                    + (" or 'folder'" if key == "category" else "")
                )
            sources[key] = given
    score: tuple[tuple[str, int], ...] = DEFAULT_SCORE
    if "score" in table:
        raw = table["score"]
        if (
            not isinstance(raw, dict)
            or set(raw) - set(_SEVERITIES)
            or not all(isinstance(v, int) and 0 <= v <= 100 for v in raw.values())
        ):
            raise RulesError(
                f"{where}: import.score must map low/medium/high/critical to scores 0-100"
            )
        score = tuple(sorted(((str(k), int(v)) for k, v in raw.items()), key=lambda t: -t[1]))
    cmap = table.get("category_map", {})
    if not isinstance(cmap, dict) or not all(
        isinstance(v, str) and _CATEGORY.match(v) for v in cmap.values()
    ):
        raise RulesError(f"{where}: import.category_map values must be category names")
    exclude = (
        _texts(table.get("exclude", []), f"{where}: import.exclude") if "exclude" in table else ()
    )
    return ImportMapping(sources, score, {category_id(str(k)): v for k, v in cmap.items()}, exclude)


def parse_upstream(table: object, where: str) -> dict[str, str]:
    if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
        raise RulesError(f"{where}: 'upstream' must be a table of text")
    unknown = sorted(set(table) - set(UPSTREAM_KEYS))
    if unknown:
        raise RulesError(f"{where}: unknown key(s) in [upstream]: {', '.join(unknown)}")
    if not table.get("name"):
        raise RulesError(f"{where}: [upstream] needs the collection's 'name'")
    return {str(k): str(v) for k, v in table.items()}


def parse_labels(table: object, where: str) -> dict[str, str]:
    if not isinstance(table, dict) or not all(
        isinstance(v, str) and v.strip() for v in table.values()
    ):
        raise RulesError(f"{where}: 'category_labels' must map categories to text")
    return {str(k): str(v).strip() for k, v in table.items()}


# --------------------------------------------------------------------------- quarantine.toml


def read_quarantine(pack_dir: Path, label: str) -> tuple[Quarantined, ...]:
    """The rules the import left out (none if the file is absent)."""
    path = pack_dir / QUARANTINE_FILE
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return ()
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise RulesError(f"{label}: {QUARANTINE_FILE} cannot be read: {e}") from e
    rows = data.get("rule", [])
    out = []
    if not isinstance(rows, list):
        raise RulesError(f"{label}: {QUARANTINE_FILE}: 'rule' must be a list of tables")
    for row in rows:
        ok = (
            isinstance(row, dict)
            and isinstance(row.get("file"), str)
            and isinstance(row.get("rule"), str)
            and isinstance(row.get("reason"), str)
            and isinstance(row.get("line", 0), int)
        )
        if not ok:
            raise RulesError(f"{label}: {QUARANTINE_FILE}: each [[rule]] needs file, rule, reason")
        out.append(Quarantined(row["file"], row["rule"], row.get("line") or None, row["reason"]))
    return tuple(out)


def quarantine_toml(rows: list[Quarantined] | tuple[Quarantined, ...]) -> str:
    """``quarantine.toml`` text: one ``[[rule]]`` per rule left out, sorted by file and line."""
    out = [
        "# Rules of this imported pack that the kiosk leaves out, and why. Written by",
        "# 'kiosk rules import'; signed with the pack. See rules/README.md.",
        "",
    ]
    for q in sorted(rows, key=lambda q: (q.file, q.line or 0, q.rule)):
        out += ["[[rule]]", f"file = {_q(q.file)}", f"rule = {_q(q.rule)}"]
        if q.line:
            out.append(f"line = {q.line}")
        out += [f"reason = {_q(q.reason)}", ""]
    return "\n".join(out)


def _q(text: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's, for the characters json emits)."""
    return json.dumps(text, ensure_ascii=True)
