"""The officer's screens, in the order they are met: home, case, evidence, preflight, scan, result.

The flow is one way: nothing about the image is opened before the case and authority form is
complete, and once a scan starts the only ways out are its end or a confirmed cancel — both
of which leave a signed report. Slow work (loading packs, opening the image, the scan itself)
runs in thread workers that post messages back, as in toolong, so the screen never freezes.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.widgets import (
    Button,
    DataTable,
    Footer,
    Input,
    Label,
    ProgressBar,
    Select,
    Static,
)
from textual.widgets.selection_list import Selection

from kiosk.engine.scope import Scope
from kiosk.engine.triage import Hooks, TriageRequest, TriageResult
from kiosk.errors import KioskError
from kiosk.model import CaseRecord, HashMatch, LegalBasis, Outcome, Progress, Recommendation
from kiosk.reports.attestation import verify_report_dir
from kiosk.reports.folder import write_file
from kiosk.reports.html import render_html
from kiosk.reports.model import FileRecord, NotExaminedKind
from kiosk.reports.text import RECOMMENDATION_TITLES, visible
from kiosk.tui.base import KioskScreen
from kiosk.tui.flow import (
    CASE_FIELDS,
    LEGAL_BASIS_LABELS,
    KioskState,
    Preflight,
    case_from_form,
    check_case_form,
    duration,
    human_bytes,
    list_evidence,
    load_state,
    preflight,
    scope_from_form,
)
from kiosk.tui.review import ReviewListScreen
from kiosk.tui.widgets import CategoryList, ConfirmScreen, TitleBar, cell, lines, plain, status

MAX_TABLE_FINDINGS = 5000  # the table is a live view; the signed report holds every finding
BANNER_STYLE = {
    Recommendation.SUBMIT: "submit",
    Recommendation.NO_MATCHES: "no-matches",
    Recommendation.INCONCLUSIVE: "inconclusive",
}
BANNER_MARK = {
    Recommendation.SUBMIT: "▲",
    Recommendation.NO_MATCHES: "●",
    Recommendation.INCONCLUSIVE: "?",
}


# --------------------------------------------------------------------------- home


class HomeScreen(KioskScreen[None]):
    """Who this kiosk is, what it knows (packs and sets, valid or refused), and the two paths."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "new_triage", "New triage"),
        Binding("r", "review", "Review reports"),
    ]

    @dataclass
    class Loaded(Message):
        state: KioskState

    def compose(self) -> ComposeResult:
        yield TitleBar("Home")
        with VerticalScroll(id="home"):
            yield Static(plain("Loading the signing key, rule packs and hash sets…"), id="about")
            with Horizontal(classes="buttons"):
                yield Button(
                    "New triage (n)", id="new", variant="primary", disabled=True, compact=True
                )
                yield Button("Review reports (r)", id="review", compact=True)
            yield Static("", id="blocked", classes="error")
        yield Footer(show_command_palette=False)

    def on_screen_resume(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="home")
    def load(self) -> None:
        self.post_message(self.Loaded(load_state(self.kiosk.settings)))

    def on_home_screen_loaded(self, message: Loaded) -> None:
        st = message.state
        self.kiosk.state = st
        s = self.kiosk.settings
        key = (
            Content.assemble(status(True), f" {st.signer.keyid[:16]}…")
            if st.signer
            else Content.assemble(status(False, bad_word="NO KEY"), " ", plain(st.key_problem))
        )
        rows: list[Content | str] = [
            Content.assemble(("Kiosk id      ", "bold"), plain(st.kiosk_id)),
            Content.assemble(("Signing key   ", "bold"), key),
            Content.assemble(("Evidence from ", "bold"), plain(str(s.evidence_dir))),
            Content.assemble(("Reports to    ", "bold"), plain(str(s.reports_dir))),
            "",
            Content.assemble(("Rule packs", "bold"), plain(f" ({s.rules_dir})")),
            *[self._item(i.ok, i.label, i.detail) for i in st.packs],
            Content.assemble(("Hash sets", "bold"), plain(f" ({s.hashsets_dir})")),
            *[self._item(i.ok, i.label, i.detail) for i in st.sets],
        ]
        if not st.sets:
            rows.append(plain("  (none)"))
        if st.trust_problem:
            rows.append(
                Content.assemble(status(False, bad_word="NO TRUST STORE"), " ", st.trust_problem)
            )
        self.query_one("#about", Static).update(lines(*rows))
        new = self.query_one("#new", Button)
        new.disabled = not st.can_triage
        blocked = self.query_one("#blocked", Static)
        if st.can_triage:
            blocked.update("")
            blocked.display = False
            new.focus()
        else:
            why = "no signing key" if st.signer is None else "a pack, set or setting was refused"
            blocked.update(plain(f"✗ Triage cannot start: {why}. Ask forensic staff to fix it."))
            blocked.display = True
            self.query_one("#review", Button).focus()

    @staticmethod
    def _item(ok: bool, label: str, detail: str) -> Content:
        text = f" {label} — refused: {detail}" if not ok else f" {label} — {detail}"
        return Content.assemble("  ", status(ok), plain(text, "" if ok else "$error"))

    @on(Button.Pressed, "#new")
    def action_new_triage(self) -> None:
        st = self.kiosk.state
        if st is not None and st.can_triage:
            self.app.push_screen(CaseScreen(st))

    @on(Button.Pressed, "#review")
    def action_review(self) -> None:
        self.app.push_screen(ReviewListScreen())


