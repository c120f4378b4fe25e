"""Evidence: the only code that opens a seized image, and only for reading.

Lives here, outermost first:

- ``resolve.py``: the paths given -> an ``EvidenceRef`` (format, every file and its size,
  a differencing image's parent), made once and handed to every process that opens the evidence;
  ``headers.py`` tells a container by its signature and reads the extents and parent it names,
  ``segments.py`` checks split raw and EWF segments form one set;
- ``media/``: the containers (raw and split raw, EWF, VMDK, VHD/VHDX, QCOW) behind one ``Media``
  interface;
- ``volumes.py``: partition tables, gaps, encrypted or blank regions; ``layers.py`` names what
  sits in a region before any filesystem (BitLocker, LUKS, CoreStorage, LVM2, APFS),
  ``encryption.py`` unlocks what it can with the secrets of ``keys.py`` (LUKS2: ``luks2.py``),
  ``lvm.py`` lists logical volumes, ``media/view.py`` turns a region into a file object and a
  volume back into ``Media``;
- ``filesystems/``: the ``Filesystem`` interface and its readers (``tsk.py``, ``apfs.py``): the
  walk and the reads of a located stream;
- ``image.py``: ``Evidence``, the facade over all of it, built from an ``EvidenceRef``;
- ``archive.py``: an archive found inside the evidence read entry by entry through libarchive,
  streamed, never extracted (the scan worker expands it: ``kiosk.engine.archives``);
- ``walker.py``: the walk (and the app's preflight) in a child process of its own, so a crash
  in native parsing never takes the kiosk with it.

May import: ``kiosk.model``, ``kiosk.locator``, ``kiosk.errors`` and the backends (pytsk3,
pyewf, pyvmdk, pyvhdi, pyqcow, pyluksde, pyvslvm, pyfsapfs, libarchive). Nothing above it: the
engine asks for files and bytes by locator; it never sees a pytsk3 object.
"""
