"""The one error tree of kiosk.

Inside a scan, problems with single files or volumes are *data* (a result with a status and a
reason, a volume listed as not examined). Exceptions are for the edges: something the run
cannot go on without. Every message is written to be shown to an officer as one line::

    KioskError                  anything kiosk refuses to do, with a one-line reason
     ├── ImageError             the evidence cannot be opened or read as an image
     │    └── SegmentError      a segment of a split or EWF image is missing or unreadable
     ├── RulesError             a rule pack cannot be loaded or compiled
     ├── HashSetError           a hash set cannot be loaded
     ├── CaseError              the case, officer or legal-basis record is incomplete
     └── ReportError            the report cannot be written, or read as this kiosk's schema

Backend exceptions (pytsk3 ``IOError``, ``yara.Error``, libewf ``IOError``) are translated with
``raise ... from e`` inside the module that calls the backend; only the front ends catch broadly.
"""

from __future__ import annotations


class KioskError(Exception):
    """Base of every error kiosk raises on purpose; ``str(e)`` is the one-line message."""


class ImageError(KioskError):
    """The evidence image cannot be opened, is not an image, or holds nothing we can read."""


class SegmentError(ImageError):
    """A segment of a split raw or EWF image is missing, out of order or unreadable."""


class RulesError(KioskError):
    """A rule pack is missing, malformed or fails to compile."""


class HashSetError(KioskError):
    """A hash set is missing, malformed or inconsistent with its manifest."""


class CaseError(KioskError):
    """The case and legal-authority record is incomplete: no scan may start without it."""


class ReportError(KioskError):
    """The report directory cannot be created or written, or a report does not fit the schema
    this kiosk reads (``kiosk.reports.decode``)."""
