"""``kiosk hashsets …``: forensic staff import, sign, inspect, look up and remove hash sets.

A thin layer over ``hashset_store`` and ``hashsets``, kept out of ``cli.py`` so the two grow
without stepping on each other. Errors are ``KioskError``s, which ``cli.main`` prints as one line
(exit 1). Every change to the store, and every lookup, is a line in the audit log — counts and
set names only, never a digest or file name from a case.

The store modules (and numpy, which building a set needs) are imported inside the commands that
write the store: every scan worker re-imports the ``kiosk`` entry point when it is spawned, and
numpy's import and its BLAS threads cost each of them about 0.1 s of CPU for nothing.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kiosk.cli.common import audit_log, parse_time, say
from kiosk.errors import HashSetError, UsageError
from kiosk.hashsets.formats import FORMATS
from kiosk.hashsets.index import DISPOSITIONS, HashIndex, find_sets, inspect_set, trust_context
from kiosk.hashsets.records import BY_HEX_LENGTH
from kiosk.reports.model import TriageReport
from kiosk.trust.signing import load_signer


def add_parser(sub: Any) -> None:
    """Register ``hashsets`` and its sub-commands on the top-level sub-parsers."""
    hs = sub.add_parser("hashsets", help="import, sign, inspect and look up hash sets")
    hsub = hs.add_subparsers(dest="hashsets_command", required=True)
    store = argparse.ArgumentParser(add_help=False)
    store.add_argument(
        "--hashsets",
        type=Path,
        default=Path("hashsets"),
        help="the hash-set store (default: hashsets)",
    )

    im = hsub.add_parser("import", parents=[store], help="import a new version of a set")
    im.add_argument("name", help="set name (letters, digits, . _ -)")
    im.add_argument("sources", type=Path, nargs="+", metavar="SOURCE", help="source files")
    im.add_argument("--format", choices=FORMATS, help="source format (default: detected)")
    im.add_argument("--disposition", required=True, choices=DISPOSITIONS)
    im.add_argument("--category", help="category of findings (default: the disposition)")
    im.add_argument("--version", help="set version, higher than the active one (default: now)")
    im.add_argument(
        "--category-map", type=Path, help="JSON map of VICS categories to kiosk labels (null: drop)"
    )
    im.add_argument("--description", default="", help="what the set is, for reports")
    im.add_argument(
        "--keep-properties",
        action="store_true",
        default=None,
        help="keep per-hash file names and products for a known-good set too (default: digests "
        "only for known-good, properties kept for known-bad)",
    )
    im.add_argument(
        "--threshold",
        type=int,
        help="perceptual (PDQ) sets: largest Hamming distance that matches (default 31)",
    )
    im.add_argument(
        "--skip-invalid", action="store_true", help="skip malformed records (counted) not fail"
    )

    sg = hsub.add_parser("sign", parents=[store], help="sign the active version of a set")
    sg.add_argument("name")
    sg.add_argument("--key", type=Path, required=True, help="Ed25519 private key (PEM, 0600)")
    sg.add_argument(
        "--expires", help="date (UTC midnight) or ISO time after which kiosks refuse it"
    )

    hsub.add_parser(
        "list", parents=[store], help="every set, its version and whether it is trusted"
    )
    inf = hsub.add_parser("info", parents=[store], help="one set's manifest and signature")
    inf.add_argument("name")

    lk = hsub.add_parser("lookup", parents=[store], help="which sets list these digests")
    lk.add_argument("digests", nargs="*", metavar="HASH", help="MD5, SHA-1 or SHA-256 in hex")
    lk.add_argument("--from", dest="from_file", type=Path, help="a file of digests, one a line")
    lk.add_argument(
        "--dev", action="store_true", help="forensic staff: accept untrusted sets (logged)"
    )

    rm = hsub.add_parser("remove", parents=[store], help="remove a set and all its versions")
    rm.add_argument("name")


def dev_warnings(report: TriageReport) -> list[str]:
    """One line per hash set a ``--dev`` scan used although it failed verification."""
    return [
        f"kiosk: warning: --dev: hash set {s.name} {s.version} used although: "
        + "; ".join(s.dev_override)
        for s in report.hash_sets
        if s.dev_override
    ]


def run(args: argparse.Namespace) -> int:
    """Dispatch one ``kiosk hashsets`` command; 0 on success."""
    command = args.hashsets_command
    handlers = {
        "import": _import,
        "sign": _sign,
        "list": _list,
        "info": _info,
        "lookup": _lookup,
        "remove": _remove,
    }
    return handlers[command](args)


def _import(args: argparse.Namespace) -> int:
    from kiosk.hashsets.build import ImportRequest
    from kiosk.hashsets.store import import_set

    req = ImportRequest(
        name=args.name,
        sources=tuple(args.sources),
        disposition=args.disposition,
        format=args.format,
        category=args.category,
        version=args.version,
        category_map=args.category_map,
        description=args.description,
        skip_invalid=args.skip_invalid,
        keep_properties=args.keep_properties,
        threshold=args.threshold,
    )
    result = import_set(args.hashsets, req)
    m = result.manifest
    counts = {a: e["count"] for a, e in m["algorithms"].items()}
    stats = m["stats"]
    audit_log().append(
        "hashset_imported",
        name=m["name"],
        version=m["version"],
        disposition=m["disposition"],
        counts=counts,
        sources=[{"format": s["format"], "sha256": s["sha256"]} for s in m["sources"]],
        skipped_invalid=stats["skipped_invalid"],
    )
    merged = sum(e["duplicates_merged"] for e in m["algorithms"].values())
    say(
        f"imported {m['name']} {m['version']} ({m['disposition']}, category {m['category']}): "
        + ", ".join(f"{n} {a}" for a, n in counts.items())
        + f"; {stats['records']} records, {merged} duplicates merged, "
        f"{stats['skipped_invalid']} invalid skipped, "
        f"{stats['excluded_empty_file']} empty-file digests dropped"
        + (f", PDQ threshold {m['pdq_threshold']}" if "pdq_threshold" in m else "")
        + (
            f", {stats['excluded_by_category_map']} left out by the category map"
            if m["category_map"]
            else ""
        )
    )
    props = m["properties"]
    say(
        f"per-hash properties: {props['rows']} rows kept ({props['size']} bytes)"
        if isinstance(props, dict)
        else "per-hash properties: none kept (digests only"
        + (
            "; --keep-properties keeps file names and products)"
            if not req.keeps_properties
            else ")"
        )
    )
    if result.replaced:
        say(f"replaced version(s): {', '.join(result.replaced)}")
    say(f"unsigned: kiosks refuse it until 'kiosk hashsets sign {m['name']} --key KEY'")
    say(str(result.version_dir))
    return 0


def _sign(args: argparse.Namespace) -> int:
    signer = load_signer(args.key)
    expires = parse_time(args.expires) if args.expires else None
    from kiosk.hashsets.store import sign_set

    path = sign_set(args.hashsets, args.name, signer, expires)
    version = path.parent.name
    audit_log().append(
        "hashset_signed",
        name=args.name,
        version=version,
        keyid=signer.keyid,
        expires=expires.isoformat() if expires else None,
    )
    say(f"signed {args.name} {version} with key {signer.keyid}")
    say(str(path))
    return 0


def _status(problems: tuple[str, ...], keyid: str | None) -> str:
    if not problems:
        return f"trusted (key {keyid[:16] if keyid else '?'}…)"
    return f"REFUSED: {problems[0]}" + (f" (+{len(problems) - 1})" if len(problems) > 1 else "")


def _list(args: argparse.Namespace) -> int:
    trust, ledger = trust_context()
    now = datetime.now(UTC)
    sets = find_sets(args.hashsets)
    for set_dir in sets:
        try:
            found = inspect_set(set_dir, trust, ledger, now)
        except HashSetError as e:
            say(f"{set_dir.name}: unreadable: {e}")
            continue
        i = found.info
        say(
            f"{i.name} {i.version}  {i.disposition}  category {i.category}  "
            f"{i.count} {i.algorithm}  {_status(found.problems, found.verdict.keyid)}"
        )
    if not sets:
        say(f"no hash sets in {args.hashsets}")
    return 0


def _info(args: argparse.Namespace) -> int:
    trust, ledger = trust_context()
    found = inspect_set(args.hashsets / args.name, trust, ledger, datetime.now(UTC))
    m, i, v = found.manifest, found.info, found.verdict
    lines = [
        f"name:          {i.name}",
        f"version:       {i.version}",
        f"disposition:   {i.disposition}",
        f"category:      {i.category}"
        + (
            "  (per hash, from the source)"
            if i.threshold is not None and m.get("per_hash_category")
            else "  (per hash, through the category map)"
            if m.get("per_hash_category")
            else ""
        ),
        *(
            [f"PDQ threshold: {i.threshold} (largest matching Hamming distance)"]
            if i.threshold is not None
            else []
        ),
        f"description:   {i.description}",
        f"created:       {m.get('created')} by {m.get('importer')}",
        f"digest:        {i.digest}",
        f"path:          {i.path}",
    ]
    for algo, e in m["algorithms"].items():
        lines.append(
            f"{algo + ':':<15}{e['count']} digests, {e['duplicates_merged']} duplicates merged, "
            f"{e['size']} bytes, 2^{e['bucket_bits']} buckets"
        )
    props = m.get("properties")
    lines.append(f"properties:    {props['rows']} rows" if props else "properties:    none")
    for s in m.get("sources", []):
        lines.append(
            f"source:        {s['file']} ({s['format']}, {s['size']} bytes, sha256 {s['sha256']})"
        )
        if s.get("info"):
            lines.append(f"               {json.dumps(s['info'], sort_keys=True)}")
    lines.append(f"import stats:  {json.dumps(m.get('stats'), sort_keys=True)}")
    if m.get("category_map"):
        lines.append(f"category map:  {json.dumps(m['category_map'], sort_keys=True)}")
    if v.keyid:
        lines.append(
            f"signed:        by {v.keyid} at {v.signed_at}, expires {v.expires or 'never'}"
        )
    lines.append(f"status:        {_status(found.problems, v.keyid)}")
    lines += [f"  problem:     {p}" for p in found.problems[1:]]
    for line in lines:
        say(line)
    return 0


def _digests(args: argparse.Namespace) -> list[str]:
    if not args.digests and args.from_file is None:
        raise UsageError("hashsets lookup: give HASH… or --from FILE")
    texts = list(args.digests)
    if args.from_file:
        try:
            raw = args.from_file.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as e:
            raise HashSetError(f"{args.from_file}: cannot be read as text") from e
        texts += [ln.strip() for ln in raw.splitlines() if ln.strip() and not ln.startswith("#")]
    if not texts:
        raise HashSetError("no digests to look up: give HASH… or --from FILE")
    for t in texts:
        if len(t) not in BY_HEX_LENGTH or any(c not in "0123456789abcdefABCDEF" for c in t):
            raise HashSetError(f"not an MD5, SHA-1 or SHA-256 digest: {t[:80]!r}")
    return texts


def _lookup(args: argparse.Namespace) -> int:
    texts = _digests(args)
    audit = audit_log()
    found = 0
    with HashIndex.load(args.hashsets, dev=args.dev, audit=audit) as index:
        for t in texts:
            algo = BY_HEX_LENGTH[len(t)]
            digest = bytes.fromhex(t)
            matches = index.lookup({algo: digest})
            found += bool(matches)
            if not matches:
                say(f"{t.lower()}  not found")
            for hit in matches:
                props = index.properties(hit.hashset, digest)
                extra = "  " + json.dumps(props, sort_keys=True) if props else ""
                say(
                    f"{t.lower()}  {hit.hashset} {hit.version}  {hit.disposition}  "
                    f"{hit.category}{extra}"
                )
    audit.append("hashset_lookup", queries=len(texts), found=found, dev=args.dev)
    return 0


def _remove(args: argparse.Namespace) -> int:
    from kiosk.hashsets.store import remove_set

    version = remove_set(args.hashsets, args.name)
    audit_log().append("hashset_removed", name=args.name, version=version)
    say(f"removed {args.name} (version {version})")
    return 0
