"""One error tree: every exception class kiosk defines is a KioskError, defined in kiosk.errors,
and drawn in that module's docstring. A new stray exception class fails here."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import ModuleType

import kiosk
import kiosk.errors


def _modules() -> list[ModuleType]:
    names = [
        m.name
        for m in pkgutil.walk_packages(kiosk.__path__, "kiosk.")
        if m.name != "kiosk.__main__"  # runs the command line when imported
    ]
    return [importlib.import_module(n) for n in sorted(names)]


def _exceptions() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for module in [kiosk, *_modules()]:
        for obj in vars(module).values():
            if (
                inspect.isclass(obj)
                and issubclass(obj, BaseException)
                and obj.__module__.split(".")[0] == "kiosk"
            ):
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return found


def test_every_exception_kiosk_defines_is_a_kiosk_error_in_kiosk_errors() -> None:
    found = _exceptions()
    assert len(_modules()) > 40  # the walk really saw the package
    stray = sorted(
        name
        for name, cls in found.items()
        if not (cls.__module__ == "kiosk.errors" and issubclass(cls, kiosk.errors.KioskError))
    )
    assert stray == []


def test_the_drawn_tree_names_every_error_under_its_parent() -> None:
    doc = kiosk.errors.__doc__ or ""
    drawn = {
        line.split("── ")[1].split()[0]: line.index("── ")
        for line in doc.splitlines()
        if "── " in line
    }
    defined = {
        name: cls
        for name, cls in vars(kiosk.errors).items()
        if inspect.isclass(cls) and issubclass(cls, kiosk.errors.KioskError)
    }
    assert set(defined) - {"KioskError"} <= set(drawn)
    top = min(drawn.values())
    for name, cls in defined.items():
        if name != "KioskError":
            parent = cls.__mro__[1].__name__
            assert drawn[name] == (top if parent == "KioskError" else drawn[parent] + 5), name
