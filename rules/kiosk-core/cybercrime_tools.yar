/*
    Cybercrime tooling, recognised by the strings such tools carry: what a credential stealer
    goes looking for, how RAT builders and panels describe themselves, and the commands and
    names of well-known credential-dumping and intrusion toolkits.
    Written for kiosk; no rule text copied from other collections.
*/

rule stealer_browser_and_wallet_harvesting
{
    meta:
        category = "cybercrime_tool"
        severity = "high"
        description = "Targets browser credential stores together with cryptocurrency wallets or messenger sessions, as information stealers do"
        author = "kiosk project"
        date = "2026-11-27"
    strings:
        // where browsers keep saved logins and the key that protects them
        $browser_chrome = "\\Google\\Chrome\\User Data" ascii wide nocase
        $browser_edge = "\\Microsoft\\Edge\\User Data" ascii wide nocase
        $browser_brave = "\\BraveSoftware\\Brave-Browser\\User Data" ascii wide nocase
        $browser_firefox = "\\Mozilla\\Firefox\\Profiles" ascii wide nocase
        $browser_logins = "Login Data" ascii wide
        $browser_ff_logins = "logins.json" ascii wide
        $browser_ff_key = "key4.db" ascii wide
        $browser_master_key = "encrypted_key" ascii wide
        // wallets: desktop wallet folders and the MetaMask extension id
        $wallet_core = "wallet.dat" ascii wide
        $wallet_exodus = "\\Exodus\\exodus.wallet" ascii wide nocase
        $wallet_electrum = "\\Electrum\\wallets" ascii wide nocase
        $wallet_ethereum = "\\Ethereum\\keystore" ascii wide nocase
        $wallet_atomic = "\\atomic\\Local Storage\\leveldb" ascii wide nocase
        $wallet_metamask = "nkbihfbeogaeaoehlefnkodbefgpgknn" ascii wide
        // messenger and gaming sessions that let a thief take over an account
        $session_telegram = "\\Telegram Desktop\\tdata" ascii wide nocase
        $session_discord = "\\discord\\Local Storage\\leveldb" ascii wide nocase
        $session_steam = "loginusers.vdf" ascii wide nocase
    condition:
        filesize < 20MB
        and 3 of ($browser_*)
        and (2 of ($wallet_*) or 1 of ($session_*))
}

rule rat_builder_or_panel
{
    meta:
        category = "cybercrime_tool"
        severity = "medium"
        description = "Names a commodity remote-access trojan together with the controls of its builder or panel"
        author = "kiosk project"
        date = "2026-11-27"
    strings:
        $family_async = "AsyncRAT" ascii wide nocase
        $family_quasar = "QuasarRAT" ascii wide nocase
        $family_nj = "njRAT" ascii wide nocase
        $family_darkcomet = "DarkComet" ascii wide nocase
        $family_remcos = "Remcos" ascii wide nocase
        $family_nanocore = "NanoCore" ascii wide nocase
        $family_dcrat = "DcRat" ascii wide nocase
        $family_xworm = "XWorm" ascii wide nocase
        $family_netwire = "NetWire" ascii wide nocase
        $control_desktop = "Remote Desktop" ascii wide nocase
        $control_keylog = "Keylogger" ascii wide nocase
        $control_passwords = "Password Recovery" ascii wide nocase
        $control_files = "File Manager" ascii wide nocase
        $control_shell = "Remote Shell" ascii wide nocase
        $control_proxy = "Reverse Proxy" ascii wide nocase
        $control_webcam = "Webcam" ascii wide nocase
        $control_processes = "Process Manager" ascii wide nocase
        $control_build = "Build Client" ascii wide nocase
        $control_mutex = "Mutex" ascii wide
    condition:
        filesize < 50MB
        and 1 of ($family_*)
        and 5 of ($control_*)
}

rule hacktool_credential_dumping_commands
{
    meta:
        category = "cybercrime_tool"
        severity = "high"
        description = "Carries several module::command names of a Windows credential-dumping toolkit"
        author = "kiosk project"
        date = "2026-11-27"
    strings:
        $cmd_logonpasswords = "sekurlsa::logonpasswords" ascii wide nocase
        $cmd_pth = "sekurlsa::pth" ascii wide nocase
        $cmd_tickets = "sekurlsa::tickets" ascii wide nocase
        $cmd_sam = "lsadump::sam" ascii wide nocase
        $cmd_secrets = "lsadump::secrets" ascii wide nocase
        $cmd_dcsync = "lsadump::dcsync" ascii wide nocase
        $cmd_debug = "privilege::debug" ascii wide nocase
        $cmd_golden = "kerberos::golden" ascii wide nocase
        $cmd_ptt = "kerberos::ptt" ascii wide nocase
        $cmd_vault = "vault::cred" ascii wide nocase
        $cmd_dpapi = "dpapi::masterkey" ascii wide nocase
        $cmd_elevate = "token::elevate" ascii wide nocase
    condition:
        3 of them
}

rule hacktool_intrusion_toolkit_names
{
    meta:
        category = "cybercrime_tool"
        severity = "medium"
        description = "Names several tools or functions of offensive intrusion frameworks (dual use: penetration testers carry them too)"
        author = "kiosk project"
        date = "2026-11-27"
    strings:
        $tool_meterpreter = "meterpreter" ascii wide nocase
        $tool_msfvenom = "msfvenom" ascii wide nocase
        $tool_metsrv = "metsrv" ascii wide nocase
        $tool_reflective = "ReflectiveLoader" ascii wide
        $tool_shellcode = "Invoke-Shellcode" ascii wide nocase
        $tool_peinject = "Invoke-ReflectivePEInjection" ascii wide nocase
        $tool_mimikatz = "Invoke-Mimikatz" ascii wide nocase
        $tool_rubeus_tgt = "asktgt" ascii wide
        $tool_kerberoast = "kerberoast" ascii wide nocase
        $tool_sharphound = "SharpHound" ascii wide nocase
        $tool_secretsdump = "secretsdump" ascii wide nocase
        $tool_psexec = "psexec.py" ascii wide nocase
        $tool_lazagne = "LaZagne" ascii wide nocase
    condition:
        filesize < 50MB
        and 3 of them
}
