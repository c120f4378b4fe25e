"""Trust: the kiosk's keys, the trust store of publishers, DSSE envelopes, the audit log, and
the policy (``policy.py``: version order and ledger, revocation and expiry) packs and sets share.

Everything that signs or verifies sits here so that packs, hash sets and reports share one
notion of who is trusted. May import only the leaf modules (``kiosk.canonical``,
``kiosk.errors``, ``kiosk.model``).
"""
