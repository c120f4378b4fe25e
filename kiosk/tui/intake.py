"""Before the scan: the case and authority form, the evidence folder, and the preflight.

The flow is one way: nothing about the image is opened before the case and authority form is
complete, and the preflight opens the image (in the walker's child process, as a scan would)
only to show what can and cannot be examined before the officer starts the scan. Slow work runs
in thread workers that post messages back, so the screen never freezes. The screens reach the
app only through ``KioskHost`` (``kiosk.tui.base``); starting the scan is the host's move.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.widgets import Button, DataTable, Footer, Input, Label, Select, Static
from textual.widgets.selection_list import Selection

from kiosk.engine.scope import Scope
from kiosk.engine.triage import TriageRequest
from kiosk.errors import KioskError
from kiosk.evidence.encryption import wants_passphrase
from kiosk.evidence.keys import VolumeKeys
from kiosk.model import CaseRecord, LegalBasis
from kiosk.packs.engines import DEFAULT_ENGINE
from kiosk.reports.text import visible
from kiosk.tui.authority import CaseDraft
from kiosk.tui.base import KioskScreen
from kiosk.tui.flow import (
    CASE_FIELDS,
    LEGAL_BASIS_LABELS,
    KioskState,
    Preflight,
    case_from_form,
    check_case_form,
    human_bytes,
    list_evidence,
    preflight,
    scope_from_form,
)
from kiosk.tui.widgets import CategoryList, ConfirmScreen, TitleBar, cell, lines, plain, status

# --------------------------------------------------------------------------- case and authority


class CaseScreen(KioskScreen[None]):
    """Case, officer, authority and scope: one form, checked field by field.

    Started blank, or from a ``CaseDraft``: the case and authority of the exhibit just
    triaged, kept for the next exhibit of the same case (exhibit and device left blank).
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("f2", "continue", "Continue"),
        # Enter in a field moves on at once, as Tab does (see KioskApp.BINDINGS): a barcode
        # scanner ends each code with Enter and the next code must land in the next field.
        Binding("enter", "next_field", "Next field", show=False, priority=True),
    ]

    def __init__(self, state: KioskState, draft: CaseDraft | None = None) -> None:
        super().__init__()
        self._state = state
        self._draft = draft
        self._touched: set[str] = set()

    def compose(self) -> ComposeResult:
        draft = self._draft
        values = draft.values() if draft else {}
        yield TitleBar("New triage · 1 of 4 · case and authority")
        with VerticalScroll(id="form"):
            hint = (
                "Nothing is opened until this is complete. * = required. "
                "Tab or Enter moves on, Space ticks a category, F2 continues."
            )
            if draft:
                hint = (
                    f"Same case as exhibit {draft.after_exhibit}: case, officers, authority and "
                    "categories kept. Type this exhibit's reference, check the rest, F2."
                )
            yield Static(plain(hint), classes="hint")
            for name, label in CASE_FIELDS.items():
                with Horizontal(classes="field"):
                    yield Label(plain(label + ("" if name == "device" else " *")))
                    if name == "legal_basis":
                        yield Select(
                            [(v, b) for b, v in LEGAL_BASIS_LABELS.items()],
                            prompt="choose (Enter)",
                            compact=True,
                            id=name,
                            value=draft.legal_basis if draft else Select.NULL,
                        )
                    else:
                        yield Input(
                            values.get(name, ""),
                            id=name,
                            compact=True,
                            placeholder=_PLACEHOLDERS[name],
                        )
                yield Static("", id=f"{name}-error", classes="error field-error")
            yield Label(plain("Categories the authority covers *"), classes="section")
            choices = self._state.categories
            title_width = max((len(c.title) for c in choices), default=0) + 2
            yield CategoryList(
                *[
                    Selection(
                        Content.assemble(
                            plain(c.title.ljust(title_width)), plain(c.source, "$text-muted")
                        ),
                        c.value,
                        draft.ticked(c) if draft else False,
                    )
                    for c in choices
                ],
                all_label="All of these: the authority covers every category below",
                id="scope",
            )
            yield Static("", id="scope-error", classes="error field-error")
            yield Button("Continue (F2)", id="continue", variant="primary", compact=True)
        yield Footer(show_command_palette=False)

    def on_mount(self) -> None:
        for e in self.query(".field-error"):
            e.display = False
        self.query_one("#exhibit_ref" if self._draft else "#case_ref", Input).focus()
        self.kiosk.prepare_scan()  # the workers load the rules while the officer types

    def _values(self) -> dict[str, str]:
        return {n: self.query_one(f"#{n}", Input).value for n in CASE_FIELDS if n != "legal_basis"}

    def _basis(self) -> LegalBasis | None:
        v = self.query_one("#legal_basis", Select).value
        return v if isinstance(v, LegalBasis) else None

    def _scope(self) -> tuple[list[str], list[str]]:
        chosen = self.query_one("#scope", CategoryList).categories
        return [c for k, c in chosen if k == "rule"], [c for k, c in chosen if k == "hash"]

    def _entered(self) -> bool:
        """Whether the form holds anything the officer would have to enter again."""
        return (
            any(v.strip() for v in self._values().values())
            or self._basis() is not None
            or bool(self.query_one("#scope", CategoryList).categories)
        )

    def _show(self, name: str, message: str) -> None:
        err = self.query_one(f"#{name}-error", Static)
        err.update(plain(f"✗ {message}") if message else "")
        err.display = bool(message)

    @on(Input.Blurred)
    def _check_one(self, event: Input.Blurred) -> None:
        """Check a field as the officer leaves it (an untouched empty field is left alone)."""
        name = event.input.id or ""
        if name in self._touched or event.input.value:
            self._touched.add(name)
        errors = self._errors()
        for n in self._touched & set(CASE_FIELDS):
            self._show(n, errors.get(n, ""))

    @on(Input.Changed)
    def _recheck_shown(self) -> None:
        """A message on screen follows the typing: it goes as soon as its field is right.

        Only messages already shown are updated; a new one waits until the field is left,
        so nobody is told off halfway through typing.
        """
        errors = self._errors()
        for err in self.query(".field-error"):
            name = str(err.id).removesuffix("-error")
            if err.display and name != "scope":
                self._show(name, errors.get(name, ""))

    def _errors(self) -> dict[str, str]:
        rule_cats, hash_cats = self._scope()
        return check_case_form(
            self._values(),
            self._basis(),
            rule_cats,
            hash_cats,
            self._state.allow_self_authorisation,
        )

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "next_field":  # elsewhere Enter keeps its meaning (open, tick, press)
            return isinstance(self.focused, Input)
        return True

    def action_next_field(self) -> None:
        self.focus_next()

    @on(Select.Changed, "#legal_basis")
    def _basis_chosen(self) -> None:
        if self._basis() is None and "legal_basis" not in self._touched:
            return  # the blank the form starts with
        self._touched.add("legal_basis")
        self._show("legal_basis", "" if self._basis() else "Choose the legal basis.")

    @on(CategoryList.SelectedChanged, "#scope")
    def _scope_changed(self) -> None:
        if "scope" in self._touched:
            self._show("scope", self._errors().get("scope", ""))

    @on(Button.Pressed, "#continue")
    def action_continue(self) -> None:
        values, basis = self._values(), self._basis()
        rule_cats, hash_cats = self._scope()
        errors = self._errors()
        self._touched.update([*CASE_FIELDS, "scope"])
        for name in [*CASE_FIELDS, "scope"]:
            self._show(name, errors.get(name, ""))
        if errors:
            first = next(n for n in [*CASE_FIELDS, "scope"] if n in errors)
            self.query_one(f"#{first}").focus()
            self.notify(
                f"{len(errors)} item(s) need attention before anything is opened.",
                severity="error",
                title="Not complete",
            )
            return
        if basis is None:  # check_case_form reported it; this only narrows the type
            return
        self.app.push_screen(
            EvidenceScreen(case_from_form(values, basis), scope_from_form(rule_cats, hash_cats))
        )

    def action_back(self) -> None:
        """Back home; a form with anything in it is discarded only when the officer says so."""
        if not self._entered():
            self.app.pop_screen()
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.app.pop_screen()

        self.app.push_screen(
            ConfirmScreen(
                "Discard this form? What has been entered here is lost.",
                "Discard",
                "Keep editing",
            ),
            answered,
        )


