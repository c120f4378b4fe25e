/*
    Phishing kits: server-side scripts that take what a victim typed into a fake login page and
    send it on, by e-mail or to a Telegram bot, then bounce the victim to the real site.
    Written for kiosk; no rule text copied from other collections.
*/

rule phishing_kit_php_credential_mailer
{
    meta:
        category = "phishing_kit"
        severity = "high"
        description = "PHP that e-mails a posted password or card field with the victim's IP address, then redirects away"
        author = "kiosk project"
        date = "2026-11-27"
    strings:
        $php = "<?php" nocase
        $post_secret = /\$_(POST|REQUEST)\[\s{0,2}['"](pass|password|passwd|pwd|pin|otp|cvv|cvv2|ssn)['"]/ nocase
        $send_mail = /[^a-z_]mail\s{0,4}\(\s{0,4}\$/
        $victim_ip = "REMOTE_ADDR"
        $redirect = /header\s{0,4}\(\s{0,4}['"]Location:\s{0,4}https?:\/\// nocase
    condition:
        filesize < 1MB and all of them
}

rule phishing_kit_telegram_exfil
{
    meta:
        category = "phishing_kit"
        severity = "high"
        description = "Script that posts submitted passwords or card fields to a Telegram bot"
        author = "kiosk project"
        date = "2026-11-27"
    strings:
        $telegram_bot = "api.telegram.org/bot" nocase
        $send_message = "sendMessage"
        $field_php = /\$_(POST|REQUEST)\[\s{0,2}['"](pass|password|passwd|pwd|pin|otp|cvv|cvv2|ssn)['"]/ nocase
        $field_js = /(getElementById|querySelector)\(\s{0,2}['"][#]?(pass|password|passwd|pwd|pin|otp|cvv)['"]\s{0,2}\)\.value/ nocase
    condition:
        filesize < 1MB and $telegram_bot and $send_message and ($field_php or $field_js)
}
