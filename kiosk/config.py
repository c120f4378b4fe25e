"""The kiosk's settings: run settings with their defaults and limits, and the per-kiosk policy.

Run settings (worker processes, the YARA size cap and time limit) are defined here once, each
with one check. The two front ends' argument parsers (``kiosk scan``, ``kiosk tui``) and
``TriageRequest`` all use the same check, so a bad value is refused with the same one line
wherever it was given, before any evidence is touched.

Policy that a force sets per kiosk lives in ``$KIOSK_HOME/config.toml``; an absent file means
the defaults. For example whether an officer may authorise their own scan (some forces allow it
for consent cases; the default is no).
"""

from __future__ import annotations

import argparse
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kiosk.errors import ConfigError

DEFAULT_WORKERS = 2  # bench/README.md measures 2 against 1 and 0 (inline)
# More processes than this only add start-up time and memory: each holds the compiled rules and
# a file buffer up to the YARA cap. 0 scans in the calling process (no crash isolation).
MAX_WORKERS = 64
DEFAULT_MAX_YARA_BYTES = 64 << 20  # larger files are hashed only; each worker may hold this much
DEFAULT_YARA_TIMEOUT_S = 60  # per file; a file that takes longer is reported, not skipped
# Above this share of the content bytes hashed only (files over the YARA cap), "no matches within
# scope" would rest mostly on hash sets: the recommendation is INCONCLUSIVE instead. Half: when the
# rules saw less than half the content, no rule-based "no matches" is fair to the supervisor.
# A whole percent, so the report records it exactly (settings.max_hashed_only_percent).
MAX_HASHED_ONLY_PERCENT = 50


def check_workers(value: int) -> int:
    """The number of scan worker processes: 0 (scan inline) to ``MAX_WORKERS``."""
    if not 0 <= value <= MAX_WORKERS:
        raise ConfigError(f"the number of workers must be from 0 to {MAX_WORKERS}, not {value}")
    return value


def check_max_yara_bytes(value: int) -> int:
    """The YARA size cap in bytes: more than 0 (use ``--no-yara`` for a hash-only run)."""
    if value <= 0:
        raise ConfigError(f"the YARA size cap must be more than 0 bytes, not {value}")
    return value


def check_yara_timeout(value: int) -> int:
    """The YARA time limit per file in seconds: more than 0."""
    if value <= 0:
        raise ConfigError(f"the YARA time limit must be more than 0 seconds, not {value}")
    return value


def int_argument(check: Callable[[int], int]) -> Callable[[str], int]:
    """An argparse ``type=`` for a whole-number setting: read, then ``check``\\ ed.

    argparse prints the message as a usage error (exit 2), the same for every front end.
    """

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from e
        try:
            return check(value)
        except ConfigError as e:
            raise argparse.ArgumentTypeError(str(e)) from e

    return parse


@dataclass(frozen=True, slots=True)
class KioskConfig:
    allow_self_authorisation: bool = False
    yara_engine: str | None = None  # None: kiosk.packs.engines.DEFAULT_ENGINE; checked there


def load_config(home: Path) -> KioskConfig:
    path = home / "config.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return KioskConfig()
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"the kiosk configuration {path} cannot be read: {e}") from e
    unknown = set(data) - {"allow_self_authorisation", "yara_engine"}
    if unknown:
        raise ConfigError(f"the kiosk configuration {path} has unknown settings: {sorted(unknown)}")
    allow = data.get("allow_self_authorisation", False)
    if not isinstance(allow, bool):
        raise ConfigError(f"{path}: allow_self_authorisation must be true or false")
    engine = data.get("yara_engine")
    if engine is not None and not isinstance(engine, str):
        raise ConfigError(f"{path}: yara_engine must be a name (libyara or yara-x)")
    return KioskConfig(allow_self_authorisation=allow, yara_engine=engine)
