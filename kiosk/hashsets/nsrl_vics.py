"""Structured hash-set sources: NSRL RDSv3 (SQLite), legacy NSRL CSV, and VICS JSON.

Formats as described in shared/reference/hashsets-and-rule-packs.md §1.1 to 1.4. None of them is
queried in place: RDSv3 has no index on its hash columns and VICS files are single JSON documents
of up to gigabytes, so each is read once, sequentially (VICS streamed with ijson), into batches.

VICS categories depend on the regional profile (the US and the old DHS scheme number them
differently; the CAID UK mapping is not public), so kiosk never hard-codes them: the importer
gives a category map, and the source value is kept verbatim beside the mapped label.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import ijson

from kiosk.errors import HashSetError
from kiosk.hashsets.records import (
    ALGORITHM_NAMES,
    BOM,
    EMPTY_FILE,
    WIDTH,
    Batch,
    Collector,
    Context,
    bad_digest,
    open_source,
    parse_digest,
)

NSRL_CSV_HEADER = ["SHA-1", "MD5", "CRC32", "FileName", "FileSize", "ProductCode"]
RDS3_TABLES = ("FILE", "METADATA", "DISTINCT_HASH")  # the view with products first
VICS_MODEL = re.compile(r"DataModels/(\d+(?:\.\d+)*)\.xml(?:/([^/$#]+))?")
VICS_HASH_KEYS = (("md5", "MD5"), ("sha1", "SHA1"), ("sha256", "SHA256"))


def _int_or_text(value: str) -> int | str:
    return int(value) if value.isdigit() else value


def read_nsrl_csv(path: Path, ctx: Context, info: dict[str, Any]) -> Iterator[Batch]:
    """Legacy NSRL RDS 2.x ``NSRLFile.txt``: quoted CSV, names in whatever encoding they came."""
    out = Collector(ctx)
    with open_source(path) as raw:
        reader = csv.reader(
            io.TextIOWrapper(raw, encoding="utf-8", errors="surrogateescape", newline="")
        )
        try:
            header = next(reader, None)
        except csv.Error as e:
            raise HashSetError(f"{path} line 1: not an NSRLFile.txt header: {e}") from e
        if header is None or [h.lstrip("\ufeff") for h in header[:6]] != NSRL_CSV_HEADER:
            raise HashSetError(f'{path} line 1: not an NSRLFile.txt header ("SHA-1","MD5",…)')
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as e:
                ctx.invalid(f"{path} line {reader.line_num}", f"malformed CSV: {e}")
                continue
            where = f"{path} line {reader.line_num}"
            if len(row) < 6:
                ctx.invalid(where, f"expected at least 6 fields, found {len(row)}")
                continue
            sha1, md5 = parse_digest(row[0], "sha1"), parse_digest(row[1], "md5")
            if sha1 is None or md5 is None:
                ctx.invalid(
                    where, bad_digest(row[0], "sha1") if sha1 is None else bad_digest(row[1], "md5")
                )
                continue
            props = {
                "file_name": row[3],
                "file_size": _int_or_text(row[4]),
                "product_code": _int_or_text(row[5]),
                "op_system_code": row[6] if len(row) > 6 else None,
                "special_code": row[7] if len(row) > 7 else None,
            }
            if out.add([sha1, md5], None, props):
                yield out.take()
    yield out.take()


def _rds3_schema(
    db: sqlite3.Connection, path: Path, info: dict[str, Any], digests_only: bool = False
) -> tuple[str, list[str], list[str], dict[Any, str]]:
    """(table, hash columns, property columns, product names by package id).

    ``digests_only``: the METADATA table itself where there is one, not the FILE view (which
    joins every row to its package: names and products that a digests-only set does not keep).
    """
    names = {
        str(n).upper(): str(n)
        for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")
    }
    order = ("METADATA", *RDS3_TABLES) if digests_only else RDS3_TABLES
    table = next((names[t] for t in order if t in names), None)
    if table is None:
        raise HashSetError(
            f"{path}: not an NSRL RDSv3 database (no FILE, METADATA or DISTINCT_HASH)"
        )
    cols = {str(r[1]).lower(): str(r[1]) for r in db.execute(f'PRAGMA table_info("{table}")')}
    hashes = [cols[a] for a in ("sha256", "sha1", "md5") if a in cols]
    if not hashes:
        raise HashSetError(f"{path}: {table} has no sha256, sha1 or md5 column")
    extra = [cols[c] for c in ("file_name", "file_size", "package_id", "bytes") if c in cols]
    info["table"] = table
    if "VERSION" in names:  # provenance: which RDS release this was
        with contextlib.suppress(sqlite3.Error):
            cur = db.execute(f'SELECT * FROM "{names["VERSION"]}" LIMIT 1')  # noqa: S608 - schema name
            row = cur.fetchone()
            if row:
                info["nsrl_version"] = {d[0]: v for d, v in zip(cur.description, row, strict=True)}
    products: dict[Any, str] = {}
    if "package_id" in cols and "PKG" in names:
        with contextlib.suppress(sqlite3.Error):
            query = f'SELECT package_id, name, version FROM "{names["PKG"]}"'  # noqa: S608 - schema name
            products = {
                pid: " ".join(str(x) for x in (name, version) if x)
                for pid, name, version in db.execute(query)
            }
    return table, hashes, extra, products


def read_nsrl_rds3(path: Path, ctx: Context, info: dict[str, Any]) -> Iterator[Batch]:
    """NSRL RDSv3: the ``FILE`` view (or ``METADATA``, or ``DISTINCT_HASH`` of a minimal set).

    Opened read-only and immutable (a source is provenance, never written); hashes are upper-case
    hex text there, NULL or empty where a row lacks one.
    """
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True)
    except sqlite3.Error as e:
        raise HashSetError(f"{path}: cannot be opened as SQLite: {e}") from e
    row_no = 0
    try:
        table, hashes, extra, products = _rds3_schema(db, path, info, not ctx.keep_props)
        if not ctx.keep_props:  # digests only: do not even read the names
            yield from _rds3_digests(db, path, table, hashes, ctx)
            return
        algorithms = [c.lower() for c in hashes]
        select = ", ".join(f'"{c}"' for c in [*hashes, *extra])
        out = Collector(ctx)
        n = len(hashes)
        for row in db.execute(f'SELECT {select} FROM "{table}"'):  # noqa: S608 - schema names
            row_no += 1
            digests: list[tuple[str, bytes]] = []
            for algorithm, value in zip(algorithms, row[:n], strict=True):
                if value is None or value == "":
                    continue
                parsed = parse_digest(str(value), algorithm)
                if parsed is None:
                    ctx.invalid(f"{path} {table} row {row_no}", bad_digest(str(value), algorithm))
                    break
                digests.append(parsed)
            else:
                if not digests:
                    ctx.invalid(f"{path} {table} row {row_no}", "no digest")
                    continue
                props = {c.lower(): v for c, v in zip(extra, row[n:], strict=True)}
                if "package_id" in props:
                    props["product"] = products.get(props["package_id"])
                if out.add(digests, None, props):
                    yield out.take()
        yield out.take()
    except sqlite3.DatabaseError as e:
        where = f" (at row {row_no})" if row_no else ""
        raise HashSetError(f"{path}: not a readable SQLite database{where}: {e}") from e
    finally:
        db.close()


def _rds3_digests(
    db: sqlite3.Connection, path: Path, table: str, hashes: list[str], ctx: Context
) -> Iterator[Batch]:
    """A digests-only import of RDSv3: the strongest digest of each row, read a hundred thousand
    rows at a time and decoded as one block where every row has it (the usual case: about
    ten times the rate of row-by-row parsing, bench/hashsets.md); row by row otherwise."""
    q = [f'"{h}"' for h in hashes]
    blank = [f"({c} IS NULL OR {c} = '')" for c in q]
    picks = [q[0]] + [
        f"CASE WHEN {' AND '.join(blank[:i])} THEN {q[i]} END" for i in range(1, len(q))
    ]
    algorithms = [h.lower() for h in hashes]
    first, width = algorithms[0], WIDTH[algorithms[0]]
    empty = EMPTY_FILE[first].hex()
    out = Collector(ctx)
    cur = db.execute(f'SELECT {", ".join(picks)} FROM "{table}"')  # noqa: S608 - schema names
    row_no = 0
    while rows := cur.fetchmany(100_000):
        col = [r[0] for r in rows]
        raw = _block(col, width) if all(col) else None
        if raw is not None:
            kept = [c for c in col if c.lower() != empty] if empty in map(str.lower, col) else col
            if len(kept) != len(col):
                ctx.stats.excluded_empty_file += len(col) - len(kept)
                raw = bytes.fromhex("".join(kept))
            if kept and out.add_block(first, raw, len(kept)):
                yield out.take()
            row_no += len(rows)
            continue
        for row in rows:
            row_no += 1
            value, algorithm = next(
                ((v, a) for v, a in zip(row, algorithms, strict=True) if v), (None, None)
            )
            if value is None:
                ctx.invalid(f"{path} {table} row {row_no}", "no digest")
                continue
            parsed = parse_digest(str(value), algorithm)
            if parsed is None:
                ctx.invalid(f"{path} {table} row {row_no}", bad_digest(str(value), algorithm))
                continue
            if out.add([parsed]):
                yield out.take()
    yield out.take()


def _block(col: list[Any], width: int) -> bytes | None:
    """Every value of ``col`` as one run of ``width``-byte digests, or None if any is not hex
    of that width (then the rows are read one by one, to name the bad one)."""
    try:
        raw = bytes.fromhex("".join(col))
    except (TypeError, ValueError):
        return None
    if len(raw) != width * len(col) or any(len(c) != 2 * width for c in col):
        return None
    return raw


# --------------------------------------------------------------------------- VICS JSON


def _first(e: Exception) -> str:
    """yajl's messages draw a caret under the text over several lines: keep the first."""
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


