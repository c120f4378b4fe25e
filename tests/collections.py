"""Small rule collections written for these tests, each in the style of a public one.

No rule text is copied from any collection: the rules, strings and samples are invented here.
What is copied is the *shape* the importer must cope with:

- ``sigbase``  (LOKI/THOR, signature-base): one ``yara/`` folder, ``score`` meta (0-100),
  ``date`` as ``YYYY/MM/DD`` or ``YYYY-MM-DD``, ``hash1``, the LOKI externals (``filename``,
  ``filepath``, ``extension``, ``filetype``), ``pe`` conditions guarded by ``uint16(0)``;
- ``yararules`` (Yara-Rules): category folders, ``*_index.yar`` files of ``include`` lines, a
  rule file including a shared private helper, modules the kiosk lacks (``cuckoo``,
  ``androguard``), a rule that does not compile, a duplicate name, an atom-less regex, an
  include that climbs out of the collection;
- ``revlabs`` (ReversingLabs): ``yara/<category>/<Platform>.<Type>.<Family>.yara``, meta
  ``category = "MALWARE"`` and ``malware_type``, tags ``tc_detection malicious``;
- ``elastic`` (Elastic): ``<OS>_<Type>_<Family>`` rule names, numeric ``severity``,
  ``creation_date``, ``threat_name``, no ``description``.
"""

from __future__ import annotations

import struct
from pathlib import Path

LICENCE = "Test Rule Licence 1.0\n\nThese rules were written for kiosk's tests; share freely.\n"


def pe_sample(tail: bytes) -> bytes:
    """A small well-formed PE32 head (two sections) followed by ``tail``."""
    dos = bytearray(0x80)
    dos[0:2] = b"MZ"
    dos[0x3C:0x40] = struct.pack("<I", 0x80)
    coff = b"PE\0\0" + struct.pack("<HHIIIHH", 0x14C, 2, 0x5F5E0FF, 0, 0, 0xE0, 0x0102)
    opt = bytearray(0xE0)
    struct.pack_into("<HBBIII", opt, 0, 0x10B, 14, 0, 0x1000, 0x1000, 0)
    struct.pack_into("<I", opt, 92, 16)
    secs = b"".join(
        struct.pack("<8sIIIIIIHHI", n, 0x1000, 0x1000 * (k + 1), 0x200, 0x400, 0, 0, 0, 0, 0)
        for k, n in enumerate((b".text", b".data"))
    )
    return bytes(dos) + coff + bytes(opt) + secs + b"\0" * 512 + tail


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    return root


SIGBASE = {
    "LICENSE": LICENCE,
    "README.md": "a collection in signature-base style\n",
    "yara/gen_tool_configs.yar": """
/*
   Generic detections for tool configuration files.
   rule not_a_rule_in_a_comment { condition: true }
*/

rule HKTL_Tessera_Config_Jan25 {
   meta:
      description = "Detects the config file of the invented Tessera tool"
      author = "kiosk tests"
      reference = "https://example.invalid/tessera"
      date = "2025/01/14"
      score = 80
      hash1 = "0000000000000000000000000000000000000000000000000000000000000001"
   strings:
      $s1 = "tessera-relay-secret=" ascii
      $s2 = "[tessera:beacon]" ascii wide
   condition:
      filesize < 200KB and all of them
}

rule SUSP_Tessera_Path_Jan25 {
   meta:
      description = "Tessera config stored in a temp folder (external filepath)"
      author = "kiosk tests"
      date = "2025-01-15"
      score = 55
   strings:
      $s1 = "tessera-relay-secret=" ascii
   condition:
      $s1 and filepath contains "/tmp" and extension == ".cfg"
}
""",
    "yara/apt_quillmark.yar": """
import "pe"

rule APT_Quillmark_Loader_Feb25 {
   meta:
      description = "Invented loader with a marker string in a PE"
      author = "kiosk tests"
      date = "2025-02-03"
      score = 95
   strings:
      $m = "QUILLMARK-LOADER-7" ascii
   condition:
      uint16(0) == 0x5a4d and pe.number_of_sections == 2 and $m
}

rule MAL_Quillmark_Dropper_Low {
   meta:
      description = "A weak signal only"
      author = "kiosk tests"
      date = "2025-02-04"
      score = 40
   strings:
      $d = "quillmark-dropper-stage" ascii
   condition:
      $d and filetype == "UNKNOWN"
}
""",
}


