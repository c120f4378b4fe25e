"""Trust: the kiosk's keys, the trust store of publishers, DSSE envelopes and the audit log.

Everything that signs or verifies sits here so that packs, hash sets and reports share one
notion of who is trusted. May import only the leaf modules (``kiosk.canonical``,
``kiosk.errors``, ``kiosk.model``).
"""
