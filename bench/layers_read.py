"""Reading through an encryption layer: LUKS1 (libluksde) and LUKS2 (kiosk's own reader)
against the same ext4 read plain, side by side, rounds interleaved.

Builds (under ``${TMPDIR:-/tmp}/kiosk-bench/layers``, once) an ext4 holding one random file
of ``--mib`` MiB, and LUKS1 and LUKS2 volumes (``cryptsetup luksFormat``, see
``tests/layered.py``) holding that ext4; then reads the file through ``Evidence.chunks``
(the workers' path) from each, ``--rounds`` times, and prints MiB/s and the ratio to plain.

    .venv/bin/python bench/layers_read.py [--mib 40] [--rounds 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kiosk.evidence.image import Evidence
from kiosk.evidence.keys import VolumeKeys
from kiosk.evidence.resolve import resolve
from tests.layered import ext4_with, luks_volume

PASS = "bench"  # noqa: S105 - the bench volumes' passphrase


def build(folder: Path, mib: int) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    plain = folder / f"plain-{mib}.ext4"
    if not plain.exists():
        ext4_with(folder / "root", {"big.bin": os.urandom(mib << 20)}, (mib + 8) << 20, plain)
    images = {"plain": plain}
    for version in (1, 2):
        image = folder / f"luks{version}-{mib}.img"
        if not image.exists():
            image.write_bytes(bytes(plain.stat().st_size + (4 << 20)))
            luks_volume(image, PASS, plain, version=version, kdf="pbkdf2")
        images[f"luks{version}"] = image
    return images


def read_once(image: Path) -> float:
    ref = dataclasses.replace(resolve([image]), keys=VolumeKeys(passwords=(PASS,)))
    with Evidence(ref) as ev:
        volumes = ev.volumes()
        task = next(t for t in ev.walk(volumes) if t.path == "/big.bin")
        start = time.perf_counter()
        n = sum(len(c) for c in ev.chunks(task))
        return n / (time.perf_counter() - start) / (1 << 20)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--mib", type=int, default=40)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    images = build(Path(tempfile.gettempdir()) / "kiosk-bench" / "layers", args.mib)
    speeds: dict[str, list[float]] = {k: [] for k in images}
    for _ in range(args.rounds):
        for name, image in images.items():
            speeds[name].append(read_once(image))
    base = max(speeds["plain"])
    for name, got in speeds.items():
        best = max(got)
        print(f"{name:7s} best {best:7.1f} MiB/s  ({best / base:.2f} of plain)")


if __name__ == "__main__":
    main()
