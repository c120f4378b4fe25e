"""Reports: the triage report's records, its canonical JSON, the signed envelope and reviews,
and the renderings a supervisor reads (terminal text, HTML, CASE/UCO export).

``model`` holds the records (the report's schema, also published as docs/report.schema.json),
``report`` builds them from scan results, ``encode``/``decode`` are the only ways to and from
their JSON, ``text`` has the one ``visible()`` every front end uses for untrusted text.

May import: evidence, packs and hashsets (for the records of what was used), trust (signing),
and the leaf modules. Never the engine or a front end.
"""
