"""The supervisor's screens: every report with its verification badge, one report, a decision.

Each report is verified before it is shown (signature, trusted key at signing time, report
bytes, inventory), so a supervisor never reads or decides on a report that does not check out;
an invalid one is listed with the reason and cannot be reviewed. A decision is signed with the
supervisor's own key (its file is named and its passphrase typed on the decision screen, used
once and dropped) — never with this kiosk's key, which signs reports only — and written beside
the report as ``reviews/NNN.dsse.json`` by the same code as ``kiosk review``, so ``kiosk report
verify`` checks it too. The reviewer's name is the label this kiosk trusts that key under.
Files in a report folder that no signature covers are shown as unauthenticated.
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

from kiosk.errors import KioskError, SigningError
from kiosk.reports.attestation import DECISIONS, uncovered_files, write_review
from kiosk.reports.text import render_text, visible
from kiosk.trust.signing import load_signer
from kiosk.tui.base import KioskScreen
from kiosk.tui.flow import (
    DECISION_LABELS,
    ReportEntry,
    ReviewFilter,
    check_report,
    report_dirs,
    shown_in_list,
)
from kiosk.tui.widgets import TitleBar, cell, lines, plain, status

UNVERIFIED = " (unverified)"  # after every value of an INVALID row: none of it can be trusted


class ReviewListScreen(KioskScreen[None]):
    """Reports in the reports folder, newest first, each verified as it is listed; filtered.

    Result comes second so that it stays on screen in a narrow terminal; a filter (unreviewed,
    submit, inconclusive, a case) narrows the list without verifying anything again.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("u", "only('unreviewed')", "Unreviewed"),
        Binding("s", "only('submit')", "Submit"),
        Binding("i", "only('inconclusive')", "Inconclusive"),
        Binding("c", "case", "Case"),
        Binding("a", "only('all')", "All"),
    ]

    @dataclass
    class Checked(Message):
        entry: ReportEntry

    class AllChecked(Message):
        pass

    def __init__(self) -> None:
        super().__init__()
        self._entries: list[ReportEntry] = []
        self._done = False
        self.kind = ReviewFilter.ALL
        self.case = ""

    def compose(self) -> ComposeResult:
        yield TitleBar("Review reports")
        with Vertical(id="reviews"):
            yield Static(
                plain(
                    f"Reports in {self.kiosk.settings.reports_dir}, newest first. "
                    "Enter opens one; only reports with a valid signature can be reviewed."
                ),
                classes="hint",
            )
            yield DataTable[Any](id="reports", cursor_type="row")
            yield Input(id="case-filter", compact=True, placeholder="case reference, then Enter")
            yield Static("", id="count")
        yield Footer(show_command_palette=False)

    def on_mount(self) -> None:
        table = self.query_one("#reports", DataTable)
        table.add_columns(
            "Signature", "Result", "Case", "Exhibit", "Officer", "Reviews", "Finished UTC"
        )
        self.query_one("#case-filter", Input).display = False
        self.query_one("#count", Static).update(plain("Verifying…"))
        table.focus()
        self._verify()

    def on_screen_resume(self) -> None:
        if self._done:  # back from a report: its review count may have changed
            self._entries = []
            self._done = False
            self.query_one("#reports", DataTable).clear()
            self._verify()

    @work(thread=True, exclusive=True, group="verify")
    def _verify(self) -> None:
        st = self.kiosk.state
        trust = st.trust if st else None
        audit = self.kiosk.audit_log().path
        for d in report_dirs(self.kiosk.settings.reports_dir):
            self.post_message(self.Checked(check_report(d, trust, audit)))
        self.post_message(self.AllChecked())

    def on_review_list_screen_checked(self, message: Checked) -> None:
        self._entries.append(message.entry)
        if shown_in_list(message.entry, self.kind, self.case):
            self._add_row(len(self._entries) - 1)

    def _add_row(self, index: int) -> None:
        e = self._entries[index]
        table = self.query_one("#reports", DataTable)
        if e.verified is None:  # read from a file that failed to verify: every value says so
            table.add_row(
                cell("✗ INVALID", "bold red"),
                *[
                    cell(visible(v) + UNVERIFIED, "red", escape=False)
                    for v in (e.result, e.case_ref, e.exhibit_ref, e.officer)
                ],
                cell("-"),
                cell(visible(e.finished) + UNVERIFIED, "red", escape=False),
                key=str(index),
            )
            return
        table.add_row(
            cell("✓ valid", "bold"),
            cell(e.result, "bold"),
            cell(e.case_ref),
            cell(e.exhibit_ref),
            cell(e.officer),
            cell(str(e.reviews) if e.reviews else "none"),
            cell(e.finished),
            key=str(index),
        )

    def on_review_list_screen_all_checked(self) -> None:
        self._done = True
        self._show_count()

    def _show_count(self) -> None:
        shown = self.query_one("#reports", DataTable).row_count
        bad = sum(1 for x in self._entries if x.verified is None)
        invalid = f", {bad} INVALID" if bad else ""
        total = len(self._entries)
        if self.kind is ReviewFilter.ALL and not self.case:
            text = f"{total} report(s){invalid}" + (" — none yet" if not total else "")
        else:
            what = "" if self.kind is ReviewFilter.ALL else f"{self.kind.value} "
            case = f" of case '{self.case}'" if self.case else ""
            text = f"showing {shown} {what}report(s){case}, of {total}{invalid}; a: all"
        self.query_one("#count", Static).update(plain(text))

    def _refilter(self) -> None:
        self.query_one("#reports", DataTable).clear()
        for i, e in enumerate(self._entries):
            if shown_in_list(e, self.kind, self.case):
                self._add_row(i)
        if self._done:
            self._show_count()

    def action_only(self, kind: str) -> None:
        self.kind = ReviewFilter(kind)
        if self.kind is ReviewFilter.ALL:
            self.case = ""
        self._refilter()

    def action_case(self) -> None:
        box = self.query_one("#case-filter", Input)
        box.value = self.case
        box.display = True
        box.focus()

    @on(Input.Submitted, "#case-filter")
    def _case_given(self, event: Input.Submitted) -> None:
        self.case = event.value.strip()
        self._close_case_box()
        self._refilter()

    def _close_case_box(self) -> None:
        self.query_one("#case-filter", Input).display = False
        self.query_one("#reports", DataTable).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # letters typed into the case box are text, not filters
        return not (action in ("only", "case") and self.query_one("#case-filter", Input).has_focus)

    @on(DataTable.RowSelected, "#reports")
    def _open(self, event: DataTable.RowSelected) -> None:
        key = event.row_key.value
        if key is not None:
            self.app.push_screen(ReportScreen(self._entries[int(key)]))

    def action_back(self) -> None:
        if self.query_one("#case-filter", Input).display:
            self._close_case_box()
            return
        self.app.pop_screen()


