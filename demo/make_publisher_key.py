"""Make the kiosk project's *demo* publisher key pair: demo/publisher.key and demo/publisher.pub.

Why it exists: every clone makes its own kiosk key on the first ``make demo``, so nothing
committed can be signed by it, yet the kiosk refuses unsigned rule packs. The bundled packs are
therefore signed by this demo publisher key, whose public half ``make demo`` adds to the demo
kiosk's trust store. The private key is committed on purpose and is worthless: anyone can sign
anything with it, so no real kiosk may ever trust ``demo/publisher.pub``.

Run once (it refuses to overwrite): ``python3 demo/make_publisher_key.py``.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

HERE = Path(__file__).resolve().parent


def main() -> int:
    key_path, pub_path = HERE / "publisher.key", HERE / "publisher.pub"
    if key_path.exists() or pub_path.exists():
        print(f"refusing to overwrite {key_path} / {pub_path}", file=sys.stderr)
        return 1
    private = Ed25519PrivateKey.generate()
    key_path.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    public = private.public_key()
    pub_path.write_bytes(
        public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    print(f"demo publisher key id: {hashlib.sha256(raw).hexdigest()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
