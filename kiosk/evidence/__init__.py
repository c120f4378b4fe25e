"""Evidence: the only code that opens a seized image, and only for reading.

Lives here: finding an image's segments, its containers (raw, split raw, EWF), its volumes and
filesystems, and the walk that lists every file stream (metadata only), which runs in a child
process of its own so a crash in native parsing never takes the kiosk with it.

May import: ``kiosk.model``, ``kiosk.errors`` and the backends (pytsk3, pyewf). Nothing above it:
the engine asks for files and bytes; it never sees a pytsk3 object.
"""
