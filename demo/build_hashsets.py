"""Rebuild the bundled demo hash sets in hashsets/ from the lists here, signed by the demo key.

    .venv/bin/python demo/build_hashsets.py

The output is committed, so a fresh clone's ``make demo`` and ``make test`` need no import step.
The clock is fixed, so the same lists give the same bytes (and the same set digests in reports).
The key used is the worthless demo key of this folder (see README.md): the demo kiosk home and
the test kiosk home trust it; no real kiosk should.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.hashsets.build import ImportRequest
from kiosk.hashsets.store import import_set, sign_set
from kiosk.trust.signing import Signer, key_id

HERE = Path(__file__).resolve().parent
STORE = HERE.parent / "hashsets"
CLOCK = datetime(2026, 1, 1, tzinfo=UTC)
SETS = (
    ("demo-known-bad", "known_bad", "The SHA-256 of kiosk's harmless known-bad sample file"),
    ("demo-known-good", "known_good", "The SHA-256 of kiosk's harmless known-good sample file"),
)


def demo_signer() -> Signer:
    """The committed demo key, loaded as is: it is public anyway, so its file mode is moot."""
    key = serialization.load_pem_private_key(
        (HERE / "publisher.key").read_bytes(), password=None
    )
    if not isinstance(key, Ed25519PrivateKey):
        raise SystemExit("demo/publisher.key is not an Ed25519 key")
    return Signer(key, key_id(key.public_key()))


def main() -> None:
    signer = demo_signer()
    for name, disposition, description in SETS:
        shutil.rmtree(STORE / name, ignore_errors=True)
        req = ImportRequest(
            name=name,
            sources=(HERE / f"{name}.txt",),
            disposition=disposition,
            format="plain",
            category=disposition.replace("known", "demo_known"),
            version="1.0.0",
            description=description,
        )
        result = import_set(STORE, req, clock=lambda: CLOCK)
        sign_set(STORE, name, signer, clock=lambda: CLOCK)
        print(result.version_dir.relative_to(STORE.parent))


if __name__ == "__main__":
    main()
