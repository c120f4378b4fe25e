"""The Sleuth Kit's block walk (``tsk_fs_block_walk``) with the unallocated flag, through ctypes.

Why ctypes: pytsk3 wraps ``TSK_FS_INFO`` but not the block walk, and the walk is exactly what
``blkls`` runs to list a filesystem's unallocated blocks (the tests compare with ``blkls``). The
function lives in pytsk3's own extension module (libtsk is linked into it), so we call the very
libtsk that opened the filesystem, on the very ``TSK_FS_INFO`` pytsk3 holds -- TSK still reads
only through our ``TskImage``, never a path.

The ``TSK_FS_INFO *`` is the first field after the Python object header of pytsk3's wrapper. We
take it only after checking six fields of the struct against what pytsk3 reports (the tag
``TSK_FS_INFO_TAG``, the offset, inode counts and block counts): a pytsk3 build with another
layout makes the walk unavailable (``None``) -- the area is then reported as not examined, with
that reason -- instead of reading the wrong memory. The walk runs in a scan worker, so even a
crash there costs one area task, not the run.
"""

from __future__ import annotations

import ctypes
import sys
from typing import Any

import pytsk3

TSK_FS_INFO_TAG = 0x10101010
_HEADER = 2 * ctypes.sizeof(ctypes.c_void_p)  # PyObject_HEAD: refcount and type
_WALK_FLAGS = int(pytsk3.TSK_FS_BLOCK_WALK_FLAG_UNALLOC) | int(pytsk3.TSK_FS_BLOCK_WALK_FLAG_AONLY)
_CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)
_ADDR_AT = 24  # TSK_FS_BLOCK: int tag; TSK_FS_INFO *fs_info; char *buf; TSK_DADDR_T addr; ...
_STOP = int(pytsk3.TSK_WALK_STOP)
_lib: Any = None


def _walk_fn() -> Any:
    global _lib
    if _lib is None:
        mod = sys.modules[pytsk3.__name__]
        lib = ctypes.PyDLL(str(mod.__file__))  # PyDLL: keeps the GIL for TSK's read callbacks
        fn = lib.tsk_fs_block_walk
        fn.argtypes = [
            ctypes.c_void_p,
            ctypes.c_uint64,
            ctypes.c_uint64,
            ctypes.c_int,
            _CB,
            ctypes.c_void_p,
        ]
        fn.restype = ctypes.c_uint8
        _lib = fn
    return _lib


def fs_info_pointer(fs: Any, offset: int) -> int | None:
    """The ``TSK_FS_INFO *`` behind a ``pytsk3.FS_Info``, or None if its layout is not the one
    checked here."""
    info = fs.info
    ptr = ctypes.c_void_p.from_address(id(info) + _HEADER).value
    if not ptr:
        return None

    def u64(at: int) -> int:
        return int(ctypes.c_uint64.from_address(ptr + at).value)

    checks = (
        ctypes.c_uint32.from_address(ptr).value == TSK_FS_INFO_TAG,
        u64(16) == offset,  # TSK_OFF_T offset, after the tag and img_info
        u64(24) == int(info.inum_count),
        u64(32) == int(info.root_inum),
        u64(56) == int(info.block_count),
        u64(72) == int(info.last_block),
    )
    return ptr if all(checks) else None


def unallocated_runs(fs: Any, offset: int, first: int, last: int) -> list[tuple[int, int]] | None:
    """Runs ``(first block, count)`` of unallocated blocks in ``[first, last]``, as ``blkls``
    lists them; None when the block walk is not available or fails."""
    ptr = fs_info_pointer(fs, offset)
    if ptr is None:
        return None
    runs: list[list[int]] = []
    failed: list[BaseException] = []
    # TSK hands every call the same TSK_FS_BLOCK, refilled: one view of its address field is
    # made per block struct seen (one, in practice), not one per block: half the walk's time
    views: dict[int, Any] = {}
    run = [-1, 0]  # the run being extended: first block, count

    def on_block(block: int, _data: int) -> int:
        try:
            view = views.get(block)
            if view is None:
                view = views[block] = ctypes.c_uint64.from_address(block + _ADDR_AT)
            addr = view.value
            if run[0] + run[1] == addr:
                run[1] += 1
            else:
                if run[1]:
                    runs.append(run[:])
                run[0], run[1] = addr, 1
            return 0
        except BaseException as e:  # an exception cannot cross the C frame: stop the walk
            failed.append(e)
            return _STOP

    cb = _CB(on_block)
    ok = _walk_fn()(ptr, first, last, _WALK_FLAGS, cb, None) == 0
    if not ok or failed:
        return None
    if run[1]:
        runs.append(run)
    return [(a, n) for a, n in runs]
