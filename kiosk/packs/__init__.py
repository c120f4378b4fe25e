"""YARA rule packs: read, check, compile (with a cache keyed by source digest), gate, self-test
and sign; import public collections and quarantine what of them cannot run.

A pack is ``rules/<pack>/pack.toml`` plus its ``.yar`` sources and positive/negative samples;
compiled rules are never loaded from disk, only rebuilt from verified sources. An *imported*
pack (``imported.py``) holds a collection's rule files unedited under ``rules/``: ``snapshot.py``
reads the folder or archive, ``importer.py`` builds the pack, ``collection.py`` reads YARA text
(rules, imports, includes), ``quarantine.py`` leaves out by name what cannot run,
``benchmark.py`` finds rules that never finish, ``diff.py`` shows what a newer snapshot changes.

May import: ``kiosk.trust`` (signatures, audit log) and the leaf modules; nothing about evidence,
hash sets or reports.
"""
