"""The kiosk's own cache of compiled rules, which it loads only if it can prove it wrote them.

Compiled YARA rules can run code when loaded, so precompiled rules from anywhere else are never
loaded (ARCHITECTURE.md). Yet compiling every pack before every scan is repeated work, so the
kiosk keeps its *own* compile output under ``$KIOSK_HOME/cache/rules/<key>.kcr``, where ``key``
is a SHA-256 over the engine that compiled it and its version (libyara or YARA-X, see
``kiosk.packs.engines``), the libyara version (the reference that validates), the kiosk version
(which fixes the validation rules), the externals, and each pack's name and source digest.

Why an HMAC and not just a digest in the file name: anyone who can drop a file in the cache
can also name it after the right key. Each entry is prefixed with HMAC-SHA256 under a random
secret in ``$KIOSK_HOME/keys/cache.key`` (0600, made on first use), over the entry's header
(key, engine and version, rule meta) and the compiled bytes. A missing, foreign, stale or altered
entry fails that check and is simply recompiled from source — the cache can make a scan faster,
never different.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
import stat
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yara

_DOMAIN = b"kiosk-rules-cache-v1\0"
_TAG = 32
_SECRET_BYTES = 32


@dataclass(frozen=True, slots=True)
class CacheEntry:
    blob: bytes  # the engine's serialised rules, as this kiosk wrote them
    header: dict[str, Any]  # what the caller stored beside it (meta, counts)


class RulesCache:
    """Read and write verified cache entries; every failure is reported as a reason string."""

    def __init__(self, home: Path) -> None:
        self.directory = home / "cache" / "rules"
        self._secret_path = home / "keys" / "cache.key"

    def _secret(self, create: bool) -> bytes | None:
        path = self._secret_path
        if create and not path.exists():
            # written whole under a name of its own, then linked into place: a second writer
            # (another process, or the app's compile-ahead thread) never reads it half-written
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(secrets.token_bytes(_SECRET_BYTES))
            try:
                with contextlib.suppress(FileExistsError):  # the other writer's stands
                    os.link(tmp, path)
            finally:
                tmp.unlink()
        try:
            mode = path.stat().st_mode
            secret = path.read_bytes()
        except FileNotFoundError:
            return None
        if mode & (stat.S_IRWXG | stat.S_IRWXO) or len(secret) != _SECRET_BYTES:
            return None  # others could forge entries: treat the cache as absent
        return secret

    def _path(self, key: str) -> Path:
        return self.directory / f"{key}.kcr"

    def load(self, key: str, engine: str) -> tuple[CacheEntry | None, str | None]:
        """The entry for ``key`` made by ``engine`` (its label), or None and why it was rejected."""
        path = self._path(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None, None
        except OSError as e:
            return None, f"unreadable: {e.strerror}"
        secret = self._secret(create=False)
        if secret is None:
            return None, "no usable cache secret (missing, or readable by others)"
        tag, body = data[:_TAG], data[_TAG:]
        if not hmac.compare_digest(tag, hmac.new(secret, _DOMAIN + body, hashlib.sha256).digest()):
            return None, "not written by this kiosk, or altered"
        head, sep, blob = body.partition(b"\n")
        try:
            header = json.loads(head)
        except ValueError:
            header = None
        if not sep or not isinstance(header, dict) or header.get("key") != key:
            return None, "malformed"
        if header.get("libyara") != yara.__version__:
            return None, "made by another libyara version"
        if header.get("engine") != engine:
            return None, f"made by {header.get('engine') or 'libyara'}, not {engine}"
        return CacheEntry(blob, header), None

    def store(self, key: str, blob: bytes, header: dict[str, Any], engine: str) -> str | None:
        """Write an entry atomically; returns why it could not be written, or None."""
        secret = self._secret(create=True)
        if secret is None:
            return "no usable cache secret (readable by others)"
        body = (
            json.dumps(
                {**header, "key": key, "libyara": yara.__version__, "engine": engine},
                sort_keys=True,
            ).encode()
            + b"\n"
            + blob
        )
        tag = hmac.new(secret, _DOMAIN + body, hashlib.sha256).digest()
        path = self._path(key)
        # one writer's own file: another process, or another thread of this one (the app
        # compiles ahead of a scan, kiosk.engine.standby, while Run may compile the same)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(tag + body)
            tmp.replace(path)
        except OSError as e:
            with contextlib.suppress(OSError):
                tmp.unlink()
            return f"cannot write {path}: {e.strerror}"
        return None
