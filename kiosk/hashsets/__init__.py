"""Hash sets: import formats (NSRL, Project VIC/CAID, hashdeep, plain lists), the sorted binary
store (``.hpk``), signed versions and the lookup index the workers map.

May import: ``kiosk.trust`` (signatures) and the leaf modules; nothing about evidence, packs or
reports.
"""
