rule kiosk_demo_marker
{
    meta:
        category = "demo_marker"
        severity = "high"
        description = "kiosk's harmless demonstration marker (ASCII), planted in the sample images"
        author = "kiosk project"
        date = "2026-11-27"
    strings:
        $marker = "KIOSK-DEMO-MARKER-3f9c1b7e"
    condition:
        $marker
}

rule kiosk_demo_marker_utf16
{
    meta:
        category = "demo_marker"
        severity = "medium"
        description = "kiosk's harmless demonstration marker stored as UTF-16LE text"
        author = "kiosk project"
        date = "2026-11-27"
    strings:
        $marker = "KIOSK-DEMO-MARKER-3f9c1b7e" wide
    condition:
        $marker and not uint16(0) == 0x5A4D
}
