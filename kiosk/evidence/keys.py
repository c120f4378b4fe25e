"""Secrets an officer gives to unlock encrypted volumes, kept out of every output.

A ``VolumeKeys`` travels with the ``EvidenceRef`` to every process that opens the evidence
(the walker and the scan workers each unlock the volume for themselves): it is pickled over
their pipes, never put on a command line. Its ``repr`` names only how many secrets it holds,
so a log line, a traceback's locals or a report field built from it by mistake shows no
secret. Reports record only the *kind* of secret that unlocked a volume (``KIND_NAMES``).

The front ends read secrets from a file, standard input or a terminal prompt (``kiosk.cli``);
nothing here reads a terminal or a file.

Kinds: ``password`` (a LUKS1 or LUKS2 passphrase). BitLocker recovery passwords and startup keys and
FileVault recovery keys are not taken yet: no test image of those could be had here, and an
unlock path that was never run against a real volume is kept out rather than shipped untested.
"""

from __future__ import annotations

from dataclasses import dataclass

KIND_NAMES = {"password": "a passphrase"}


@dataclass(frozen=True, slots=True)
class VolumeKeys:
    """The secrets offered to every encrypted volume, tried in the order given."""

    passwords: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"VolumeKeys(<{len(self.passwords)} password(s) withheld>)"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self.passwords)
