"""Small widgets shared by the screens, and the one way to put untrusted text on screen.

Textual reads a plain ``str`` as markup in most widgets (``Static``, ``DataTable`` cells), so a
file named ``[red]x[/red]`` would be restyled and one holding escape codes could reach the
terminal. Every dynamic string therefore goes through ``plain()`` (for ``Static``/``Label``)
or ``cell()`` (for ``DataTable``): escaped by ``visible()`` and wrapped as literal text.
Status is always spelled out in words or symbols as well as colour.
"""

from __future__ import annotations

from typing import ClassVar, Self

from rich.cells import cell_len
from rich.segment import Segment
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.geometry import Region
from textual.screen import ModalScreen
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Button, SelectionList, Static
from textual.widgets.option_list import OptionDoesNotExist
from textual.widgets.selection_list import Selection

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


def cut_middle(text: str, width: int, keep: int = 0) -> str:
    """``text`` in at most ``width`` cells, cut in the middle with ``…`` where it is too long.

    A path's two ends say the most: its start (here the ``[volume]`` prefix, the first
    ``keep`` characters, always kept while they fit) and its end (the file name, kept whole
    when it fits). Cutting from the left, as before, lost the volume; from the right, the name.
    Widths are terminal cells, so wide characters count twice.
    """
    if cell_len(text) <= width:
        return text
    if width < 1:
        return ""
    room = width - 1  # the "…"
    head = _fit(text[:keep], room)
    room -= cell_len(head)
    rest = text[len(head) :]
    name = "/" + rest.rsplit("/", 1)[-1] if "/" in rest else ""
    tail = _fit_end(rest, min(room, cell_len(name)))  # the file name whole, if it fits
    room -= cell_len(tail)
    middle = text[len(head) : len(text) - len(tail)]
    more_head = _fit(middle, room - room // 2)  # what is left: half to each side
    more_tail = _fit_end(middle[len(more_head) :], room - cell_len(more_head))
    return head + more_head + "…" + more_tail + tail


def _fit(text: str, cells: int) -> str:
    """The longest start of ``text`` within ``cells``."""
    out = ""
    for ch in text:
        if cell_len(out + ch) > cells:
            break
        out += ch
    return out


def _fit_end(text: str, cells: int) -> str:
    """The longest end of ``text`` within ``cells``."""
    return _fit(text[::-1], cells)[::-1]


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


ALL = ("all", "")  # the value of CategoryList's "all of these" line; never a category


class CategoryList(SelectionList[tuple[str, str]]):
    """The categories an authority covers: a tick list, with an "all of these" first line.

    The tick is a character as well as a colour, ``✓`` ticked and blank not: Textual's own list
    draws the same ``X`` in both states and tells them apart by colour only, which a monochrome
    or colour-blind reader cannot see. Ticking the first line ticks every category, unticking
    it unticks them, and it is ticked exactly when every category is. Ticks and that
    bookkeeping are done as the key is handled, not on a later message, so a burst of keys
    leaves the list as the keys say.
    """

    def __init__(
        self,
        *selections: Selection[tuple[str, str]],
        all_label: str | None = None,
        id: str | None = None,
    ) -> None:
        items = list(selections)
        if all_label is not None and selections:
            every = all(s.initial_state for s in selections)
            items.insert(0, Selection(plain(all_label, "bold"), ALL, every))
        super().__init__(*items, id=id)

    @property
    def categories(self) -> list[tuple[str, str]]:
        """The ticked categories, without the "all of these" line."""
        return [v for v in self.selected if v != ALL]

    def _values_in_order(self) -> list[tuple[str, str]]:
        return [self.get_option_at_index(i).value for i in range(self.option_count)]

    def _on_selection_list_selection_highlighted(self) -> None:
        """Keep the highlighted line in sight: the list is as tall as its lines (nothing hides
        inside it), so it is the form around it that has to scroll."""
        parent = self.parent
        if isinstance(parent, Widget) and self.highlighted is not None:
            r = self.virtual_region
            parent.scroll_to_region(
                Region(r.x, r.y + self.highlighted, r.width, 1), animate=False, immediate=True
            )

    def action_select(self) -> None:
        """Tick or untick the highlighted line now, while its key is handled.

        Textual's list only posts a message here and ticks whatever is highlighted when the
        message arrives: in a burst, ``space down space`` would tick the second line twice
        and the first not at all.
        """
        if self.highlighted is not None:
            option = self.get_option_at_index(self.highlighted)
            if not option.disabled:
                self.toggle(option)

    def toggle(self, selection: Selection[tuple[str, str]] | tuple[str, str]) -> Self:
        super().toggle(selection)
        value = selection.value if isinstance(selection, Selection) else selection
        values = self._values_in_order()
        if ALL not in values:
            return self
        if value == ALL:
            for v in values:
                (self.select if ALL in self.selected else self.deselect)(v)
        elif all(v in self.selected for v in values if v != ALL):
            self.select(ALL)
        else:
            self.deselect(ALL)
        return self

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
