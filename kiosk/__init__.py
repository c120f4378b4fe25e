"""kiosk: open-source digital-forensic triage for police cyber kiosks."""

__version__ = "0.1.0"
