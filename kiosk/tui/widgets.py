"""Small widgets shared by the screens, and the one way to put untrusted text on screen.

Textual reads a plain ``str`` as markup in most widgets (``Static``, ``DataTable`` cells), so a
file named ``[red]x[/red]`` would be restyled and one holding escape codes could reach the
terminal. Every dynamic string therefore goes through ``plain()`` (for ``Static``/``Label``)
or ``cell()`` (for ``DataTable``): escaped by ``visible()`` and wrapped as literal text.
Status is always spelled out in words or symbols as well as colour.
"""

from __future__ import annotations

from typing import ClassVar

from rich.segment import Segment
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.strip import Strip
from textual.widgets import Button, SelectionList, Static
from textual.widgets.option_list import OptionDoesNotExist

from kiosk.reports.text import visible


def plain(text: str, style: str = "") -> Content:
    """Literal, escaped content for a Static or Label, optionally styled as a whole."""
    content = Content(visible(text))
    return content.stylize(style) if style else content


def cell(text: str, style: str = "", escape: bool = True) -> Text:
    """Literal text for a DataTable cell, escaped unless the caller already did."""
    return Text(visible(text) if escape else text, style=style, no_wrap=True, overflow="ellipsis")


def lines(*parts: Content | str) -> Content:
    """Join content pieces as lines; ``str`` pieces are literal (never markup)."""
    return Content("\n").join(p if isinstance(p, Content) else plain(p) for p in parts)


def status(ok: bool, ok_word: str = "OK", bad_word: str = "REFUSED") -> Content:
    """A bracketed status word that reads the same in monochrome: ``[ OK ]`` / ``[REFUSED]``."""
    if ok:
        return Content(f"[{ok_word}]").stylize("bold $success")
    return Content(f"[{bad_word}]").stylize("bold $error")


class TitleBar(Static):
    """One line at the top: where the officer is in the flow. No clock: it would only distract."""

    def __init__(self, title: str) -> None:
        super().__init__(plain(f" kiosk · {title}"), classes="title-bar")


class ConfirmScreen(ModalScreen[bool]):
    """Ask one yes/no question; Escape means no. Used before anything that cannot be undone."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str, yes: str, no: str) -> None:
        super().__init__()
        self._question, self._yes, self._no = question, yes, no

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(plain(self._question), classes="question")
            with Horizontal(classes="buttons"):
                yield Button(f"{self._yes} (y)", id="yes", variant="error", compact=True)
                yield Button(f"{self._no} (n)", id="no", variant="primary", compact=True)

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()  # the safe answer is the default

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class CategoryList(SelectionList[tuple[str, str]]):
    """A SelectionList whose tick is a character as well as a colour: ``✓`` ticked, blank not.

    Textual's own list draws the same ``X`` in both states and tells them apart by colour
    only, which a monochrome or colour-blind reader cannot see.
    """

    def render_line(self, y: int) -> Strip:
        strip = super().render_line(y)
        segments = list(strip)
        if len(segments) < 3 or len(segments[1].text) != 1:  # ▐X▌: the X is segment 1
            return strip
        try:
            selection = self.get_option_at_index(self.scroll_offset.y + y)
        except OptionDoesNotExist:
            return strip
        mark = "✓" if selection.value in self.selected else " "
        segments[1] = Segment(mark, segments[1].style)
        return Strip(segments, strip.cell_length)
