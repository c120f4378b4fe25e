"""One way to show untrusted text: every control or invisible character written as an escape.

A leaf, below ``trust``, because the audit log (``kiosk.trust.audit``) writes people's and the
evidence's text too, and must write it as the terminal and the report views show it: the same
name never looks like two, and a log read with ``cat`` or ``less`` cannot be driven by it.
``kiosk.reports.text`` re-exports it for the views.

May import: nothing from kiosk.
"""

from __future__ import annotations


def visible(text: str) -> str:
    """``text`` with every control or invisible character written as an escape.

    File names and volume labels come from the evidence: a name holding terminal escape codes,
    a right-to-left override or a newline must neither drive the terminal nor hide what it is.
    A backslash is doubled so that an escape shown is never confused with a literal one (a
    name holding the four characters ``\\x1b`` prints as ``\\\\x1b``, one holding ESC as
    ``\\x1b``). Printable non-ASCII letters stay as they are, readable.
    """
    if text.isprintable() and "\\" not in text:
        return text
    out = []
    for ch in text:
        if ch == "\\":
            out.append("\\\\")
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append(ch.encode("unicode_escape").decode("ascii"))
    return "".join(out)
