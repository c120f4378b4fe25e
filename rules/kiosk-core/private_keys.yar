/*
    Private keys (SSH, PEM/PKCS#8, PuTTY, OpenPGP, GnuPG key store). A header alone is not a
    key: each rule also wants the start of the key body, so documentation that merely quotes a
    header does not match. Written for kiosk; no rule text copied from other collections.
*/

rule key_openssh_private
{
    meta:
        category = "private_key"
        severity = "medium"
        description = "OpenSSH private key (new format; the body starts with base64 of openssh-key-v1)"
        author = "kiosk project"
        date = "2026-11-27"
    strings:
        $key = /-----BEGIN OPENSSH PRIVATE KEY-----\r?\nb3BlbnNzaC1rZXktdjE/
    condition:
        $key
}

rule key_pem_private
{
    meta:
        category = "private_key"
        severity = "medium"
        description = "PEM private key: PKCS#1 RSA, DSA, EC or PKCS#8 (plain or encrypted)"
        author = "kiosk project"
        date = "2026-11-27"
    strings:
        $key = /-----BEGIN (RSA |DSA |EC |ENCRYPTED )?PRIVATE KEY-----\r?\n(Proc-Type: 4,ENCRYPTED|[A-Za-z0-9+\/]{48})/
    condition:
        $key
}

rule key_putty_private
{
    meta:
        category = "private_key"
        severity = "medium"
        description = "PuTTY private key file (.ppk, versions 2 and 3)"
        author = "kiosk project"
        date = "2026-11-27"
    strings:
        $header = /PuTTY-User-Key-File-[23]: (ssh-rsa|ssh-dss|ssh-ed25519|ssh-ed448|ecdsa-sha2-nistp256|ecdsa-sha2-nistp384|ecdsa-sha2-nistp521)\r?\nEncryption: /
        $private_lines = "\nPrivate-Lines: "
    condition:
        $header and $private_lines
}

rule key_pgp_private_armored
{
    meta:
        category = "private_key"
        severity = "high"
        description = "ASCII-armoured OpenPGP private (secret) key block"
        author = "kiosk project"
        date = "2026-11-27"
    strings:
        // the armour line, up to five armour headers, a blank line, then the base64 body
        $block = /-----BEGIN PGP PRIVATE KEY BLOCK-----\r?\n([A-Za-z]{1,20}: [^\r\n]{1,200}\r?\n){0,5}\r?\n[A-Za-z0-9+\/]{40}/
    condition:
        $block
}

rule key_gnupg_private_key_file
{
    meta:
        category = "private_key"
        severity = "high"
        description = "GnuPG private-keys-v1.d key file (S-expression, protected or not)"
        author = "kiosk project"
        date = "2026-11-27"
    strings:
        $canonical_protected = "(21:protected-private-key("
        $canonical_plain = "(11:private-key("
        $extended = /(^|\n)Key: \((protected-private-key|private-key) ?\(/
    condition:
        $canonical_protected at 0 or $canonical_plain at 0 or $extended
}