_PLACEHOLDERS = {
    "case_ref": "e.g. CASE-2026-0042",
    "exhibit_ref": "e.g. EX-7",
    "officer": "e.g. PC-1234",
    "authorised_by": "e.g. DS-5678",
    "legal_ref": "warrant number, statutory power, consent form",
    "device": "optional: make, model, colour",
}


# --------------------------------------------------------------------------- evidence


class EvidenceScreen(KioskScreen[None]):
    """Choose the image from the evidence folder, or type its path."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "back", "Back")]

    def __init__(self, case: CaseRecord, scope: Scope) -> None:
        super().__init__()
        self.case, self.scope = case, scope
        self._items: list[Path] = []

    def compose(self) -> ComposeResult:
        folder = self.kiosk.settings.evidence_dir
        yield TitleBar("New triage · 2 of 4 · evidence")
        with Vertical(id="evidence"):
            yield Static(
                plain(f"Images in {folder}: choose one with ↑↓ and Enter, or type a path below."),
                classes="hint",
            )
            yield DataTable[Any](id="images", cursor_type="row", zebra_stripes=False)
            with Horizontal(classes="field"):
                yield Label(plain("Or a path"))
                yield Input(id="path", compact=True, placeholder="path to the image, then Enter")
        yield Footer(show_command_palette=False)

    def on_mount(self) -> None:
        table = self.query_one("#images", DataTable)
        table.add_columns("Name", "Format", "Size", "Segments", "Note")
        for item in list_evidence(self.kiosk.settings.evidence_dir):
            self._items.append(item.path)
            table.add_row(
                cell(item.path.name),
                cell(item.format),
                cell(human_bytes(item.size) if not item.problem else ""),
                cell(str(item.segments) if not item.problem else ""),
                cell(f"cannot be used: {item.problem}" if item.problem else ""),
            )
        if not self._items:
            table.add_row(cell("(no images in the folder)"), "", "", "", "")
        table.focus()

    @on(DataTable.RowSelected, "#images")
    def _chosen(self, event: DataTable.RowSelected) -> None:
        if event.cursor_row < len(self._items):
            self._preflight(self._items[event.cursor_row])

    @on(Input.Submitted, "#path")
    def _typed(self, event: Input.Submitted) -> None:
        if event.value.strip():
            self._preflight(Path(event.value.strip()).expanduser())

    def _preflight(self, path: Path) -> None:
        self.app.push_screen(PreflightScreen(self.case, self.scope, path))

    def action_back(self) -> None:
        self.app.pop_screen()


class PreflightScreen(KioskScreen[None]):
    """What opening the image found: format, media-hash check, volumes, what cannot be examined."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "start", "Start scan"),
        Binding("escape", "back", "Choose another"),
    ]

    @dataclass
    class Done(Message):
        result: Preflight | None
        problem: str

    def __init__(self, case: CaseRecord, scope: Scope, path: Path) -> None:
        super().__init__()
        self.case, self.scope, self.path = case, scope, path
        self._ready = False
        self._secret: bytes | None = None  # an encrypted backup's password: memory only
        self._shown: Preflight | None = None
        self.keys = VolumeKeys()  # a passphrase typed below (password field, never shown)

    def compose(self) -> ComposeResult:
        yield TitleBar("New triage · 3 of 4 · preflight")
        with VerticalScroll(id="preflight"):
            yield Static(plain(f"Opening {self.path.name} read-only…"), id="found")
            with Horizontal(classes="field", id="backup-unlock"):
                yield Label(plain("Backup password"))
                yield Input(
                    id="password",
                    password=True,
                    compact=True,
                    placeholder="type it, then Enter (never shown, never recorded)",
                )
            unlock = Horizontal(  # shown only when an encrypted volume asks for a passphrase
                Input(
                    password=True, placeholder="passphrase of the encrypted volume", id="passphrase"
                ),
                Button("Unlock", id="unlock", compact=True),
                id="unlock-row",
                classes="buttons",
            )
            unlock.display = False
            yield unlock
            with Horizontal(classes="buttons"):
                yield Button(
                    "Start scan (s)", id="start", variant="primary", disabled=True, compact=True
                )
                yield Button("Choose another (Esc)", id="back", compact=True)
        yield Footer(show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one("#backup-unlock").display = False
        self.query_one("#back", Button).focus()
        self._open()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "start":  # offered only once the image opened
            return self._ready
        return True

    @work(thread=True, exclusive=True, group="preflight")
    def _open(self) -> None:
        try:
            result, problem = preflight(self.path, self._secret, self.keys), ""
        except KioskError as e:
            result, problem = None, str(e)
        except Exception as e:  # the front end's promise: a message, never a traceback
            result, problem = None, f"internal error ({type(e).__name__}): {e}"
        self.kiosk.audit_event(
            "preflight",
            case_ref=self.case.case_ref,
            exhibit_ref=self.case.exhibit_ref,
            image=self.path.name,
            opened=result is not None,
            reason=problem or None,
        )
        self.post_message(self.Done(result, problem))

    @on(Input.Submitted, "#password")
    def _backup_unlock(self, event: Input.Submitted) -> None:
        typed = event.value
        event.input.value = ""  # the password leaves the screen at once
        if typed:
            self._secret = typed.encode("utf-8")
            self._open()

    def on_preflight_screen_done(self, message: Done) -> None:
        found = self.query_one("#found", Static)
        p = message.result
        if p is None and self._secret is not None and self._shown is not None:
            # a wrong password: the backup stays as it was shown, and the officer may retry
            self._secret = None
            self.notify(visible(message.problem), severity="error", markup=False)
            return
        self._shown = p
        reasons = [message.problem, *(v.reason for v in (p.volumes if p else ()) if not v.examined)]
        asks = any(wants_passphrase(r) for r in reasons)
        self.query_one("#unlock-row").display = asks
        if asks:
            self.query_one("#passphrase", Input).focus()
        if p is None and asks:
            found.update(
                lines(
                    Content.assemble(
                        status(False, bad_word="ENCRYPTED"), " ", plain(self.path.name)
                    ),
                    plain(message.problem, "$error"),
                    "",
                    "Type the volume's passphrase below and press Enter to unlock it.",
                )
            )
            self.query_one("#start", Button).disabled = True
            return
        if p is None:
            found.update(
                lines(
                    Content.assemble(
                        status(False, bad_word="CANNOT OPEN"), " ", plain(self.path.name)
                    ),
                    plain(message.problem, "$error"),
                    "",
                    "Nothing was scanned. Check the path, or that every segment is present.",
                )
            )
            self.query_one("#start", Button).display = False
            return
        segs = ", ".join(p.segments)
        rows: list[Content | str] = [
            Content.assemble(("Image    ", "bold"), plain(f"{p.path.name}  ({p.format})")),
            Content.assemble(("Segments ", "bold"), plain(f"{len(p.segments)}: {segs}")),
            Content.assemble(("Size     ", "bold"), plain(human_bytes(p.size))),
            Content.assemble(("Media    ", "bold"), plain(p.media_check)),
        ]
        if p.device is not None:
            d = p.device
            about = " · ".join(
                x
                for x in (
                    d.name,
                    d.model,
                    d.os_version,
                    d.serial and f"serial {d.serial}",
                    d.imei and f"IMEI {d.imei}",
                )
                if x
            )
            rows.append(Content.assemble(("Device   ", "bold"), plain(about)))
        rows.append(Content.assemble(("Volumes", "bold")))
        for v in p.volumes:
            where = f"{human_bytes(v.length)} at byte {v.offset}"
            if v.examined:
                rows.append(
                    Content.assemble(
                        "  ",
                        status(True, ok_word="EXAMINE"),
                        plain(f" {v.index} {v.description}: {v.fs_type}, {where}"),
                    )
                )
            else:
                rows.append(
                    Content.assemble(
                        "  ",
                        status(False, bad_word="NOT EXAMINED"),
                        plain(f" {v.index} {v.description}, {where}: {v.reason}"),
                    )
                )
        skipped = len(p.volumes) - p.examinable
        rows += [
            "",
            f"{p.examinable} of {len(p.volumes)} areas can be examined"
            + (f"; {skipped} cannot and will be listed in the report." if skipped else "."),
        ]
        unlock = self.query_one("#backup-unlock")
        unlock.display = p.needs_password
        if p.needs_password:
            rows += [
                "",
                "This backup is encrypted: type its password below and press Enter to open it, "
                "or start without it (the backup is then listed as not examined).",
            ]
        found.update(lines(*rows))
        if p.needs_password:
            self.query_one("#password", Input).focus()
        start = self.query_one("#start", Button)
        start.disabled = False
        if not p.needs_password and not asks:
            start.focus()
        self._ready = True
        self.refresh_bindings()

    @on(Input.Submitted, "#passphrase")
    @on(Button.Pressed, "#unlock")
    def _unlock(self) -> None:
        """Open the image again with the passphrase typed; the field is emptied at once."""
        field = self.query_one("#passphrase", Input)
        typed, field.value = field.value, ""
        if not typed:
            return
        self.keys = VolumeKeys(passwords=(typed,))
        self._ready = False
        self.refresh_bindings()
        self.query_one("#start", Button).disabled = True
        self.query_one("#unlock-row").display = False
        self.query_one("#found", Static).update(plain(f"Unlocking {self.path.name}…"))
        self._open()

    @on(Button.Pressed, "#start")
    def action_start(self) -> None:
        if not self._ready:
            return
        s = self.kiosk.settings
        self.kiosk.start_scan(
            TriageRequest(
                case=self.case,
                image=(self.path,),
                rules_dir=s.rules_dir,
                hashsets_dir=s.hashsets_dir,
                out_dir=s.reports_dir,
                workers=s.workers,
                scope=self.scope,
                secret=self._secret,
                keys=self.keys,
                allow_self_authorisation=bool(
                    self.kiosk.state and self.kiosk.state.allow_self_authorisation
                ),
                yara_engine=(self.kiosk.state.yara_engine if self.kiosk.state else DEFAULT_ENGINE),
            )
        )

    @on(Button.Pressed, "#back")
    def action_back(self) -> None:
        self.app.pop_screen()
