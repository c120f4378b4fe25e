/*
    Cryptocurrency wallets and seed phrases: the files that hold keys or the words that
    recreate them. Recognised by file format facts (Berkeley DB and SQLite headers, the record
    names Bitcoin Core writes, Electrum and Ethereum keystore JSON fields) and, for seed
    phrases, by a label followed by a run of short lower-case words as BIP-39 lists are written.
    Written for kiosk; no rule text copied from other collections.
*/

rule wallet_bitcoin_core_bdb
{
    meta:
        category = "crypto_wallet"
        severity = "high"
        description = "Bitcoin Core (or fork) wallet.dat in Berkeley DB format, with wallet key records"
        author = "kiosk project"
        date = "2026-11-27"
    strings:
        // record names are stored with a one-byte length prefix
        $record_keymeta = "\x07keymeta"
        $record_ckey = "\x04ckey"
        $record_mkey = "\x04mkey"
        $record_defaultkey = "\x0adefaultkey"
        $record_bestblock = "\x09bestblock"
        $record_minversion = "\x0aminversion"
        $record_hdchain = "\x07hdchain"
        $record_pool = "\x04pool"
    condition:
        uint32(12) == 0x00053162  // Berkeley DB btree magic, little-endian, in the meta page
        and 2 of them
}

rule wallet_bitcoin_core_sqlite
{
    meta:
        category = "crypto_wallet"
        severity = "high"
        description = "Bitcoin Core descriptor wallet (SQLite) with wallet descriptor records"
        author = "kiosk project"
        date = "2026-11-27"
    strings:
        $record_descriptor = "\x10walletdescriptor"
        $record_descriptor_key = "\x13walletdescriptorkey"
        $record_descriptor_ckey = "\x14walletdescriptorckey"
        $record_external = "\x11activeexternalspk"
        $record_internal = "\x11activeinternalspk"
    condition:
        uint32be(0) == 0x53514C69 and uint32be(4) == 0x74652066  // "SQLite f"
        and 2 of them
}

rule wallet_electrum
{
    meta:
        category = "crypto_wallet"
        severity = "high"
        description = "Electrum wallet file, plain JSON or encrypted (base64 of the BIE1 envelope)"
        author = "kiosk project"
        date = "2026-11-27"
    strings:
        $json_seed_version = "\"seed_version\""
        $json_wallet_type = "\"wallet_type\""
        $json_keystore = "\"keystore\""
        $json_addr_history = "\"addr_history\""
    condition:
        filesize < 50MB and (
            ($json_seed_version and $json_wallet_type and ($json_keystore or $json_addr_history))
            or (uint32be(0) == 0x516B6C46 and uint16be(4) == 0x4D51)  // "QklFMQ" = base64("BIE1")
        )
}

rule wallet_ethereum_keystore
{
    meta:
        category = "crypto_wallet"
        severity = "high"
        description = "Ethereum keystore file (Web3 Secret Storage JSON: encrypted private key)"
        author = "kiosk project"
        date = "2026-11-27"
    strings:
        $json_ciphertext = "\"ciphertext\""
        $json_cipherparams = "\"cipherparams\""
        $json_kdfparams = "\"kdfparams\""
        $json_mac = "\"mac\""
        $json_kdf = /"kdf"\s{0,4}:\s{0,4}"(scrypt|pbkdf2)"/
    condition:
        filesize < 64KB and all of them
}

rule seed_phrase_labelled
{
    meta:
        category = "crypto_wallet"
        severity = "high"
        description = "A seed, recovery or mnemonic phrase: a label followed by twelve or more short lower-case words"
        author = "kiosk project"
        date = "2026-11-27"
    strings:
        // label, a little punctuation or numbering, then 12 words of 3-8 lower-case letters
        $phrase = /(([Ss]eed|SEED|[Mm]nemonic|MNEMONIC)( ?([Pp]hrase|PHRASE|[Ww]ords|WORDS))?|([Rr]ecovery|RECOVERY|[Ss]ecret|SECRET|[Bb]ackup|BACKUP) ?([Pp]hrase|PHRASE|[Ww]ords|WORDS))[^a-zA-Z]{1,16}([0-9]{1,2}[.):]? ?)?[a-z]{3,8}([ \t\r\n,]{1,3}([0-9]{1,2}[.):]? ?)?[a-z]{3,8}){11}\b/
    condition:
        $phrase
}