YARARULES = {
    "LICENSE": LICENCE,
    "malware_index.yar": (
        '/* index of malware rules */\ninclude "./malware/MALW_Brindle.yar"\n'
        'include "./malware/MALW_Needs_Cuckoo.yar"\n'
    ),
    "webshells_index.yar": 'include "./webshells/WShell_Ferrule.yar"\n',
    "utils/common.yar": """
private rule IsPhpScript {
    strings:
        $php = "<?php"
    condition:
        $php at 0
}
""",
    "malware/MALW_Brindle.yar": """
rule Brindle_Stealer
{
    meta:
        author = "kiosk tests"
        description = "Invented stealer's exfil marker"
        date = "2024-11-02"
    strings:
        $a = "brindle-exfil-v2::" nocase
        $b = { 42 52 49 4E 44 4C 45 [2-6] 76 32 }
    condition:
        any of them
}

rule Brindle_Broken
{
    meta:
        author = "kiosk tests"
    condition:
        brindle_helper_that_does_not_exist
}

rule Brindle_Slow_Regex
{
    meta:
        author = "kiosk tests"
    strings:
        $r = /[a-z0-9]{20,}/
    condition:
        $r
}
""",
    "malware/MALW_Needs_Cuckoo.yar": """
import "cuckoo"

rule Brindle_Sandbox
{
    meta:
        author = "kiosk tests"
    condition:
        cuckoo.network.http_request(/brindle\\.invalid/)
}
""",
    "mobile_malware/Android_Tollgate.yar": """
import "androguard"

rule Android_Tollgate
{
    condition:
        androguard.package_name(/tollgate/)
}
""",
    "webshells/WShell_Ferrule.yar": """
include "../utils/common.yar"

rule Ferrule_Webshell
{
    meta:
        author = "kiosk tests"
        description = "Invented PHP web shell"
        date = "2024-08-19"
    strings:
        $cmd = "ferrule_exec($_POST" ascii
    condition:
        IsPhpScript and $cmd
}

rule Brindle_Stealer
{
    meta:
        description = "the same name again, in another file"
    condition:
        false
}
""",
    "webshells/WShell_Escape.yar": """
include "../../../outside/secret.yar"

rule Escaping_Include
{
    condition:
        true
}
""",
}


REVLABS = {
    "LICENSE.md": LICENCE,
    "yara/ransomware/Win32.Ransomware.Tinlock.yara": """
rule Win32_Ransomware_Tinlock : tc_detection malicious
{
    meta:
        author              = "kiosk tests"
        source              = "kiosk tests"
        status              = "RELEASED"
        sharing             = "TLP:WHITE"
        category            = "MALWARE"
        malware             = "TINLOCK"
        description         = "Yara rule that detects the invented Tinlock ransomware."
        tc_detection_type   = "Ransomware"
        tc_detection_name   = "TINLOCK"
        tc_detection_factor = 5
    strings:
        $note = { 54 49 4E 4C 4F 43 4B 2D 4E 4F 54 45 }
        $ext = ".tinlocked" ascii wide
    condition:
        uint16(0) == 0x5A4D and ($note and $ext)
}
""",
}


ELASTIC = {
    "LICENSE.txt": LICENCE,
    "yara/rules/Windows_Trojan_Gaffer.yar": """
rule Windows_Trojan_Gaffer_3b1f0c2a {
    meta:
        author = "kiosk tests"
        id = "3b1f0c2a-0000-4000-8000-000000000001"
        fingerprint = "0000000000000000000000000000000000000000000000000000000000000002"
        creation_date = "2023-06-10"
        last_modified = "2024-01-02"
        threat_name = "Windows.Trojan.Gaffer"
        reference_sample = "0000000000000000000000000000000000000000000000000000000000000003"
        severity = 100
        arch_context = "x86"
        scan_context = "file, memory"
        license = "Test Rule Licence 1.0"
        os = "windows"
    strings:
        $a = "gaffer_c2_checkin" ascii fullword
    condition:
        all of them
}
""",
}

STYLES = {"sigbase": SIGBASE, "yararules": YARARULES, "revlabs": REVLABS, "elastic": ELASTIC}


def write_collection(root: Path, style: str) -> Path:
    return _write(root, STYLES[style])
