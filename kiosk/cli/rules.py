"""``kiosk rules …``: forensic staff's commands for rule packs — import, list, check, test, sign.

A thin layer over ``kiosk.packs.check``, ``kiosk.packs.quarantine``, ``kiosk.packs.selftest``,
``kiosk.packs.sign`` and ``kiosk.packs.importer`` (imported inside its command: every scan
worker re-imports this module, and the import's archive readers are not its business).
Errors are ``KioskError``s, which ``kiosk.cli.main.main`` prints as one line with exit code 1.
A pack is named either by its name under ``--rules`` (default ``rules``) or by a path to its
directory.
"""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from kiosk.canonical import utc_text_seconds
from kiosk.cli.common import say
from kiosk.errors import KioskError, RulesError, VerificationError
from kiosk.packs.check import PackCheck, PackSource, find_packs, read_pack
from kiosk.packs.crosscheck import engine_problems, sample_count
from kiosk.packs.engines import ENGINE_NAMES, engine
from kiosk.packs.load import RULEPACK
from kiosk.packs.quarantine import examine
from kiosk.packs.selftest import run_pack_tests
from kiosk.packs.sign import (
    build_manifest,
    pack_ledger,
    read_unverified,
    verify_manifest,
    write_manifest,
)
from kiosk.trust.audit import AuditLog
from kiosk.trust.signing import TrustStore, kiosk_home, load_signer

DEFAULT_VALID_DAYS = 365


