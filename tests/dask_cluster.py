"""A real Dask cluster on 127.0.0.1 for the tests: ``dask scheduler`` and ``dask worker``
processes started and stopped by the suite, with TLS certificates made here by ``cryptography``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kiosk.engine.cluster_spec import ClusterSpec

ROOT = Path(__file__).resolve().parent.parent
FAULTS = Path(__file__).resolve().parent / "dask_faults.py"


@dataclass(frozen=True)
class Certs:
    ca: Path
    cert: Path
    key: Path


def make_certs(folder: Path) -> Certs:
    """A throw-away CA and one certificate for 127.0.0.1, used by scheduler, workers and client
    alike (mutual TLS: each side checks the other against the CA)."""
    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kiosk test lab CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    out = Certs(folder / "ca.pem", folder / "node.pem", folder / "node.key")
    out.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    out.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    out.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    out.key.chmod(0o600)
    return out


@dataclass
class DaskCluster:
    """The processes of one test cluster and how to reach it."""

    address: str
    certs: Certs | None
    scheduler: subprocess.Popen[bytes]
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def spec(self) -> ClusterSpec:
        if self.certs is None:
            return ClusterSpec(self.address, insecure=True)
        return ClusterSpec(
            self.address, tls_ca=self.certs.ca, tls_cert=self.certs.cert, tls_key=self.certs.key
        )

    def kill_scheduler(self) -> None:
        self.scheduler.send_signal(signal.SIGKILL)
        self.scheduler.wait(10)


def _tls_args(certs: Certs | None) -> list[str]:
    if certs is None:
        return []
    return [
        "--tls-ca-file",
        str(certs.ca),
        "--tls-cert",
        str(certs.cert),
        "--tls-key",
        str(certs.key),
    ]


def _wait_for_workers(cluster: DaskCluster, n: int) -> None:
    """Workers import distributed and kiosk twice (nanny, then worker): on a busy two-core
    machine that takes tens of seconds, so the suite waits here, once, not in the engine."""
    from distributed import Client

    spec = cluster.spec()
    with Client(spec.url, security=spec.security(), timeout=120, set_as_default=False) as client:
        client.wait_for_workers(n, timeout=300)


@contextlib.contextmanager
def dask_cluster(
    folder: Path, *, workers: int = 2, certs: Certs | None = None, env: dict[str, str] | None = None
) -> Iterator[DaskCluster]:
    """``python -m dask scheduler`` and ``workers`` times ``python -m dask worker`` (each a nanny
    with one single-threaded worker process, preloaded with the fault injector), stopped on exit."""
    folder.mkdir(parents=True, exist_ok=True)
    scheduler_file = folder / "scheduler.json"
    base_env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        # two deaths on one task and the scheduler gives up on it (the default is 3: slower tests)
        "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "1",
        "DASK_DISTRIBUTED__LOGGING__DISTRIBUTED": os.environ.get("KIOSK_TEST_DASK_LOG", "error"),
        **(env or {}),
    }
    protocol = "tls" if certs else "tcp"
    logs = contextlib.ExitStack()  # the processes' output files, closed once they are stopped
    log = logs.enter_context((folder / "scheduler.log").open("wb"))
    scheduler = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dask",
            "scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--protocol",
            protocol,
            "--no-dashboard",
            # if the suite is killed before it can stop them, nothing outlives it for long:
            # an idle scheduler exits, and its workers follow it
            "--idle-timeout",
            "600s",
            "--scheduler-file",
            str(scheduler_file),
            *_tls_args(certs),
        ],
        env=base_env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=folder,
    )
    cluster = DaskCluster("", certs, scheduler)
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() or not scheduler_file.read_text().strip():
            if scheduler.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((folder / "scheduler.log").read_text(errors="replace"))
            time.sleep(0.1)
        cluster.address = json.loads(scheduler_file.read_text())["address"]
        for i in range(workers):
            wlog = logs.enter_context((folder / f"worker{i}.log").open("wb"))
            cluster.workers.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "dask",
                        "worker",
                        cluster.address,
                        "--nthreads",
                        "1",
                        "--nworkers",
                        "1",
                        "--no-dashboard",
                        "--death-timeout",
                        "120",
                        "--host",
                        "127.0.0.1",
                        "--name",
                        f"w{i}",
                        "--local-directory",
                        str(folder / f"w{i}"),
                        "--preload",
                        str(FAULTS),
                        *_tls_args(certs),
                    ],
                    env=base_env,
                    stdout=wlog,
                    stderr=subprocess.STDOUT,
                    cwd=folder,
                )
            )
        _wait_for_workers(cluster, workers)
        yield cluster
    finally:
        for p in [*cluster.workers, scheduler]:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in [*cluster.workers, scheduler]:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        logs.close()