class ReportScreen(KioskScreen[None]):
    """One report as text, its signature status and the reviews it already has."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("d", "decide", "Record decision"),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, entry: ReportEntry) -> None:
        super().__init__()
        self.entry = entry

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """``d`` is not offered on a report that does not verify (and does nothing there)."""
        return not (action == "decide" and self.entry.verified is None)

    def compose(self) -> ComposeResult:
        yield TitleBar(f"Report {self.entry.directory.name}")
        with VerticalScroll(id="report"):
            yield Static(self._text(), id="report-text")
        yield Footer(show_command_palette=False)

    def _text(self) -> Content:
        e = self.entry
        v, report = e.verified, e.report
        if v is None or report is None:
            return lines(
                Content.assemble(status(False, bad_word="INVALID"), " ", plain(str(e.directory))),
                plain(e.problem, "$error"),
                "",
                "This report does not verify: do not rely on it. It cannot be reviewed here.",
            )
        rows: list[Content | str] = [
            Content.assemble(
                status(True, ok_word="VERIFIED"),
                plain(f" signed by {v.keyid[:16]}… at {v.signed_at}"),
            ),
            Content.assemble(("Reviews", "bold"), plain(f" ({len(v.reviews)})")),
        ]
        rows += [
            plain(
                f"  {r.decision} by {r.reviewer} at {r.time} (signed {r.keyid[:16]}…): {r.reason}"
            )
            for r in v.reviews
        ] or [plain("  none yet — press d to record a decision")]
        rows += [
            plain(f"UNAUTHENTICATED: {name} is in the folder but not covered by any signature")
            for name in map(visible, uncovered_files(v))
        ]
        rows += ["", *[Content(line) for line in render_text(report).splitlines()]]  # visible()d
        return lines(*rows)

    def action_decide(self) -> None:
        if self.entry.verified is None:
            self.notify("An invalid report cannot be reviewed.", severity="error")
            return
        if self.kiosk.state is None or self.kiosk.state.trust is None:
            self.notify(
                "No trust store on this kiosk: a review cannot be signed.", severity="error"
            )
            return
        self.app.push_screen(DecisionScreen(self.entry), self._decided)

    def _decided(self, entry: ReportEntry | None) -> None:
        if entry is not None:
            self.entry = entry
            self.query_one("#report-text", Static).update(self._text())

    def action_back(self) -> None:
        self.app.pop_screen()


class DecisionScreen(KioskScreen[ReportEntry | None]):
    """Record a supervisor's decision: submit, return or more info, who, and why."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Cancel"),
        Binding("f2", "sign", "Sign and save"),
    ]

    def __init__(self, entry: ReportEntry) -> None:
        super().__init__()
        self.entry = entry

    def compose(self) -> ComposeResult:
        e = self.entry
        yield TitleBar("Record a review decision")
        with VerticalScroll(id="form"):
            yield Static(
                plain(
                    f"Report {e.directory.name}: case {e.case_ref}, exhibit {e.exhibit_ref}, "
                    f"officer {e.officer}, {e.recommendation}. Tab moves on; F2 signs and saves."
                ),
                classes="hint",
            )
            with Horizontal(classes="field"):
                yield Label(plain("Decision *"))
                yield Select(
                    [(DECISION_LABELS[d], d) for d in DECISIONS],
                    prompt="choose (Enter)",
                    compact=True,
                    id="decision",
                )
            yield Static("", id="decision-error", classes="error field-error")
            with Horizontal(classes="field"):
                yield Label(plain("Your key file *"))
                yield Input(id="keyfile", compact=True, placeholder="e.g. /media/token/ds-5678.key")
            yield Static("", id="keyfile-error", classes="error field-error")
            with Horizontal(classes="field"):
                yield Label(plain("Its passphrase"))
                yield Input(id="passphrase", compact=True, password=True)
            yield Static("", id="passphrase-error", classes="error field-error")
            with Horizontal(classes="field"):
                yield Label(plain("Reason *"))
                yield Input(id="reason", compact=True, placeholder="why")
            yield Static("", id="reason-error", classes="error field-error")
            with Horizontal(classes="buttons"):
                yield Button("Sign and save (F2)", id="sign", variant="primary", compact=True)
                yield Button("Cancel (Esc)", id="cancel", compact=True)
        yield Footer(show_command_palette=False)

    def on_mount(self) -> None:
        for w in self.query(".field-error"):
            w.display = False
        self.query_one("#decision", Select).focus()

    def _show(self, name: str, message: str) -> None:
        w = self.query_one(f"#{name}-error", Static)
        w.update(plain(f"✗ {message}") if message else "")
        w.display = bool(message)

    @on(Input.Submitted)
    def _next_field(self) -> None:
        self.focus_next()

    @on(Button.Pressed, "#sign")
    def action_sign(self) -> None:
        decision = self.query_one("#decision", Select).value
        keyfile = self.query_one("#keyfile", Input).value.strip()
        secret = self.query_one("#passphrase", Input)
        reason = self.query_one("#reason", Input).value.strip()
        errors = {
            "decision": "" if isinstance(decision, str) else "Choose a decision.",
            "keyfile": "" if keyfile else "Your key file is required: it says who you are.",
            "passphrase": "",
            "reason": "" if reason else "Give the reason for the decision.",
        }
        for name, message in errors.items():
            self._show(name, message)
        first = next((n for n, m in errors.items() if m), None)
        if first:
            self.query_one(f"#{first}").focus()
        st = self.kiosk.state
        verified = self.entry.verified
        if any(errors.values()) or not isinstance(decision, str):
            return
        if st is None or st.trust is None or verified is None:
            return
        try:
            signer = load_signer(Path(keyfile).expanduser(), lambda: secret.value.encode())
        except KioskError as e:
            self._show("keyfile", str(e))
            self.query_one("#keyfile").focus()
            return
        finally:
            secret.value = ""  # used once: never kept on the screen or in the widget
        try:
            written = write_review(verified, decision, reason, signer, self.kiosk.now(), st.trust)
        except KioskError as e:
            self._show("keyfile" if isinstance(e, SigningError) else "reason", str(e))
            return
        self.kiosk.audit_event(
            "review_recorded",
            report_id=verified.report.get("report_id"),
            decision=decision,
            reviewer=written.reviewer,
            keyid=signer.keyid,
            report_sha256=verified.envelope_sha256,
            review=written.path.name,
            sha256=written.sha256,
        )
        self.notify(
            visible(f"Review by {written.reviewer} signed and saved: {written.path}"),
            title="Saved",
            markup=False,
        )
        self.dismiss(check_report(self.entry.directory, st.trust, self.kiosk.audit_log().path))

    @on(Button.Pressed, "#cancel")
    def action_back(self) -> None:
        self.dismiss(None)
