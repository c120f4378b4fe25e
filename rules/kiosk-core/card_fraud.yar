/*
    Card-fraud data: magnetic-stripe track data (ISO/IEC 7813 track 1 and 2 layouts) and lists
    of card numbers, one per line, most of which pass the Luhn check digit as real card numbers
    do. Written for kiosk; no rule text copied from other collections.
*/

rule card_track1_data
{
    meta:
        category = "card_fraud"
        severity = "high"
        description = "Magnetic-stripe track 1 data: %B, card number, ^name^, expiry and service code"
        author = "kiosk project"
        date = "2026-11-27"
    strings:
        $track1 = /%B[0-9]{13,19}\^[A-Z .\/'-]{2,26}\^[0-9]{7}/
    condition:
        $track1
}

rule card_track2_data
{
    meta:
        category = "card_fraud"
        severity = "high"
        description = "Magnetic-stripe track 2 data: card number=expiry and service code, with sentinels or as dump lines"
        author = "kiosk project"
        date = "2026-11-27"
    strings:
        $track2_sentinels = /(;3|;4|;5|;6)[0-9]{12,18}=[0-9]{7}[0-9]{0,24}\?/
        $track2_dump_line = /(\n3|\n4|\n5|\n6)[0-9]{12,18}=[0-9]{7}/
    condition:
        $track2_sentinels or #track2_dump_line >= 2
}

rule card_number_list_luhn
{
    meta:
        category = "card_fraud"
        severity = "high"
        description = "A list of 16-digit card numbers, one per line, at least three and 80% of them Luhn-valid"
        author = "kiosk project"
        date = "2026-11-27"
    strings:
        // a line that starts with exactly 16 digits, first digit 3-6 (card issuer ranges)
        $pan = /(\n3|\n4|\n5|\n6)[0-9]{15}[^0-9]/
    condition:
        #pan >= 3 and #pan < 100000
        and for ((#pan * 4 + 4) \ 5) i in (1..#pan) : (
            // Luhn: from the right, double every second digit (d*2%10 + d\5 is the digit sum)
            ( (uint8(@pan[i] + 1) - 48) * 2 % 10 + (uint8(@pan[i] + 1) - 48) \ 5
            + (uint8(@pan[i] + 2) - 48)
            + (uint8(@pan[i] + 3) - 48) * 2 % 10 + (uint8(@pan[i] + 3) - 48) \ 5
            + (uint8(@pan[i] + 4) - 48)
            + (uint8(@pan[i] + 5) - 48) * 2 % 10 + (uint8(@pan[i] + 5) - 48) \ 5
            + (uint8(@pan[i] + 6) - 48)
            + (uint8(@pan[i] + 7) - 48) * 2 % 10 + (uint8(@pan[i] + 7) - 48) \ 5
            + (uint8(@pan[i] + 8) - 48)
            + (uint8(@pan[i] + 9) - 48) * 2 % 10 + (uint8(@pan[i] + 9) - 48) \ 5
            + (uint8(@pan[i] + 10) - 48)
            + (uint8(@pan[i] + 11) - 48) * 2 % 10 + (uint8(@pan[i] + 11) - 48) \ 5
            + (uint8(@pan[i] + 12) - 48)
            + (uint8(@pan[i] + 13) - 48) * 2 % 10 + (uint8(@pan[i] + 13) - 48) \ 5
            + (uint8(@pan[i] + 14) - 48)
            + (uint8(@pan[i] + 15) - 48) * 2 % 10 + (uint8(@pan[i] + 15) - 48) \ 5
            + (uint8(@pan[i] + 16) - 48)
            ) % 10 == 0
        )
}
