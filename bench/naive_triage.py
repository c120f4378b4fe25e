"""The naive baseline: what a careful analyst would write first, in one process.

Why: ``triage_bench.py`` needs a reference that does the same work as kiosk (every regular file:
MD5 + SHA-1 + SHA-256, libmagic on the head, YARA on the whole file up to the same size cap,
the same compiled rule set and externals) in the plainest way: pytsk3 walk, read the whole file
with ``read_random`` in 1 MiB chunks, join, hash, type, match, on the main thread. Its findings
must equal kiosk's, which the runner checks.

Usage: ``python bench/naive_triage.py IMAGE --rules RULES_DIR --out result.json
[--max-yara-bytes N]`` (RULES_DIR holds pack directories; each pack's ``*.yar`` become one
namespace, as in kiosk). ``--no-yara`` hashes and types only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import magic
import pytsk3
import yara

from kiosk.packs.check import EXTERNALS
from kiosk.packs.load import file_externals

CHUNK = 1 << 20
HEAD = 8192


def compile_rules(rules_dir: Path) -> yara.Rules:
    sources = {}
    for pack in sorted(p for p in rules_dir.iterdir() if (p / "pack.toml").is_file()):
        sources[pack.name] = "\n".join(f.read_text("utf-8") for f in sorted(pack.glob("*.yar")))
    return yara.compile(sources=sources, externals=EXTERNALS, includes=False)


def walk(fs: pytsk3.FS_Info, d: pytsk3.Directory, parent: str, seen: set[int]):  # type: ignore[no-untyped-def]
    for e in d:
        name = e.info.name.name.decode("utf-8", "backslashreplace")
        if name in (".", "..") or e.info.meta is None:
            continue
        path = f"{parent}/{name}"
        t = int(e.info.meta.type)
        if t in (int(pytsk3.TSK_FS_META_TYPE_DIR), int(pytsk3.TSK_FS_META_TYPE_VIRT_DIR)):
            addr = int(e.info.meta.addr)
            if addr not in seen:
                seen.add(addr)
                yield from walk(fs, e.as_directory(), path, seen)
        elif t in (int(pytsk3.TSK_FS_META_TYPE_REG), int(pytsk3.TSK_FS_META_TYPE_VIRT)):
            yield path, e


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("image", type=Path)
    ap.add_argument("--rules", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--max-yara-bytes", type=int, default=64 << 20)
    ap.add_argument("--no-yara", action="store_true")
    a = ap.parse_args()
    rules = None if a.no_yara or a.rules is None else compile_rules(a.rules)
    m = magic.Magic(mime=True)
    img = pytsk3.Img_Info(str(a.image))
    fs = pytsk3.FS_Info(img)
    findings: list[list[str]] = []
    sha256: dict[str, str] = {}
    nbytes = 0
    root = fs.open_dir(path="/")
    for path, entry in walk(fs, root, "", {int(fs.info.root_inum)}):
        size = int(entry.info.meta.size)
        parts = []
        off = 0
        while off < size:
            parts.append(entry.read_random(off, min(CHUNK, size - off)))
            off += len(parts[-1])
            if not parts[-1]:
                break
        data = b"".join(parts)
        del parts
        nbytes += len(data)
        md5 = hashlib.md5(data).hexdigest()  # noqa: S324 - forensic identity
        hashlib.sha1(data).hexdigest()  # noqa: S324
        sha256[path] = hashlib.sha256(data).hexdigest()
        m.from_buffer(data[:HEAD]) if data else "application/x-empty"
        if rules is not None and len(data) <= a.max_yara_bytes:
            name = path.rsplit("/", 1)[-1]
            for hit in rules.match(data=data, externals=file_externals(data, name, path, md5)):
                findings.append([path, hit.namespace, hit.rule])
        del data
    a.out.write_text(
        json.dumps(
            {"files": len(sha256), "bytes": nbytes, "findings": sorted(findings), "sha256": sha256}
        ),
        encoding="utf-8",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
