"""Where the Dask scheduler is and how the connection is protected, checked before connecting.

Its own module so the rule is in one place and testable without Dask running: a remote
scheduler needs mutual TLS with the lab's CA (``Security``); plain ``tcp://`` only with an
explicit ``--insecure``, which the report records; ``local`` is a LocalCluster inside the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from distributed.security import Security

from kiosk.errors import ClusterError

LOCAL = "local"  # --scheduler local: an in-process LocalCluster on this machine


@dataclass(frozen=True, slots=True)
class ClusterSpec:
    """``--scheduler`` and its TLS options, checked before anything is opened."""

    address: str  # "local", or tls://host:port (tcp://… only with insecure)
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    insecure: bool = False
    local_workers: int = 0  # LocalCluster size; 0: one per core

    @property
    def scheme(self) -> str:
        if self.address == LOCAL:
            return LOCAL
        scheme, sep, _ = self.address.partition("://")
        return scheme if sep else "tls"

    @property
    def url(self) -> str:
        """The address with its scheme: a bare host:port means TLS, never plain tcp."""
        return (
            self.address
            if "://" in self.address or self.address == LOCAL
            else (f"tls://{self.address}")
        )

    @property
    def transport(self) -> str:
        return {"tls": "tls", "tcp": "insecure"}.get(self.scheme, LOCAL)

    def check(self) -> None:
        """One line for every way the address and the TLS files cannot work, before connecting."""
        scheme = self.scheme
        if scheme == LOCAL:
            return
        if scheme not in ("tls", "tcp"):
            raise ClusterError(
                f"scheduler address {self.address}: kiosk connects with tls:// (or tcp:// "
                f"with --insecure), not {scheme}://"
            )
        if scheme == "tcp" and not self.insecure:
            raise ClusterError(
                f"scheduler {self.address} is plain tcp: a remote scheduler needs TLS "
                "(tls://HOST:PORT with --tls-ca, --tls-cert and --tls-key), or --insecure to "
                "accept an unencrypted, unauthenticated connection (recorded in the report)"
            )
        if scheme == "tls":
            files = {
                "--tls-ca": self.tls_ca,
                "--tls-cert": self.tls_cert,
                "--tls-key": self.tls_key,
            }
            missing = [flag for flag, p in files.items() if p is None]
            if missing:
                raise ClusterError(
                    f"scheduler {self.url} is TLS: give {', '.join(missing)} (the lab's CA "
                    "certificate, and this machine's certificate and key)"
                )
            for flag, p in files.items():
                if p is not None and not p.is_file():
                    raise ClusterError(f"{flag} {p}: not a readable file")

    def security(self) -> Security | None:
        if self.scheme != "tls":
            return None
        return Security(
            tls_ca_file=str(self.tls_ca),
            tls_client_cert=str(self.tls_cert),
            tls_client_key=str(self.tls_key),
            require_encryption=True,
        )
