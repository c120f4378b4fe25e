"""Reports: the triage report's records, its canonical JSON, the signed envelope and reviews,
and the renderings a supervisor reads (terminal text, HTML, CASE/UCO export).

May import: evidence, packs and hashsets (for the records of what was used), trust (signing),
and the leaf modules. Never the engine or a front end.
"""
