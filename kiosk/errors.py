"""The one error tree of kiosk: every exception kiosk defines is here, under ``KioskError``.

Inside a scan, problems with single files or volumes are *data* (a result with a status and a
reason, a volume listed as not examined). Exceptions are for the edges: something the run
cannot go on without. Every message is written to be shown to an officer as one line::

    KioskError                   anything kiosk refuses to do, with a one-line reason
     ├── ImageError              the evidence cannot be opened or read as an image
     │    └── SegmentError       a segment of a split or EWF image is missing or unreadable
     ├── SparseStreamError       a stream with no stored data (NTFS $BadClus:$Bad), per file
     ├── RulesError              a rule pack cannot be loaded or compiled
     │    ├── RuleTimeoutError   matching one file took longer than the limit (either engine)
     │    └── RuleScanError      the YARA engine failed on one file
     ├── HashSetError            a hash set cannot be loaded
     ├── CaseError               the case, officer or legal-basis record is incomplete
     ├── ReportError             the report cannot be written, or read as this kiosk's schema
     ├── WorkerInitError         a scan worker could not set itself up
     ├── SigningError            a key cannot be made, loaded or used; the trust store is unreadable
     ├── VerificationError       a signature, envelope, version record or what they cover is refused
     ├── AuditError              the audit log cannot be written, or does not verify
     ├── ConfigError             a setting is out of range, or config.toml cannot be read
     ├── UsageError              a command line that does not say what to do (exit 2)
     └── TimeTextError           a time is not RFC 3339 / ISO 8601 text with a time zone
                                 (also a ValueError: callers turn it into their own message)

Backend exceptions (pytsk3 ``IOError``, ``yara.Error``, libewf ``IOError``) are translated with
``raise ... from e`` inside the module that calls the backend; only the front ends catch broadly.
A backend's own words go in ``detail`` (the audit log's ``scan_failed`` entry keeps them), never
in the message.
A class defined anywhere else in kiosk fails tests/test_errors.py: the tree stays drawn whole.
"""

from __future__ import annotations


class KioskError(Exception):
    """Base of every error kiosk raises on purpose; ``str(e)`` is the one-line message.

    ``detail``: what a backend said (libewf's, libvhdi's own error text), for the audit log
    only -- it is never part of the message an officer reads.
    """

    def __init__(self, message: str = "", *, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail


class ImageError(KioskError):
    """The evidence image cannot be opened, is not an image, or holds nothing we can read."""


class SegmentError(ImageError):
    """A segment of a split raw or EWF image is missing, out of order or unreadable."""


class SparseStreamError(KioskError):
    """A stream with no stored runs (NTFS ``$BadClus:$Bad``): TSK, like icat, reads nothing.

    Raised while reading one file's content; the scan records the file with this reason.
    """


class RulesError(KioskError):
    """A rule pack is missing, malformed or fails to compile."""


class RuleTimeoutError(RulesError):
    """Matching one file took longer than the YARA time limit (either engine)."""


class RuleScanError(RulesError):
    """The YARA engine failed while matching one file; that file's result says so."""


class HashSetError(KioskError):
    """A hash set is missing, malformed or inconsistent with its manifest."""


class CaseError(KioskError):
    """The case and legal-authority record is incomplete: no scan may start without it."""


class ReportError(KioskError):
    """The report directory cannot be created or written, or a report does not fit the schema
    this kiosk reads (``kiosk.reports.decode``)."""


class WorkerInitError(KioskError):
    """A scan worker could not set itself up (the evidence or a hash set changed under us)."""


class SigningError(KioskError):
    """A key cannot be created, loaded or used; the trust store is unreadable."""


class VerificationError(KioskError):
    """A signature, envelope or the files it covers do not check out; the message says which.

    Also a version record (anti-rollback ledger) that cannot be read: without it a downgrade
    cannot be told from an upgrade, so nothing it guards is accepted.
    """


class AuditError(KioskError):
    """The audit log cannot be written, or does not verify."""


class ConfigError(KioskError):
    """A setting (worker count, YARA cap, ``config.toml``) is out of range or unreadable.

    The command line, the terminal app and ``run_triage`` check a setting with the same function
    (``kiosk.config``), so a bad value gets the same one line wherever it was given.
    """


class UsageError(KioskError):
    """A command line argparse accepts but that does not say what to do: exit 2, not 1.

    ``hashsets lookup`` with neither a digest nor ``--from``: argparse cannot require "one of a
    positional list or an option", so the command finds it and answers as argparse would.
    """


class TimeTextError(KioskError, ValueError):
    """Text that is not an aware RFC 3339 / ISO 8601 time (``kiosk.canonical.parse_time_text``).

    A ``ValueError`` as well, because that is what a bad time is; each caller (a manifest, the
    trust store, a report, the command line) turns it into its own one-line message.
    """