def _vics_context(f: IO[bytes], path: Path) -> dict[str, Any]:
    """The OData context at the top of a VICS file: data-model version, profile and shape."""
    context = None
    try:
        for prefix, event, value in ijson.parse(f):
            if prefix in ("odata.metadata", "@odata.context") and event == "string":
                context = str(value)
                break
            if prefix == "" and (event == "start_array" or (event, value) == ("map_key", "value")):
                break
    except ijson.JSONError as e:
        raise HashSetError(f"{path}: not valid JSON: {_first(e)}") from e
    if context is None:
        raise HashSetError(f"{path}: not a VICS file (no odata.metadata or @odata.context first)")
    shape = "Cases" if context.endswith("#Cases") else "Media" if "#Media" in context else None
    model = VICS_MODEL.search(context)
    if shape is None or model is None:
        raise HashSetError(f"{path}: not a VICS Media or Cases file (context {context[:100]!r})")
    return {"context": context, "model": model.group(1), "profile": model.group(2), "shape": shape}


def read_vics(path: Path, ctx: Context, info: dict[str, Any]) -> Iterator[Batch]:
    """Project VIC / CAID VICS JSON 1.x or 2.0: a ``#Media`` hash set or a ``#Cases`` export."""
    out = Collector(ctx)
    with open_source(path) as f:
        start = 3 if f.read(3) == BOM else 0
        f.seek(start)
        info.update(_vics_context(f, path))
        f.seek(start)
        prefix = "value.item" if info["shape"] == "Media" else "value.item.Media.item"
        n = 0
        try:
            for media in ijson.items(f, prefix, use_float=True):
                n += 1
                if _vics_media(media, f"{path} record {n}", ctx, out):
                    yield out.take()
        except ijson.IncompleteJSONError as e:
            raise HashSetError(f"{path}: truncated JSON (after {n} records): {_first(e)}") from e
        except ijson.JSONError as e:
            raise HashSetError(f"{path}: not valid JSON (after {n} records): {_first(e)}") from e
    if n == 0:
        raise HashSetError(f"{path}: no Media records under 'value'")
    yield out.take()


