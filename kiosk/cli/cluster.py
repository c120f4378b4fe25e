"""``--scheduler`` and its TLS options, shared by ``kiosk scan`` and ``kiosk batch``.

Dask is imported only when ``--scheduler`` is given: every other command (and the everyday
one-machine scan, which keeps the kiosk's own worker pool: faster there, see bench/README.md)
starts without it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from kiosk.engine.executor import TaskExecutor


def add_cluster_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="scan the files on a Dask cluster: tls://HOST:PORT of its scheduler, or 'local' "
        "for a LocalCluster on this machine (default: this machine's own worker pool)",
    )
    p.add_argument("--tls-ca", type=Path, metavar="PEM", help="the lab's CA certificate")
    p.add_argument("--tls-cert", type=Path, metavar="PEM", help="this machine's certificate")
    p.add_argument("--tls-key", type=Path, metavar="PEM", help="this machine's TLS private key")
    p.add_argument(
        "--insecure",
        action="store_true",
        help="accept a plain tcp:// scheduler: no encryption, no authentication (recorded in "
        "the report); for a closed lab network only",
    )


def open_executor(args: argparse.Namespace) -> TaskExecutor | None:
    """The connected cluster, or None without ``--scheduler``; a ``ClusterError`` line if the
    address or the TLS files cannot work, before any evidence is opened."""
    if not args.scheduler:
        return None
    from kiosk.engine.cluster import ClusterExecutor
    from kiosk.engine.cluster_spec import ClusterSpec

    spec = ClusterSpec(
        args.scheduler,
        tls_ca=args.tls_ca,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        insecure=args.insecure,
        local_workers=args.workers if args.scheduler == "local" else 0,
    )
    return ClusterExecutor(spec)


def absolute(paths: tuple[Path, ...]) -> tuple[Path, ...]:
    """Workers open the evidence by the coordinator's paths: they must not depend on its cwd."""
    return tuple(p.absolute() for p in paths)
