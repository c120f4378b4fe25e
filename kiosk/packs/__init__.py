"""YARA rule packs: read, check, compile (with a cache keyed by source digest), gate, self-test
and sign.

A pack is ``rules/<pack>/pack.toml`` plus its ``.yar`` sources and positive/negative samples;
compiled rules are never loaded from disk, only rebuilt from verified sources.

May import: ``kiosk.trust`` (signatures, audit log) and the leaf modules; nothing about evidence,
hash sets or reports.
"""