def _vics_media(media: Any, where: str, ctx: Context, out: Collector) -> bool:
    if not isinstance(media, dict):
        ctx.invalid(where, "not a JSON object")
        return False
    candidates: list[tuple[str, Any]] = [(a, media.get(k)) for a, k in VICS_HASH_KEYS]
    for alt in media.get("AlternativeHashes") or []:  # PhotoDNA travels here too: not ours
        if isinstance(alt, dict):
            algorithm = ALGORITHM_NAMES.get(str(alt.get("HashName", "")).lower())
            if algorithm:
                candidates.append((algorithm, alt.get("HashValue")))
    digests: dict[str, bytes] = {}
    for algorithm, value in candidates:
        if value in (None, ""):
            continue
        parsed = parse_digest(value, algorithm) if isinstance(value, str) else None
        if parsed is None:
            ctx.invalid(where, bad_digest(str(value), algorithm))
            return False
        digests.setdefault(*parsed)
    if not digests:
        ctx.invalid(where, "no MD5, SHA-1 or SHA-256")
        return False
    raw_category = media.get("Category")
    category: str | None = None
    if ctx.category_map is not None:
        key = "null" if raw_category is None else str(raw_category)
        if key not in ctx.category_map:
            ctx.invalid(where, f"Category {key} is not in the category map")
            return False
        category = ctx.category_map[key]
        if category is None:
            ctx.stats.excluded_by_category_map += 1
            return False
    props = {
        "vics_category": raw_category,
        "media_id": media.get("MediaID"),
        "series": media.get("Series"),
        "media_size": media.get("MediaSize"),
    }
    return out.add(sorted(digests.items()), category, props)


def load_category_map(path: Path) -> dict[str, str | None]:
    """JSON: source category as text (``"null"`` for none) → kiosk label, or null to drop it."""
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise HashSetError(f"category map {path}: not readable JSON: {e}") from e
    if not isinstance(data, dict) or not data:
        raise HashSetError(f"category map {path}: must be a non-empty JSON object")
    for k, v in data.items():
        if v is not None and (not isinstance(v, str) or not v.strip()):
            raise HashSetError(f"category map {path}: {k!r} must map to a label or null")
    return {str(k): v for k, v in data.items()}
