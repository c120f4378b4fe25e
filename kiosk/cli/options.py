"""The run options ``kiosk scan`` and ``kiosk batch`` share, declared and read in one place.

Why: the two commands run the same triage, one exhibit or a manifest's worth. When each kept
its own copy of the options, ``kiosk batch`` fell behind: it had no ``--yara-engine``,
``--no-unallocated``, ``--archive-depth`` or ``--priority-areas``, so a hub's backlog always
ran the defaults. Now an option added here reaches both, and both turn it into the same
``TriageRequest`` fields (``run_fields``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from kiosk.config import (
    DEFAULT_MAX_YARA_BYTES,
    DEFAULT_WORKERS,
    ArchiveLimits,
    KioskConfig,
    check_archive_depth,
    check_max_yara_bytes,
    check_workers,
    int_argument,
)
from kiosk.engine.triage import CLUSTER_ENGINE
from kiosk.errors import UsageError
from kiosk.packs.engines import DEFAULT_ENGINE, ENGINE_NAMES


def add_run_options(p: argparse.ArgumentParser, workers_help: str) -> None:
    """Knowledge, output and how deep and with what to search; the case options stay apart."""
    p.add_argument(
        "--rules", type=Path, default=Path("rules"), help="rule packs directory (default: rules)"
    )
    p.add_argument(
        "--hashsets",
        type=Path,
        default=Path("hashsets"),
        help="hash sets directory (default: hashsets)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("reports"),
        help="where report directories go (default: reports)",
    )
    p.add_argument(
        "--inventory", action="store_true", help="also write files.jsonl, one line per file"
    )
    p.add_argument(
        "--workers", type=int_argument(check_workers), default=DEFAULT_WORKERS, help=workers_help
    )
    p.add_argument(
        "--max-yara-bytes",
        type=int_argument(check_max_yara_bytes),
        default=DEFAULT_MAX_YARA_BYTES,
        help=f"files larger than this are hashed only (default {DEFAULT_MAX_YARA_BYTES >> 20} MiB)",
    )
    p.add_argument(
        "--archive-depth",
        type=int_argument(check_archive_depth),
        default=ArchiveLimits().max_depth,
        help="archive layers expanded inside the evidence (zip, 7z, rar, tar, gz...); 0: none "
        f"(default {ArchiveLimits().max_depth})",
    )
    p.add_argument(
        "--no-yara",
        dest="yara",
        action="store_false",
        help="hash and type only: no rule pack is loaded, the report records that YARA was off",
    )
    p.add_argument(
        "--no-unallocated",
        dest="unallocated",
        action="store_false",
        help="do not search unallocated space, file slack or disk areas outside partitions "
        "(the report records it)",
    )
    p.add_argument(
        "--priority-areas",
        type=_areas,
        metavar="FOLDER,…",
        help="folders scanned first, e.g. Users,home,DCIM,WhatsApp/Media (default: the packs' "
        "priority_areas; '' for plain walk order); every file is still scanned",
    )
    p.add_argument(
        "--yara-engine",
        choices=ENGINE_NAMES,
        help=f"the YARA engine that matches the packs (default: yara_engine in "
        f"$KIOSK_HOME/config.toml, else {DEFAULT_ENGINE}); the report names it and its version",
    )
    p.add_argument("--key", type=Path, help="signing key (default: $KIOSK_HOME/keys/kiosk.key)")
    p.add_argument(
        "--dev",
        action="store_true",
        help="forensic staff only: let unverified packs and sets load (logged, marked in report)",
    )


def _areas(text: str) -> tuple[str, ...]:
    """``--priority-areas a,b/c``: folder names or paths; empty for none."""
    return tuple(a.strip().strip("/") for a in text.split(",") if a.strip().strip("/"))


def check_cluster_engine(args: argparse.Namespace) -> None:
    """Refuse an engine a Dask cluster cannot run before anything is opened."""
    if args.scheduler and args.yara_engine not in (None, CLUSTER_ENGINE):
        raise UsageError(
            f"--yara-engine {args.yara_engine} cannot run on a Dask cluster: its scanner is bound "
            f"to one thread; a cluster run uses {CLUSTER_ENGINE} (leave --yara-engine out)"
        )


def run_fields(args: argparse.Namespace, config: KioskConfig) -> dict[str, Any]:
    """The ``TriageRequest`` fields these options set, the same for a scan and a batch."""
    return {
        "inventory": args.inventory,
        "workers": args.workers,
        "max_yara_bytes": args.max_yara_bytes,
        "allow_self_authorisation": config.allow_self_authorisation,
        "dev": args.dev,
        "yara": args.yara,
        "archives": ArchiveLimits(max_depth=args.archive_depth),
        "unallocated": args.unallocated,
        "yara_engine": args.yara_engine or config.yara_engine or DEFAULT_ENGINE,
        "priority_areas": args.priority_areas,
    }