def _days(text: str) -> int:
    try:
        value = int(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not a whole number of days: {text!r}") from e
    if not 1 <= value <= 3660:
        raise argparse.ArgumentTypeError("must be between 1 and 3660 days")
    return value


def add_parser(sub: Any) -> None:
    """Register ``kiosk rules`` and its sub-commands on the top-level subparsers."""
    r = sub.add_parser("rules", help="rule packs: import, list, check, test, sign (forensic staff)")
    rsub = r.add_subparsers(dest="rules_command", required=True)
    im = rsub.add_parser("import", help="make a pack of a public collection (folder or archive)")
    ls = rsub.add_parser("list", help="every pack with its version, rules and signature status")
    ck = rsub.add_parser("check", help="validate a pack; problems are printed as file:line")
    ts = rsub.add_parser("test", help="run a pack's positive and negative samples")
    sg = rsub.add_parser("sign", help="check, test and sign a pack (writes manifest.dsse.json)")
    for c in (ck, ts, sg):
        c.add_argument("pack", help="pack name under --rules, or a path to a pack directory")
    _import_arguments(im)
    for c in (im, ls, ck, ts, sg):
        c.add_argument(
            "--rules", type=Path, default=Path("rules"), help="packs directory (default: rules)"
        )
    ls.add_argument("--trust", type=Path, help="trust store (default: $KIOSK_HOME/trust.json)")
    sg.add_argument("--key", type=Path, required=True, help="the publisher's private key (PEM)")
    sg.add_argument(
        "--valid-days",
        type=_days,
        default=DEFAULT_VALID_DAYS,
        help=f"days until the signed pack expires (default {DEFAULT_VALID_DAYS})",
    )


def _pack_dir(args: argparse.Namespace) -> Path:
    text: str = args.pack
    path = Path(text) if "/" in text or text in (".", "..") else args.rules / text
    if not (path / "pack.toml").is_file():
        raise RulesError(f"no rule pack {text!r} (no pack.toml in {path})")
    return path


def _checked(pack_dir: Path) -> tuple[PackSource, PackCheck]:
    """The pack and its check; every problem printed as file:line, then one error.

    A pack of kiosk's own checks clean only if every engine compiles it and matches its samples
    as libyara does (``kiosk.packs.crosscheck``): the scan may run with either. An imported
    pack is examined with libyara, the reference, and its quarantine (``kiosk.packs.quarantine``).
    """
    src = read_pack(pack_dir)
    check = examine(src)
    if not check.problems and not src.imported:
        check = PackCheck(tuple(engine_problems(src)), check.meta, check.files)
    if check.problems:
        for p in check.problems[:-1]:
            say(f"kiosk: error: {p.at(str(pack_dir))}", err=True)
        raise RulesError(check.problems[-1].at(str(pack_dir)))
    return src, check


def _counted(check: PackCheck) -> str:
    """``19 rules``, or for an imported pack ``5,812 active, 71 quarantined``."""
    if check.text is None:
        return f"{len(check.meta)} rules"
    return f"{len(check.meta):,} active, {len(check.quarantined):,} quarantined"


def _list(args: argparse.Namespace) -> int:
    home = kiosk_home()
    trust = TrustStore.load(args.trust or home / "trust.json", missing_ok=True)
    ledger = pack_ledger(home)
    now = datetime.now(UTC)
    for pack_dir in find_packs(args.rules):
        label = f"rule pack {pack_dir.name}"
        try:
            src = read_pack(pack_dir)
            check = examine(src)
            rules = _counted(check) + (
                f", {len(check.problems)} problem(s)" if check.problems else ""
            )
            version = src.version
        except KioskError as e:
            say(f"{pack_dir.name}  broken: {e}")
            continue
        try:
            v = verify_manifest(pack_dir, RULEPACK, pack_dir.name, trust, now, label)
            downgrade = ledger.check(f"{RULEPACK}:{pack_dir.name}", v.manifest.version)
            if downgrade:
                raise VerificationError(f"{label}: {downgrade}")
            status = f"signed by {v.keyid[:16]}…, expires {utc_text_seconds(v.manifest.expires)}"
        except KioskError as e:
            status = f"REFUSED: {str(e).removeprefix(label + ': ')}"
        say(f"{pack_dir.name}  {version}  {rules}  {status}")
    return 0


def _check(args: argparse.Namespace) -> int:
    pack_dir = _pack_dir(args)
    src, check = _checked(pack_dir)
    for q in check.quarantined:
        at = f"{q.file}:{q.line}" if q.line else q.file
        say(f"quarantined: {pack_dir}/{at}: rule {q.rule}: {q.reason}")
    say(
        f"ok: rule pack {src.name} {src.version}: {_counted(check)} in {len(src.sources)} files; "
        f"modules: {', '.join(src.modules) or 'none'}; "
        f"externals: {', '.join(src.externals) or 'none'}"
        + (
            ""
            if src.imported
            else f"; engines {', '.join(engine(n).label for n in ENGINE_NAMES)} agree on its "
            f"{sample_count(src)} samples"
        )
    )
    return 0


def _test(args: argparse.Namespace) -> int:
    report = run_pack_tests(_pack_dir(args))
    for r in report.results:
        got = ", ".join(r.matched) or "nothing"
        say(f"{'ok  ' if r.passed else 'FAIL'}  {r.sample}: {r.expectation} (matched {got})")
    for problem in report.problems:
        say(f"FAIL  {problem}")
    failed = sum(not r.passed for r in report.results) + len(report.problems)
    say(
        f"rule pack {report.pack} {report.version}: {len(report.results)} samples, "
        f"{failed} failure(s)"
    )
    return 0 if report.passed else 1


def _sign(args: argparse.Namespace) -> int:
    pack_dir = _pack_dir(args)
    src, check = _checked(pack_dir)
    tests = run_pack_tests(pack_dir)
    if not tests.passed:
        raise RulesError(
            f"rule pack {src.name}: its tests fail; run 'kiosk rules test {args.pack}'"
        )
    signer = load_signer(args.key)
    created = datetime.now(UTC).replace(microsecond=0)
    manifest = build_manifest(
        RULEPACK,
        src.name,
        src.version,
        pack_dir,
        created,
        created + timedelta(days=args.valid_days),
    )
    previous = read_unverified(pack_dir)
    if previous and previous.version == src.version and previous.files != manifest.files:
        raise RulesError(
            f"rule pack {src.name}: version {src.version} was already signed with different "
            "content; raise 'version' in pack.toml"
        )
    path = write_manifest(pack_dir, manifest, signer)
    AuditLog(kiosk_home() / "audit.jsonl").append(
        "rulepack_signed",
        pack=src.name,
        version=src.version,
        digest=src.digest,
        keyid=signer.keyid,
        expires=utc_text_seconds(manifest.expires),
    )
    say(
        f"signed: rule pack {src.name} {src.version} ({_counted(check)}, "
        f"{len(manifest.files)} files) "
        f"by {signer.keyid[:16]}…, expires {utc_text_seconds(manifest.expires)}"
    )
    say(str(path))
    return 0


def run(args: argparse.Namespace) -> int:
    """Dispatch a parsed ``kiosk rules …`` command; returns the exit code."""
    handlers = {"import": _import, "list": _list, "check": _check, "test": _test, "sign": _sign}
    return handlers[args.rules_command](args)


def _day(text: str) -> str:
    if text and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        raise argparse.ArgumentTypeError(f"not a date as YYYY-MM-DD: {text!r}")
    return text


def _sources(text: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in text.split(",") if x.strip())


def _import_arguments(im: argparse.ArgumentParser) -> None:
    im.add_argument("source", type=Path, help="the collection: a folder, .zip or .tar(.gz)")
    im.add_argument("--pack", required=True, help="the pack's name (a new one, or an imported one)")
    im.add_argument("--upstream", default="", help="the collection's name (default: from SOURCE)")
    im.add_argument("--commit", default="", help="upstream commit (default: from git or archive)")
    im.add_argument(
        "--date", type=_day, default="", help="upstream date YYYY-MM-DD (default: commit's)"
    )
    im.add_argument("--url", default="", help="where the collection is published")
    im.add_argument("--version", default="", help="pack version (default: the previous, raised)")
    im.add_argument("--maintainer", default="", help="who looks after the pack here")
    im.add_argument("--subdir", default="", help="only rules under this folder of the collection")
    im.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="GLOB",
        help="leave out collection paths matching GLOB, e.g. 'deprecated/*' (repeatable; kept "
        "for the next import)",
    )
    for key in ("category", "severity", "date", "author", "description"):
        im.add_argument(
            f"--{key}-from",
            type=_sources,
            help=f"where a rule's {key} comes from: meta:KEY"
            + (" or folder" if key == "category" else "")
            + ", comma-separated, first wins",
        )
    im.add_argument("--default-category", default="", help="category when nothing gives one")
    im.add_argument(
        "--default-severity",
        default="",
        choices=["", "low", "medium", "high", "critical"],
        help="severity when nothing gives one (default: medium)",
    )
    im.add_argument(
        "--no-bench", action="store_true", help="skip the benchmark buffer (no timeout check)"
    )
    im.add_argument(
        "--bench-timeout",
        type=int,
        default=2,
        choices=range(1, 61),
        metavar="SECONDS",
        help="a rule slower than this on the 1 MiB benchmark buffer is quarantined (default 2)",
    )


