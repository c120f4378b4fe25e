"""requirements.lock, which `make` installs from with --require-hashes, says what pyproject.toml
says: the same exact pin for every runtime and dev dependency, a build backend the build system
accepts, and hashes for every package. A pin changed in one file and not the other fails here
(refresh the lock with `make lock`)."""

from __future__ import annotations

import re
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import ROOT

LOCK = ROOT / "requirements.lock"
_PIN = re.compile(r"^([A-Za-z0-9._-]+)==(\S+) \\$")


def _locked() -> dict[str, tuple[str, int]]:
    """name -> (version, number of hashes) for every package in the lock."""
    out: dict[str, tuple[str, int]] = {}
    name = ""
    for line in LOCK.read_text(encoding="utf-8").splitlines():
        if m := _PIN.match(line):
            name = canonicalize_name(m.group(1))
            assert name not in out, f"{name} is locked twice"
            out[name] = (m.group(2), 0)
        elif line.strip().startswith("--hash=sha256:") and name:
            version, n = out[name]
            out[name] = (version, n + 1)
    return out


def _pyproject() -> dict[str, object]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_every_pin_of_pyproject_is_locked_at_the_same_version() -> None:
    project = _pyproject()["project"]
    assert isinstance(project, dict)
    pins = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    locked = _locked()
    for text in pins:
        req = Requirement(text)
        (spec,) = req.specifier  # pyproject keeps exact pins: one "==" each
        assert spec.operator == "==", f"{text}: pyproject.toml pins exactly"
        name = canonicalize_name(req.name)
        assert name in locked, f"{req.name} is pinned in pyproject.toml but not in the lock"
        assert locked[name][0] == spec.version, (
            f"{req.name}: pyproject.toml pins {spec.version}, requirements.lock {locked[name][0]}"
        )


def test_the_build_backend_pip_and_every_package_are_locked_with_hashes() -> None:
    build = _pyproject()["build-system"]
    assert isinstance(build, dict)
    locked = _locked()
    for text in [*build["requires"], "pip"]:
        req = Requirement(text)
        name = canonicalize_name(req.name)
        assert name in locked, f"{req.name} (to build and install kiosk) is not in the lock"
        assert req.specifier.contains(locked[name][0]), f"{req.name} {locked[name][0]}: {text}"
    assert all(n > 0 for _, n in locked.values())
    assert "setuptools" in locked
    assert int(locked["setuptools"][0].split(".")[0]) >= 77  # not the venv's old 65.5
