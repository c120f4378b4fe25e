"""The kiosk's own settings, from ``$KIOSK_HOME/config.toml``; absent file means the defaults.

Only policy that a force sets per kiosk lives here, for example whether an officer may authorise
their own scan (some forces allow it for consent cases; the default is no).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from kiosk.errors import KioskError


@dataclass(frozen=True, slots=True)
class KioskConfig:
    allow_self_authorisation: bool = False


def load_config(home: Path) -> KioskConfig:
    path = home / "config.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return KioskConfig()
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise KioskError(f"the kiosk configuration {path} cannot be read: {e}") from e
    unknown = set(data) - {"allow_self_authorisation"}
    if unknown:
        raise KioskError(f"the kiosk configuration {path} has unknown settings: {sorted(unknown)}")
    allow = data.get("allow_self_authorisation", False)
    if not isinstance(allow, bool):
        raise KioskError(f"{path}: allow_self_authorisation must be true or false")
    return KioskConfig(allow_self_authorisation=allow)