# --------------------------------------------------------------------------- case and authority


class CaseScreen(KioskScreen[None]):
    """Case, officer, authority and scope: one form, checked field by field."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("f2", "continue", "Continue"),
    ]

    def __init__(self, state: KioskState) -> None:
        super().__init__()
        self._state = state
        self._touched: set[str] = set()

    def compose(self) -> ComposeResult:
        yield TitleBar("New triage · 1 of 4 · case and authority")
        with VerticalScroll(id="form"):
            yield Static(
                plain(
                    "Nothing is opened until this is complete. * = required. "
                    "Tab moves on, Space ticks a category, F2 continues."
                ),
                classes="hint",
            )
            for name, label in CASE_FIELDS.items():
                with Horizontal(classes="field"):
                    yield Label(plain(label + ("" if name == "device" else " *")))
                    if name == "legal_basis":
                        yield Select(
                            [(v, b) for b, v in LEGAL_BASIS_LABELS.items()],
                            prompt="choose (Enter)",
                            compact=True,
                            id=name,
                        )
                    else:
                        yield Input(id=name, compact=True, placeholder=_PLACEHOLDERS[name])
                yield Static("", id=f"{name}-error", classes="error field-error")
            yield Label(plain("Categories the authority covers *"), classes="section")
            yield CategoryList(
                *[
                    Selection(plain(f"rule pack category: {c}"), ("rule", c))
                    for c in self._state.rule_categories
                ],
                *[
                    Selection(plain(f"hash set category:  {c}"), ("hash", c))
                    for c in self._state.hash_categories
                ],
                id="scope",
            )
            yield Static("", id="scope-error", classes="error field-error")
            yield Button("Continue (F2)", id="continue", variant="primary", compact=True)
        yield Footer(show_command_palette=False)

    def on_mount(self) -> None:
        for e in self.query(".field-error"):
            e.display = False
        self.query_one("#case_ref", Input).focus()

    def _values(self) -> dict[str, str]:
        return {n: self.query_one(f"#{n}", Input).value for n in CASE_FIELDS if n != "legal_basis"}

    def _basis(self) -> LegalBasis | None:
        v = self.query_one("#legal_basis", Select).value
        return v if isinstance(v, LegalBasis) else None

    def _scope(self) -> tuple[list[str], list[str]]:
        chosen = self.query_one("#scope", CategoryList).selected
        return [c for k, c in chosen if k == "rule"], [c for k, c in chosen if k == "hash"]

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

    def _errors(self) -> dict[str, str]:
        rule_cats, hash_cats = self._scope()
        return check_case_form(
            self._values(),
            self._basis(),
            rule_cats,
            hash_cats,
            self._state.allow_self_authorisation,
        )

    @on(Input.Submitted)
    def _next_field(self) -> None:
        self.focus_next()

    @on(Select.Changed, "#legal_basis")
    def _basis_chosen(self) -> None:
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
        self.app.pop_screen()


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

    def compose(self) -> ComposeResult:
        yield TitleBar("New triage · 3 of 4 · preflight")
        with VerticalScroll(id="preflight"):
            yield Static(plain(f"Opening {self.path.name} read-only…"), id="found")
            with Horizontal(classes="buttons"):
                yield Button(
                    "Start scan (s)", id="start", variant="primary", disabled=True, compact=True
                )
                yield Button("Choose another (Esc)", id="back", compact=True)
        yield Footer(show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one("#back", Button).focus()
        self._open()

    @work(thread=True, exclusive=True, group="preflight")
    def _open(self) -> None:
        try:
            result, problem = preflight(self.path), ""
        except KioskError as e:
            result, problem = None, str(e)
        self.kiosk.audit_event(
            "preflight",
            case_ref=self.case.case_ref,
            exhibit_ref=self.case.exhibit_ref,
            image=self.path.name,
            opened=result is not None,
            reason=problem or None,
        )
        self.post_message(self.Done(result, problem))

    def on_preflight_screen_done(self, message: Done) -> None:
        found = self.query_one("#found", Static)
        p = message.result
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
            return
        segs = ", ".join(p.segments)
        rows: list[Content | str] = [
            Content.assemble(("Image    ", "bold"), plain(f"{p.path.name}  ({p.format})")),
            Content.assemble(("Segments ", "bold"), plain(f"{len(p.segments)}: {segs}")),
            Content.assemble(("Size     ", "bold"), plain(human_bytes(p.size))),
            Content.assemble(("Media    ", "bold"), plain(p.media_check)),
            Content.assemble(("Volumes", "bold")),
        ]
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
        found.update(lines(*rows))
        start = self.query_one("#start", Button)
        start.disabled = False
        start.focus()
        self._ready = True

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
                allow_self_authorisation=bool(
                    self.kiosk.state and self.kiosk.state.allow_self_authorisation
                ),
            )
        )

    @on(Button.Pressed, "#back")
    def action_back(self) -> None:
        self.app.pop_screen()


# --------------------------------------------------------------------------- scan


class ScanScreen(KioskScreen[None]):
    """The running scan: progress, rate, ETA, live findings (metadata only), Cancel."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,c", "cancel", "Cancel scan")]

    @dataclass
    class Progressed(Message):
        progress: Progress

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, ScanScreen.Progressed)  # only the latest matters

    class FindingsPending(Message):
        def can_replace(self, message: Message) -> bool:
            return isinstance(message, ScanScreen.FindingsPending)

    @dataclass
    class Finished(Message):
        result: TriageResult | None
        problem: str

    def __init__(self, request: TriageRequest) -> None:
        super().__init__()
        self.request = request
        self.cancel = threading.Event()
        self.running = False
        self.quit_when_done = False
        self._pending: list[FileRecord] = []
        self._lock = threading.Lock()
        self._shown = 0
        self._started = 0.0
        self._last: Progress | None = None

    def compose(self) -> ComposeResult:
        c = self.request.case
        yield TitleBar("New triage · 4 of 4 · scanning")
        with Vertical(id="scan"):
            yield Static(
                plain(
                    f"Case {c.case_ref} · exhibit {c.exhibit_ref} · {self.request.image[0].name}"
                ),
                id="what",
            )
            yield Static(id="state")
            yield ProgressBar(total=None, show_eta=False, id="bar")
            yield Static(id="numbers")
            yield Static(id="found")
            yield DataTable[Any](id="findings", cursor_type="row")
        yield Footer(show_command_palette=False)

    def on_mount(self) -> None:
        self._started = self.kiosk.monotonic()
        table = self.query_one("#findings", DataTable)
        for label, width in FINDING_COLUMNS:
            table.add_column(cell(label), width=width)  # a str label would be markup
        self._set_state("SCANNING", "do not remove the evidence; Esc cancels")
        self._numbers()
        self.set_interval(1.0, self._numbers)
        self.running = True
        self._scan()

    def _set_state(self, word: str, detail: str) -> None:
        self.query_one("#state", Static).update(
            Content.assemble((f"● {word}", "bold reverse"), "  ", plain(detail))
        )

    @work(thread=True, exclusive=True, group="scan")
    def _scan(self) -> None:
        app = self.kiosk
        hooks = Hooks(
            on_progress=self._progressed,
            on_finding=self._found,
            cancel=self.cancel,
            signer=app.state.signer if app.state else None,
            audit=app.audit_log(),
        )
        if app.clock is not None:
            hooks.clock = app.clock
        if app.new_id is not None:
            hooks.new_id = app.new_id
        try:
            result, problem = app.triage(self.request, hooks), ""
        except KioskError as e:
            result, problem = None, str(e)
        except Exception as e:  # the front end's promise: a message, never a traceback
            result, problem = None, f"internal error ({type(e).__name__}): {e}"
        self.post_message(self.Finished(result, problem))

    def _progressed(self, progress: Progress) -> None:
        self.post_message(self.Progressed(progress))

    def _found(self, finding: FileRecord) -> None:
        with self._lock:
            self._pending.append(finding)
        self.post_message(self.FindingsPending())

    def on_scan_screen_progressed(self, message: Progressed) -> None:
        self._last = message.progress
        p = message.progress
        bar = self.query_one("#bar", ProgressBar)
        bar.update(total=max(p.bytes_total, 1), progress=p.bytes_done)
        self._numbers()

    def on_scan_screen_findings_pending(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, []
        table = self.query_one("#findings", DataTable)
        for f in batch:
            self._shown += 1
            if self._shown > MAX_TABLE_FINDINGS:
                continue
            table.add_row(*finding_cells(f))
        self._numbers()

    def _numbers(self) -> None:
        p = self._last
        wall = self.kiosk.monotonic() - self._started
        if p is None:
            text = f"Preparing: opening the image, counting files · elapsed {duration(wall)}"
        else:
            elapsed = max(p.elapsed_s, wall)
            frac = p.bytes_done / p.bytes_total if p.bytes_total else 1.0
            rate = p.bytes_done / p.elapsed_s if p.elapsed_s > 0 else 0.0
            eta = duration(p.elapsed_s / frac - p.elapsed_s) if frac > 0 else "unknown"
            text = (
                f"Files {p.files_done}/{p.files_total} · "
                f"{human_bytes(p.bytes_done)}/{human_bytes(p.bytes_total)} · "
                f"{human_bytes(int(rate))}/s · elapsed {duration(elapsed)} · ETA {eta}"
            )
        self.query_one("#numbers", Static).update(plain(text))
        found = f"Findings: {self._shown} — metadata only (path, size, category, rule or set)"
        if self._shown > MAX_TABLE_FINDINGS:
            found = f"Findings: {self._shown} — the first {MAX_TABLE_FINDINGS} are shown here"
        self.query_one("#found", Static).update(Content.assemble((found, "bold")))

    def action_cancel(self) -> None:
        if not self.running or self.cancel.is_set():
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.stop()

        self.app.push_screen(
            ConfirmScreen(
                "Stop the scan? Files not yet examined will not be. A signed report is still "
                "written, marked CANCELLED, and it cannot say 'no matches'.",
                "Stop scan",
                "Keep scanning",
            ),
            answered,
        )

    def stop(self) -> None:
        """Ask the engine to stop; it finishes the file in hand and writes the report."""
        self.cancel.set()
        self._set_state("STOPPING", "finishing the signed report, marked cancelled…")

    def on_scan_screen_finished(self, message: Finished) -> None:
        self.running = False
        self.on_scan_screen_findings_pending()
        if self.quit_when_done:
            self.app.exit()
            return
        self.app.switch_screen(ResultScreen(message.result, message.problem))


FINDING_COLUMNS = (("[volume] path", 30), ("Size", 7), ("Category", 15), ("Rule or set", 16))


def tail(text: str, width: int) -> str:
    """The end of a long path (the file name matters most), marked with a leading ``…``."""
    return text if len(text) <= width else "…" + text[-(width - 1) :]


def finding_cells(f: FileRecord) -> tuple[Any, ...]:
    """One findings-table row: path, size, categories, rules or sets — never content."""
    matches = f.finding_matches
    cats = sorted({m.category for m in matches})
    what = [
        f"set {m.hashset}" if isinstance(m, HashMatch) else f"{m.pack}:{m.rule}" for m in matches
    ]
    return (
        cell(tail(f"[{f.volume}] {visible(f.path)}", FINDING_COLUMNS[0][1]), escape=False),
        cell(human_bytes(f.size)),
        cell(", ".join(cats)),
        cell(", ".join(what)),
    )


# --------------------------------------------------------------------------- result


class ResultScreen(KioskScreen[None]):
    """The end of a triage: the recommendation, why, what was not examined, where the report is."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("h", "html", "HTML report"),
        Binding("n", "new", "New triage"),
        Binding("escape", "home", "Home"),
    ]

    def __init__(self, result: TriageResult | None, problem: str) -> None:
        super().__init__()
        self.result, self.problem = result, problem

    def compose(self) -> ComposeResult:
        yield TitleBar("Triage result")
        if self.result is None:
            yield Static(plain("✗ THE SCAN DID NOT START"), classes="banner inconclusive")
            with VerticalScroll(id="result"):
                yield Static(
                    lines(
                        plain(self.problem),
                        "",
                        "Nothing was written to the reports folder. Press n to start again.",
                    )
                )
        else:
            r = self.result.report
            rec = r.recommendation.result
            title = RECOMMENDATION_TITLES[rec]
            status = r.outcome.status
            stopped = (
                [plain(f"Scan {status.value.upper()}: not every file was examined", "bold")]
                if status is not Outcome.COMPLETE
                else []
            )
            yield Static(
                lines(
                    plain(f"{BANNER_MARK[rec]} {title}", "bold"),
                    *stopped,
                    "Advisory: the decision is made by the reviewing supervisor.",
                ),
                classes=f"banner {BANNER_STYLE[rec]}",
                id="banner",
            )
            with VerticalScroll(id="result"):
                yield Static(result_body(self.result), id="body")
                yield Static("", id="html")
        yield Footer(show_command_palette=False)

    def action_html(self) -> None:
        """Write the printable HTML page beside the report, from the verified copy; say where."""
        if self.result is None:
            return
        st = self.kiosk.state
        out = self.query_one("#html", Static)
        try:
            if st is None or st.trust is None:
                raise KioskError(st.trust_problem if st else "no trust store")
            verified = verify_report_dir(self.result.report_dir, st.trust)
            path = self.result.report_dir / "report.html"
            write_file(path, render_html(verified).encode())  # never through a planted link
        except (KioskError, OSError) as e:
            out.update(plain(f"✗ The HTML report could not be written: {e}", "$error"))
            out.scroll_visible()
            return
        out.update(plain(f"HTML report written: {path}", "bold"))
        out.scroll_visible()
        self.notify(visible(str(path)), title="HTML report written", markup=False)

    def action_new(self) -> None:
        self.kiosk.go_home(then_new_triage=True)

    def action_home(self) -> None:
        self.kiosk.go_home()


def result_body(result: TriageResult) -> Content:
    """Reasons, counts, not-examined list and where the signed report is."""
    r = result.report
    rows: list[Content | str] = [Content.assemble(("Why", "bold"))]
    rows += [plain(f"  • {reason}") for reason in r.recommendation.reasons]
    cats = r.findings_by_category
    rows += ["", Content.assemble(("Findings by category", "bold"))]
    rows += [plain(f"  {c}: {n} file(s)") for c, n in cats.items()] or [plain("  none")]
    outside = r.settings.scope.out_of_scope_matches
    if outside:
        rows.append(
            plain(
                "  Outside the authorised scope (not findings, not listed): "
                + ", ".join(f"{o.category} {o.matches}" for o in outside)
            )
        )
    ne = r.not_examined
    rows += ["", Content.assemble(("Not examined", "bold"), plain(f" ({len(ne)})"))]
    for e in ne[:50]:
        what = e.where or e.kind.value
        if e.kind is NotExaminedKind.UNREACHED:
            what = f"{e.where} file(s) not reached"
        rows.append(plain(f"  - {what}: {e.reason}"))
    if len(ne) > 50:
        rows.append(plain(f"  … and {len(ne) - 50} more in the report"))
    cov = r.coverage.files
    rows += [
        "",
        Content.assemble(("Files", "bold"), plain(f"  {cov.examined} of {cov.found} examined")),
        Content.assemble(("Report", "bold"), plain(f" {r.report_id}")),
        Content.assemble(("Saved in", "bold"), plain(f" {result.report_dir}")),
        Content.assemble(("Signed", "bold"), plain(f" with key {r.signing_key[:16]}…")),
    ]
    return lines(*rows)