def _import(args: argparse.Namespace) -> int:
    from kiosk.packs.importer import ImportOptions, import_collection

    keys = ("category", "severity", "date", "author", "description")
    opts = ImportOptions(
        pack=args.pack,
        rules_dir=args.rules,
        upstream=args.upstream,
        commit=args.commit,
        date=args.date,
        url=args.url,
        version=args.version,
        maintainer=args.maintainer,
        subdir=args.subdir,
        exclude=tuple(args.exclude),
        sources={k: getattr(args, f"{k}_from") for k in keys if getattr(args, f"{k}_from")},
        default_category=args.default_category,
        default_severity=args.default_severity,
        bench=not args.no_bench,
        bench_timeout_s=args.bench_timeout,
    )
    r = import_collection(args.source, opts, say)
    src = read_pack(r.pack_dir)
    up = src.upstream
    AuditLog(kiosk_home() / "audit.jsonl").append(
        "rulepack_imported",
        pack=src.name,
        version=r.version,
        digest=src.digest,
        upstream=up["name"],
        commit=up.get("commit", ""),
        active=r.active,
        quarantined=r.quarantined,
    )
    origin = ", ".join(x for x in (up.get("commit", "")[:12], up.get("date", "")) if x)
    say(
        f"imported: rule pack {src.name} {r.version} from {up['name']}"
        + (f" ({origin})" if origin else "")
        + f": {r.active:,} active, {r.quarantined:,} quarantined"
    )
    if r.reasons:
        say("  quarantined: " + ", ".join(f"{n} {k}" for k, n in sorted(r.reasons.items())))
    if r.licence:
        say(f"  licence: {', '.join(r.licence)}")
    else:
        say("  licence: none found in the collection; check its terms before sharing the pack")
    if r.skipped:
        say(f"  not read: {len(r.skipped)} links or special files (never followed)")
    for line in r.diff.lines():
        say(line)
    say(
        f"unsigned: review it, then 'kiosk rules check {src.name}', 'kiosk rules test "
        f"{src.name}' and 'kiosk rules sign {src.name} --key KEY'"
    )
    return 0
