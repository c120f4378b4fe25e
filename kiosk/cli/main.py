"""The headless front end: ``kiosk scan …`` and friends, a thin layer over ``run_triage``.

Exit codes: 0 the scan completed (whatever it found); 1 a clear one-line error on stderr —
bad evidence, broken rules, unwritable output, or a run that failed; 2 a usage error. No
traceback ever reaches the officer: this is one of the two places that catch broadly.

``kiosk report verify`` (and show, html, case, which verify first) answers on stdout with one of
three: ``valid: …`` (0); ``invalid: …`` (1), the report was checked and fails; ``cannot verify:
…`` (3), nothing was judged — no report at that path, or no usable trust store on this kiosk —
so a script never takes a kiosk without its trust store for a tampered report.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import signal
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TextIO

from kiosk import __version__
from kiosk.cli import batch as cli_batch
from kiosk.cli import hashsets as cli_hashsets
from kiosk.cli import rules as cli_rules
from kiosk.cli import unlock as cli_unlock
from kiosk.cli.cluster import absolute, add_cluster_arguments, open_executor
from kiosk.cli.common import audit_log, parse_time, read_secret, write_output
from kiosk.cli.options import add_run_options, check_cluster_engine, run_fields
from kiosk.cli.secret import backup_password
from kiosk.config import (
    DEFAULT_WORKERS,
    load_config,
)
from kiosk.engine.scope import Scope
from kiosk.engine.triage import Hooks, TriageRequest, run_triage
from kiosk.errors import KioskError, SigningError, UsageError
from kiosk.model import CaseRecord, LegalBasis, Outcome, Progress
from kiosk.processes import warm_up
from kiosk.reports.attestation import (
    DECISIONS,
    VerifiedReport,
    uncovered_files,
    verify_report_dir,
    write_review,
)
from kiosk.reports.case import case_bundle, case_json
from kiosk.reports.decode import read_report
from kiosk.reports.html import render_html
from kiosk.reports.text import render_text, visible
from kiosk.trust.audit import Checkpoint, verify_log
from kiosk.trust.signing import (
    OWN_KEY_PURPOSES,
    PURPOSES,
    REVIEWING,
    TRUSTED_KEY_PURPOSES,
    TrustStore,
    init_key,
    key_id,
    kiosk_home,
    load_public,
    load_signer,
    new_key,
    purposes_text,
)
from kiosk.tui import add_parser as add_tui_parser
from kiosk.tui import run_app


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kiosk", description="Forensic triage of a seized device image."
    )
    p.add_argument("--version", action="version", version=f"kiosk {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser(
        "scan",
        help="triage one image (raw, split raw, E01, VMDK, VHD, VHDX, QCOW) or logical evidence "
        "(zip, tar, folder, iTunes backup, Android backup), read-only",
    )
    s.add_argument("image", type=Path, help="the image, or its first segment")
    s.add_argument(  # a default, or argparse (3.11) calls the empty list "required"
        "segments",
        type=Path,
        nargs="*",
        default=[],
        help="further segments, if not found automatically",
    )
    s.add_argument(
        "--parent",
        type=Path,
        action="append",
        default=[],
        metavar="PATH",
        help="the parent of a differencing image (VHD, QCOW, VMDK snapshot) if it is not "
        "beside it; repeat for the parent's parent",
    )
    s.add_argument(
        "--password-file",
        type=Path,
        metavar="PATH",
        help="the password of an encrypted iTunes or Android backup: first line of PATH, or of "
        "standard input with '-' (never on the command line); without it kiosk asks at a "
        "terminal, or lists the backup as not examined",
    )
    s.add_argument("--case", required=True, help="case reference")
    s.add_argument("--exhibit", required=True, help="exhibit reference of the device")
    s.add_argument("--officer", required=True, help="ID of the officer running the scan")
    s.add_argument("--authorised-by", required=True, help="ID of the authorising officer")
    s.add_argument("--legal-basis", required=True, choices=[b.value for b in LegalBasis])
    s.add_argument(
        "--legal-ref", required=True, help="warrant number, statutory power, consent form …"
    )
    s.add_argument("--device", default="", help="optional description of the device")
    s.add_argument(
        "--scope",
        type=_categories,
        metavar="CATEGORY,…",
        help="the categories the authority covers (rule-pack or hash-set categories, comma-"
        "separated; default: all the loaded packs and sets carry); matches outside them are "
        "not findings, only counted in the report",
    )
    add_run_options(s, f"worker processes; 0 scans inline (default {DEFAULT_WORKERS})")
    cli_unlock.add_arguments(s)
    add_cluster_arguments(s)
    cli_batch.add_parser(sub)

    keys = sub.add_parser("keys", help="the kiosk's signing key and trust store")
    ksub = keys.add_subparsers(dest="keys_command", required=True)
    ki = ksub.add_parser("init", help="create this kiosk's Ed25519 key pair and print its key id")
    kt = ksub.add_parser(
        "trust",
        help="trust a public key (PEM file, or base64 of the raw key) for what it may sign; "
        "given a key already trusted, set its purposes",
    )
    kt.add_argument("public_key", help="path to a PEM public key, or base64 text")
    kt.add_argument("--label", default="", help="whose key this is")
    kt.add_argument("--not-after", help="last moment the key may sign (ISO 8601, UTC)")
    for k, default in ((ki, OWN_KEY_PURPOSES), (kt, TRUSTED_KEY_PURPOSES)):
        k.add_argument(
            "--purpose",
            action="append",
            choices=list(PURPOSES),
            help="what the key may sign, repeatable: report (this kiosk's reports), publish "
            "(rule packs and hash sets), review (a supervisor's review of a report); default: "
            + " and ".join(default),
        )
    kn = ksub.add_parser(
        "new",
        help="make a person's key pair (a supervisor's, for reviews): FILE (private, mode 0600, "
        "encrypted with a passphrase asked for at the terminal) and FILE.pub; nothing is trusted",
    )
    kn.add_argument("file", type=Path, help="where to write the private key (never overwritten)")
    kn.add_argument(
        "--no-passphrase",
        action="store_true",
        help="leave the private key unencrypted (only on a token that protects it)",
    )
    kr = ksub.add_parser("revoke", help="revoke a trusted key from now (or --at) on")
    kr.add_argument("keyid", help="key id (or a unique prefix)")
    kr.add_argument("--at", help="revocation time (ISO 8601); default now")
    for k in (kt, kr):
        k.add_argument("--trust", type=Path, help="trust store (default: $KIOSK_HOME/trust.json)")

    rep = sub.add_parser("report", help="verify and read signed reports")
    rsub = rep.add_subparsers(dest="report_command", required=True)
    rv = rsub.add_parser("verify", help="check a report directory's signature and files")
    rs = rsub.add_parser("show", help="print a verified report's summary")
    rh = rsub.add_parser("html", help="write a printable HTML page of a verified report")
    rh.add_argument("--out", type=Path, help="where to write it (default: DIR/report.html)")
    rc = rsub.add_parser("case", help="write a CASE 1.5 JSON-LD bundle of a verified report")
    rc.add_argument("--out", type=Path, help="where to write it (default: DIR/report.case.jsonld)")
    for r in (rv, rs, rh, rc):
        r.add_argument("directory", type=Path, help="the report directory")
        r.add_argument("--trust", type=Path, help="trust store (default: $KIOSK_HOME/trust.json)")

    rw = sub.add_parser("review", help="record a supervisor's signed decision on a report")
    rw.add_argument("directory", type=Path, help="the report directory")
    rw.add_argument("--decision", required=True, choices=DECISIONS)
    rw.add_argument("--reason", required=True, help="why")
    rw.add_argument(
        "--key",
        type=Path,
        required=True,
        help="the reviewing supervisor's own key file (kiosk keys new); its passphrase is asked "
        "for; the reviewer's name is the label this kiosk trusts the key under",
    )
    rw.add_argument("--trust", type=Path, help="trust store (default: $KIOSK_HOME/trust.json)")

    cli_hashsets.add_parser(sub)
    cli_rules.add_parser(sub)
    add_tui_parser(sub)  # `kiosk` alone starts it too (see main)
    au = sub.add_parser("audit", help="the kiosk's hash-chained audit log")
    asub = au.add_subparsers(dest="audit_command", required=True)
    av = asub.add_parser("verify", help="check the chain, and against reports' checkpoints")
    av.add_argument(
        "--checkpoint",
        type=Path,
        nargs="*",
        default=[],
        metavar="REPORT",
        help="report directories whose embedded checkpoints to check",
    )
    av.add_argument("--log", type=Path, help="audit log (default: $KIOSK_HOME/audit.jsonl)")
    av.add_argument(
        "--trust",
        type=Path,
        help="trust store the reports are verified with (default: $KIOSK_HOME/trust.json)",
    )
    return p


def _categories(text: str) -> frozenset[str]:
    """``--scope a,b``: the names, blanks dropped (none at all is refused by the engine)."""
    return frozenset(c.strip() for c in text.split(",") if c.strip())


def _trust(path: Path | None) -> TrustStore:
    return _load_store(path or kiosk_home() / "trust.json")


def _load_store(path: Path, missing_ok: bool = False) -> TrustStore:
    """The trust store; one written before key purposes existed is given them once, and said so.

    The purposes assumed for such a store (``kiosk.trust.signing``) are written back, so the
    note appears once; a store this user cannot write keeps the note until someone can.
    """
    store = TrustStore.load(path, missing_ok=missing_ok)
    if store.assumed:
        for keyid in store.assumed:
            k = store.keys[keyid]
            print(
                f"kiosk: note: {path} had no key purposes: key {keyid[:16]}… "
                f"({visible(k.label) or 'no label'}) is now trusted for "
                f"{purposes_text(k.purposes)} only "
                "(to change: 'kiosk keys trust KEY --purpose …')",
                file=sys.stderr,
            )
        with contextlib.suppress(SigningError):
            store.save(path)
    return store


CANNOT_VERIFY = 3  # nothing was judged: not "invalid" (1), which says the report fails


def _time_arg(text: str | None) -> datetime:
    return datetime.now(UTC) if text is None else parse_time(text)


def _keys(args: argparse.Namespace) -> int:
    if args.keys_command == "init":
        purposes = tuple(args.purpose or OWN_KEY_PURPOSES)
        signer = init_key(purposes=purposes)
        audit_log().append("key_created", keyid=signer.keyid, purposes=list(purposes))
        print(f"key id: {signer.keyid}")
        print(f"trusted here for {purposes_text(frozenset(purposes))}")
        print(f"private key: {visible(str(kiosk_home() / 'keys' / 'kiosk.key'))} (mode 0600)")
        return 0
    if args.keys_command == "new":
        return _new_key(args)
    path = args.trust or kiosk_home() / "trust.json"
    store = _load_store(path, missing_ok=args.keys_command == "trust")
    if args.keys_command == "trust":
        src = Path(args.public_key)
        text = src.read_text(encoding="utf-8") if src.is_file() else args.public_key
        public = load_public(text)
        purposes = tuple(args.purpose or TRUSTED_KEY_PURPOSES)
        known = store.keys.get(key_id(public))
        if known is not None and args.purpose:  # a trusted key's purposes, set explicitly
            if REVIEWING in purposes and not known.label.strip():
                raise SigningError(
                    "a key trusted for reviewing reports needs a label (the reviewer's name): "
                    "revoke it and trust it again with --label NAME"
                )
            known.purposes = frozenset(purposes)
            store.save(path)
            audit_log().append("key_purposes_set", keyid=known.keyid, purposes=list(purposes))
            print(f"trusted: {known.keyid} for {purposes_text(known.purposes)}")
            return 0
        key = store.add(
            public,
            label=args.label,
            not_after=_time_arg(args.not_after) if args.not_after else None,
            purposes=purposes,
        )
        store.save(path)
        audit_log().append(
            "key_trusted", keyid=key.keyid, label=args.label, purposes=list(purposes)
        )
        print(f"trusted: {key.keyid} for {purposes_text(key.purposes)}")
        return 0
    key = store.revoke(args.keyid, _time_arg(args.at))
    store.save(path)
    audit_log().append("key_revoked", keyid=key.keyid)
    print(f"revoked: {key.keyid}")
    return 0


MIN_PASSPHRASE = 8


def _new_key(args: argparse.Namespace) -> int:
    passphrase = b""
    if not args.no_passphrase:
        passphrase = read_secret("Passphrase for the new key: ")
        if sys.stdin.isatty() and read_secret("Again: ") != passphrase:
            raise SigningError("the two passphrases differ; no key was made")
        if len(passphrase) < MIN_PASSPHRASE:
            raise SigningError(
                f"the passphrase must have at least {MIN_PASSPHRASE} characters; no key was made"
            )
    signer = new_key(args.file, passphrase)
    audit_log().append("person_key_created", keyid=signer.keyid)
    print(f"key id: {signer.keyid}")
    print(f"private key: {visible(str(args.file))} (mode 0600)")
    print(f"public key: {visible(str(args.file))}.pub (to be trusted with 'kiosk keys trust')")
    return 0


def _verify_answer(args: argparse.Namespace) -> VerifiedReport | tuple[int, str]:
    """The verified report, or the exit code and the one line that says why there is none."""
    path = args.trust or kiosk_home() / "trust.json"
    if not path.exists():
        hint = (
            ""
            if args.trust
            else " (run 'kiosk keys init' and 'kiosk keys trust KEY' to make one, set KIOSK_HOME "
            "to this kiosk's home, or give --trust FILE)"
        )
        return CANNOT_VERIFY, f"cannot verify: no trust store at {path}{hint}"
    try:
        store = _load_store(path)
    except SigningError as e:
        return CANNOT_VERIFY, f"cannot verify: {visible(str(e))}"
    if not args.directory.exists():
        return CANNOT_VERIFY, f"cannot verify: {visible(str(args.directory))}: not found"
    try:
        v = verify_report_dir(args.directory, store, audit=audit_log().path)
    except KioskError as e:
        return 1, f"invalid: {visible(str(e))}"
    audit_log().append("report_verified", report_id=v.report.get("report_id"), keyid=v.keyid)
    return v


def _report(args: argparse.Namespace) -> int:
    v = _verify_answer(args)
    if isinstance(v, tuple):
        code, line = v
        print(line)
        return code
    if args.report_command == "verify":
        print(f"valid: signed by {v.keyid} at {visible(v.signed_at)}")
        print(_identity(v))
        for rv in v.reviews:
            print(
                f"review: {visible(rv.decision)} by {visible(rv.reviewer)} at {visible(rv.time)} "
                f"(signed by {rv.keyid}): valid"
            )
        _print_unsigned(v)
        return 0
    if args.report_command == "show":
        print(render_text(read_report(v.report)))
        print(f"Signed by {v.keyid} at {visible(v.signed_at)}: valid")
        for rv in v.reviews:
            print(
                f"Review: {visible(rv.decision)} by {visible(rv.reviewer)} at {visible(rv.time)}: "
                f"{visible(rv.reason)}"
            )
        _print_unsigned(v)
        return 0
    if args.report_command == "case":
        out = args.out or args.directory / "report.case.jsonld"
        write_output(out, case_json(case_bundle(v)))
    else:
        out = args.out or args.directory / "report.html"
        write_output(out, render_html(v).encode())
    print(visible(str(out)))
    return 0


def _identity(v: VerifiedReport) -> str:
    """Which report this is, by its signed fields: the id (also the folder's name), the case and
    the exhibit, so a reader checks them against the paperwork rather than trusting a path."""
    case = v.report.get("case")
    case = case if isinstance(case, dict) else {}
    return (
        f"report {visible(str(v.report.get('report_id')))}  "
        f"case {visible(str(case.get('case_ref')))}  "
        f"exhibit {visible(str(case.get('exhibit_ref')))}"
    )


def _print_unsigned(v: VerifiedReport) -> None:
    """Name every file in the folder that the signature does not cover (a planted page…)."""
    for name in uncovered_files(v):
        print(f"note: extra file not covered by the signature: {visible(name)}")


def _review(args: argparse.Namespace) -> int:
    store = _trust(args.trust)
    v = verify_report_dir(args.directory, store, audit=audit_log().path)
    signer = load_signer(args.key, lambda: read_secret(f"Passphrase for {args.key}: "))
    written = write_review(v, args.decision, args.reason, signer, datetime.now(UTC), store)
    audit_log().append(
        "review_recorded",
        report_id=v.report.get("report_id"),
        decision=args.decision,
        reviewer=written.reviewer,
        keyid=signer.keyid,
        report_sha256=v.envelope_sha256,
        review=written.path.name,
        sha256=written.sha256,
    )
    print(f"review by {visible(written.reviewer)}: {visible(str(written.path))}")
    return 0


def _checkpoint_of(directory: Path, trust: TrustStore) -> Checkpoint:
    """The audit checkpoint a report carries, taken only from a report whose signature verifies:
    an unsigned or edited report.json could otherwise vouch for a rewritten log."""
    if not directory.exists():
        raise KioskError(f"{directory}: not found")
    if not (directory / "report.json").is_file():
        raise KioskError(f"{directory}: not a report directory (no report.json)")
    try:
        report = verify_report_dir(directory, trust).report
    except KioskError as e:
        raise KioskError(f"{directory}: its checkpoint is not used: invalid: {e}") from e
    try:
        cp = report["audit_checkpoint"]
        return Checkpoint(int(cp["size"]), str(cp["head"]))
    except (ValueError, KeyError, TypeError) as e:
        raise KioskError(f"{directory}: its report.json holds no readable audit checkpoint") from e


def _audit_cmd(args: argparse.Namespace) -> int:
    trust = _trust(args.trust) if args.checkpoint else None
    checkpoints = [_checkpoint_of(d, trust) for d in args.checkpoint if trust is not None]
    result = verify_log(args.log or kiosk_home() / "audit.jsonl", checkpoints)
    print(
        f"valid: {result.entries} entries, head {result.head}, "
        f"{result.checkpoints_checked} checkpoint(s) consistent"
    )
    return 0


class _ProgressLine:
    """One self-overwriting progress line on a terminal; silent when stderr is not a TTY."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._tty = stream.isatty()

    def __call__(self, p: Progress) -> None:
        if not self._tty:
            return
        frac = p.fraction
        rate = p.bytes_done / p.elapsed_s / 1e6 if p.elapsed_s > 0 else 0.0
        if frac is None:  # no fraction against a total that is still growing
            self._stream.write(
                f"\r[{'still counting files':^30}] {'':6}  files {p.files_done}/{p.files_total}+  "
                f"{rate:7.1f} MB/s  ETA     -   findings {p.findings}  "
            )
            self._stream.flush()
            return
        eta = (p.elapsed_s / frac - p.elapsed_s) if frac > 0 else 0.0
        bar = "#" * int(frac * 30)
        self._stream.write(
            f"\r[{bar:<30}] {frac:6.1%}  files {p.files_done}/{p.files_total}  "
            f"{rate:7.1f} MB/s  ETA {eta:5.0f}s  findings {p.findings}  "
        )
        self._stream.flush()

    def done(self) -> None:
        if self._tty:
            self._stream.write("\n")


def _scan(args: argparse.Namespace) -> int:
    warm_up()  # the helpers' server imports while the key, config and evidence are read
    config = load_config(kiosk_home())
    case = CaseRecord(
        case_ref=args.case,
        exhibit_ref=args.exhibit,
        officer=args.officer,
        authorised_by=args.authorised_by,
        legal_basis=LegalBasis(args.legal_basis),
        legal_ref=args.legal_ref,
        device_description=args.device,
    )
    signer = load_signer(args.key)
    check_cluster_engine(args)
    executor = open_executor(args)  # None without --scheduler; workers there open our paths
    fix = absolute if executor else tuple
    req = TriageRequest(
        case=case,
        image=fix((args.image, *args.segments)),
        parents=fix(tuple(args.parent)),
        rules_dir=fix((args.rules,))[0],
        hashsets_dir=fix((args.hashsets,))[0],
        out_dir=args.out,
        scope=None if args.scope is None else Scope(categories=args.scope),
        secret=backup_password(args.image, args.password_file),
        keys=cli_unlock.read_keys(args.unlock),
        **run_fields(args, config),
    )
    progress = _ProgressLine(sys.stderr)
    hooks = Hooks(on_progress=progress, signer=signer, audit=audit_log(), executor=executor)

    def _interrupt(_sig: int, _frame: FrameType | None) -> None:
        hooks.cancel.set()

    previous = signal.signal(signal.SIGINT, _interrupt)
    try:
        result = run_triage(req, hooks)
    finally:
        signal.signal(signal.SIGINT, previous)
        progress.done()
        if executor is not None:
            executor.close()
    print(render_text(result.report))
    print(visible(str(result.report_dir)))
    for line in cli_hashsets.dev_warnings(result.report):
        print(visible(line), file=sys.stderr)
    outcome = result.report.outcome
    if outcome.status is Outcome.FAILED:
        print(f"kiosk: error: the scan failed: {visible(outcome.reason or '')}", file=sys.stderr)
        return 1
    if outcome.status is Outcome.CANCELLED:
        print("kiosk: the scan was cancelled; the report is marked cancelled", file=sys.stderr)
        return 1
    return 0


def _as_module() -> None:
    """Present the ``kiosk`` console script as ``python -m kiosk`` presents itself.

    The script pip writes runs as ``__main__`` without a module spec, so multiprocessing would
    re-run it in every helper process (the walker, each scan worker) to rebuild ``__main__``:
    the whole command line imported again, ~0.1 s of CPU and of start-up per helper. Under
    ``python -m kiosk`` the spec names ``kiosk.__main__``, which helpers skip; the helpers' code
    lives in ``kiosk.engine`` and ``kiosk.evidence`` and needs nothing from the script.
    """
    script = sys.modules.get("__main__")
    if (
        script is not None
        and getattr(script, "__spec__", None) is None
        and Path(getattr(script, "__file__", "") or "").name == "kiosk"  # that script, no other
    ):
        script.__spec__ = importlib.util.find_spec("kiosk.__main__")


def main(argv: Sequence[str] | None = None) -> int:
    _as_module()
    argv = list(sys.argv[1:] if argv is None else argv) or ["tui"]  # `kiosk` opens the app
    args = build_parser().parse_args(argv)
    try:
        if args.command == "tui":
            return run_app(args)
        if args.command == "scan":
            return _scan(args)
        if args.command == "batch":
            return cli_batch.run(args)
        if args.command == "keys":
            return _keys(args)
        if args.command == "report":
            return _report(args)
        if args.command == "review":
            return _review(args)
        if args.command == "audit":
            return _audit_cmd(args)
        if args.command == "hashsets":
            return cli_hashsets.run(args)
        if args.command == "rules":
            return cli_rules.run(args)
    except UsageError as e:  # a usage error argparse cannot see, with argparse's exit code
        print(f"kiosk: error: {visible(str(e))}", file=sys.stderr)
        return 2
    except KioskError as e:  # messages quote paths, names and fields: visible() keeps them inert
        print(f"kiosk: error: {visible(str(e))}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader went away (`kiosk report show … | head`): that is not our error to report.
        # Point stdout at /dev/null so the interpreter's final flush cannot raise it again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 1
    except Exception as e:  # the front end's promise: one line, never a traceback
        print(f"kiosk: internal error ({type(e).__name__}): {visible(str(e))}", file=sys.stderr)
        return 1
    return 2
