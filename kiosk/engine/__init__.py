"""The engine: the triage use case and the worker pool that reads, hashes, types and scans.

Lives here: ``run_triage()`` (the one entry point both front ends call), the scan pool (worker
processes, bounded re-ordering window), the expansion of archives found in the evidence
(``archives.py``: each member judged as a file, within limits), and the authorised scope that
turns matches into findings.

May import: evidence, packs, hashsets, reports, trust and the leaf modules. Never a front end:
no Textual, no Rich, no ``kiosk.cli``/``kiosk.tui`` (import-linter's layers contract).
"""
