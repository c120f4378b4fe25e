"""Where a kiosk scan's CPU goes, by engine and by process, from a system profiler recording.

Why perf and not only py-spy: py-spy counts a thread that waits in a system call or for a core
as busy, so on a 2-core machine running 3-4 processes its shares are shares of *runnable* time.
``perf record`` samples the CPU itself, so its shares are shares of CPU time, and its per-library
split shows the native engines (libmagic, libyara, OpenSSL) that py-spy folds into one Python
line. glibc's regex engine is counted as libmagic's: libmagic is its only user in a scan.

Usage::

    perf record -F 999 -g -o scan.perf -- .venv/bin/kiosk scan IMAGE ...
    .venv/bin/python bench/perf_breakdown.py scan.perf

Prints a Markdown table of CPU shares by component and by process role (parent, media hash
thread, walker, workers).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections import Counter

# (component, test on "dso symbol") in order; the first that fits wins.
_MAGIC_LIBC = "re_|regexec|match_ctx|__GI___memmem|__ctype_b_loc|check_halt|build_trtable"
COMPONENTS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("libmagic (file type)", re.compile(rf"^libmagic|^libc\.so\.6 ({_MAGIC_LIBC})")),
    ("YARA", re.compile(r"^yara\.")),
    ("hashing (OpenSSL)", re.compile(r"^libcrypto|^_hashlib")),
    ("Python interpreter", re.compile(r"^libpython|^_pickle|^python3")),
    ("Sleuth Kit", re.compile(r"^pytsk3")),
    ("kernel (reads, pipes, scheduling)", re.compile(r"^\[kernel")),
    ("other C library", re.compile(r"^libc\.so")),
)


def samples(path: str, keys: str) -> list[tuple[float, list[str]]]:
    out = subprocess.run(
        ["perf", "report", "-i", path, "--no-children", "--sort", keys, "-g", "none", "--stdio"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = []
    for line in out.splitlines():
        m = re.match(r"\s+([\d.]+)%\s+(.*)$", line)
        if m:
            rows.append((float(m.group(1)), m.group(2).split()))
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("perf_data")
    a = ap.parse_args()
    comp: Counter[str] = Counter()
    for share, (dso, _, *sym) in samples(a.perf_data, "dso,sym"):
        key = f"{dso} {' '.join(sym)}"
        name = next((n for n, rx in COMPONENTS if rx.search(key)), "other")
        comp[name] += share
    role: Counter[str] = Counter()
    for share, (pid_comm,) in ((s, [" ".join(f)]) for s, f in samples(a.perf_data, "pid")):
        role[pid_comm] += share
    print("| component | share of CPU |\n|---|---|")
    for name, share in comp.most_common():
        print(f"| {name} | {share:.1f} % |")
    print("\n| process (pid:command) | share of CPU |\n|---|---|")
    for name, share in role.most_common(8):
        print(f"| {name} | {share:.1f} % |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
