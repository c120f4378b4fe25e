"""The officer's screens around the scan: home, the running scan, and the result.

The case, evidence and preflight screens met in between are in ``kiosk.tui.intake``. Once a
scan starts the only ways out are its end or a confirmed cancel — both of which leave a signed
report. Slow work (loading packs, the scan itself) runs in thread workers that post messages
back, as in toolong, so the screen never freezes.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.widgets import Button, DataTable, Footer, ProgressBar, Static

from kiosk.engine.triage import Hooks, TriageRequest, TriageResult
from kiosk.errors import KioskError
from kiosk.model import HashMatch, Progress, Recommendation
from kiosk.reports.attestation import verify_report_dir
from kiosk.reports.folder import write_file
from kiosk.reports.html import render_html
from kiosk.reports.model import FileRecord
from kiosk.reports.summary import (
    archive_members_text,
    area_lines,
    banner_notes,
    not_examined_lines,
    outside_scope_text,
    scope_text,
)
from kiosk.reports.text import RECOMMENDATION_TITLES, visible
from kiosk.tui.authority import next_exhibit
from kiosk.tui.base import KioskScreen
from kiosk.tui.flow import (
    KioskState,
    human_bytes,
    load_state,
    progress_text,
)
from kiosk.tui.intake import CaseScreen
from kiosk.tui.review import ReviewListScreen
from kiosk.tui.widgets import ConfirmScreen, TitleBar, cell, cut_middle, lines, plain, status

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

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "new_triage":  # offered only when it works
            st = self.kiosk.state
            return st is not None and st.can_triage
        return True

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
        self.refresh_bindings()
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
        hooks.standby = app.take_standby()
        try:
            result, problem = app.triage(self.request, hooks), ""
        except KioskError as e:
            result, problem = None, str(e)
        except Exception as e:  # the front end's promise: a message, never a traceback
            result, problem = None, f"internal error ({type(e).__name__}): {e}"
        finally:
            if hooks.standby is not None:
                hooks.standby.close()  # not taken when the scan stopped before its workers
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
        if p.counting:  # the total still grows: the bar pulses instead of moving backwards
            bar.update(total=None)
        else:
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
        text = progress_text(self._last, self.kiosk.monotonic() - self._started)
        self.query_one("#numbers", Static).update(plain(text))
        found = f"Findings: {self._shown} — metadata only (path, size, category, rule or set)"
        if self._shown > MAX_TABLE_FINDINGS:
            found = f"Findings: {self._shown} — the first {MAX_TABLE_FINDINGS} are shown here"
        self.query_one("#found", Static).update(
            lines(Content.assemble((found, "bold")), plain(FINDINGS_LEGEND, "$text-muted"))
        )

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel":  # not once it is stopping or has ended
            return self.running and not self.cancel.is_set()
        return True

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
        self.refresh_bindings()

    def on_scan_screen_finished(self, message: Finished) -> None:
        self.running = False
        self.on_scan_screen_findings_pending()
        if self.quit_when_done:
            self.app.exit()
            return
        self.app.switch_screen(ResultScreen(message.result, message.problem, self.request))


FINDING_COLUMNS = (("[vol] path", 30), ("Size", 7), ("Category", 15), ("Rule or set", 16))
FINDINGS_LEGEND = "[n]: volume n as numbered in the preflight · deleted: a deleted file's entry"


def finding_path(f: FileRecord, width: int) -> str:
    """``[1] /Docs/…/name.txt``, or ``[1] deleted /…`` for a deleted entry, cut in the middle
    so that the volume, the deleted mark and the file name all stay in sight."""
    prefix = f"[{f.volume}] " + ("deleted " if not f.allocated else "")
    return cut_middle(prefix + visible(f.path), width, keep=len(prefix))


def finding_cells(f: FileRecord) -> tuple[Any, ...]:
    """One findings-table row: path, size, categories, rules or sets — never content."""
    matches = f.finding_matches
    cats = sorted({m.category for m in matches})
    what = [
        f"set {m.hashset}" if isinstance(m, HashMatch) else f"{m.pack}:{m.rule}" for m in matches
    ]
    return (
        cell(finding_path(f, FINDING_COLUMNS[0][1]), escape=False),
        cell(human_bytes(f.size)),
        cell(", ".join(cats)),
        cell(", ".join(what)),
    )


# --------------------------------------------------------------------------- result


class ResultScreen(KioskScreen[None]):
    """The end of a triage: the recommendation, why, what was not examined, where the report is."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("h", "html", "HTML report"),
        Binding("e", "next_exhibit", "Next exhibit, same case"),
        Binding("n", "new", "New triage"),
        Binding("escape", "home", "Home"),
    ]

    def __init__(
        self, result: TriageResult | None, problem: str, request: TriageRequest | None = None
    ) -> None:
        super().__init__()
        self.result, self.problem, self.request = result, problem, request

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "html":
            return self.result is not None
        if action == "next_exhibit":
            return self.request is not None
        return True

    def compose(self) -> ComposeResult:
        yield TitleBar("Triage result")
        if self.result is None:
            yield Static(plain("✗ THE SCAN DID NOT START"), classes="banner inconclusive")
            with VerticalScroll(id="result"):
                yield Static(
                    lines(
                        plain(self.problem),
                        "",
                        "Nothing was written to the reports folder. Press n to start again"
                        + (", or e to keep the case and authority." if self.request else "."),
                    )
                )
        else:
            r = self.result.report
            rec = r.recommendation.result
            title = RECOMMENDATION_TITLES[rec]
            yield Static(
                lines(
                    plain(f"{BANNER_MARK[rec]} {title}", "bold"),
                    *[plain(note, "bold") for note in banner_notes(r)],
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

    def action_next_exhibit(self) -> None:
        """A new triage with this case and authority kept; audited, as the form is not retyped."""
        if self.request is None:
            return
        case = self.request.case
        self.kiosk.audit_event(
            "next_exhibit",
            case_ref=case.case_ref,
            after_exhibit=case.exhibit_ref,
            report_id=self.result.report_dir.name if self.result else None,  # reports/<id>/
            kept=["case_ref", "officer", "authorised_by", "legal_basis", "legal_ref", "scope"],
        )
        self.kiosk.go_home(then_new_triage=True, draft=next_exhibit(case, self.request.scope))

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
    rows += ["", Content.assemble(("Scope", "bold"), plain(f" {scope_text(r)}"))]
    rows.append(plain(f"  {outside_scope_text(r)}"))
    areas = area_lines(r)  # unallocated space, slack, outside partitions (none: older reports)
    rows += [""] + [plain(line) for line in areas[:21]] if areas else []
    ne = r.not_examined
    rows += ["", Content.assemble(("Not examined", "bold"), plain(f" ({len(ne)})"))]
    rows += [plain(line) for line in not_examined_lines(r, limit=50)]
    cov = r.coverage.files
    rows += [
        "",
        Content.assemble(("Files", "bold"), plain(f"  {cov.examined} of {cov.found} examined")),
        *[plain(line) for line in (archive_members_text(r),) if line],
        Content.assemble(("Report", "bold"), plain(f" {r.report_id}")),
        Content.assemble(("Saved in", "bold"), plain(f" {result.report_dir}")),
        Content.assemble(("Signed", "bold"), plain(f" with key {r.signing_key[:16]}…")),
    ]
    return lines(*rows)
