"""The command line: ``kiosk scan``, ``report …``, ``keys …``, ``rules …``, ``hashsets …`` and
the launcher of the terminal app.

A thin layer over the core: parse arguments, call one core function, print its result, turn a
``KioskError`` into one line and exit 1. Nothing below imports it.
"""
