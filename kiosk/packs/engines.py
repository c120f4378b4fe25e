"""The YARA engines kiosk can match with: libyara (through yara-python) and YARA-X.

Why two: libyara is the reference the design names, and every pack is validated with it
(``kiosk.packs.check``). YARA-X (VirusTotal's Rust rewrite) matches the same rule language with
a lower fixed cost per file and a faster scan, which is most of the work on a tree of small
files (bench/README.md). The two must give the same findings on the same packs before YARA-X
may be the default: ``tests/test_engines.py`` runs both over every sample image, the starter
packs' samples and a bench-style tree, and ``kiosk rules check`` names the rules one engine
cannot compile or evaluates differently on the pack's own samples.

Everything engine-specific lives here: compiling with the LOKI/THOR externals, serialising for
worker processes and the compiled-rules cache, and one scanner per process that sets the
externals per file and enforces the time limit. The rest of kiosk sees (namespace, rule) pairs
and two error types.
"""

from __future__ import annotations

import functools
import hashlib
import io
import threading
from abc import ABC, abstractmethod
from typing import Any

import yara
import yara_x

from kiosk.errors import ConfigError, RuleScanError, RulesError, RuleTimeoutError

LIBYARA = "libyara"
YARA_X = "yara-x"
ENGINE_NAMES = (LIBYARA, YARA_X)
# The engine a scan uses unless told otherwise (``--yara-engine``, ``yara_engine`` in config.toml).
# YARA-X only because tests/test_engines.py proves identical findings on every sample image, the
# starter packs' samples and a bench-style tree; if that test fails, this goes back to libyara.
DEFAULT_ENGINE = YARA_X


def check_engine(name: str) -> str:
    """An engine name as the front ends and config.toml give it."""
    if name not in ENGINE_NAMES:
        raise ConfigError(f"unknown YARA engine {name!r}: use one of {', '.join(ENGINE_NAMES)}")
    return name


class Engine(ABC):
    """Compile, serialise and match; one instance per process is enough (they hold no rules)."""

    name: str
    modules: frozenset[str]

    @property
    @abstractmethod
    def version(self) -> str: ...

    @property
    def label(self) -> str:
        """How the report and ``rules check`` name it: ``yara-x 1.23.0``."""
        return f"{self.name} {self.version}"

    @abstractmethod
    def compile(self, sources: dict[str, str], externals: dict[str, str]) -> Any:
        """One compiled set, a namespace per key; raises ``RulesError`` with the engine's words."""

    @abstractmethod
    def save(self, rules: Any) -> bytes: ...

    @abstractmethod
    def load(self, blob: bytes) -> Any: ...

    def load_for_scan(self, blob: bytes) -> Any:
        """``load``, unless this process loaded these very bytes ahead (``load_ahead``): then
        that set, taken once."""
        if not _AHEAD:  # an ordinary worker: nothing to look up, nothing to hash
            return self.load(blob)
        ahead = _AHEAD.pop((self.name, hashlib.sha256(blob).digest()), None)
        return ahead if ahead is not None else self.load(blob)

    def from_cache(self, blob: bytes) -> Any:
        """A set read from the compiled-rules cache: held as bytes until used (``Stored``)."""
        return Stored(self, blob)

    def serialise(self, rules: Any) -> bytes:
        """``save``, without a round trip for a set still held as it was read (``Stored``)."""
        return rules.blob if isinstance(rules, Stored) else self.save(rules)

    @abstractmethod
    def scanner(self, rules: Any, timeout_s: int) -> Scanner: ...


# Sets loaded before this process knew its scan, by engine and the SHA-256 of their bytes.
_AHEAD: dict[tuple[str, bytes], Any] = {}


def load_ahead(eng: Engine, blob: bytes) -> None:
    """Load a serialised set now, for the scan this process will be given later.

    Why: a standby worker (``kiosk.engine.standby``) is started while the officer is still
    filling in the case; deserialising the rules is most of a worker's start (YARA-X: 26, 18
    and 18 ms for the full, gated and window sets, the GIL held), and done here it is not
    waited for when Run is pressed. The scan's own configuration still carries the bytes: a set
    is used only if they are the very bytes loaded here (``Engine.load_for_scan``), so rules
    that changed in between are loaded afresh, never mixed up.
    """
    _AHEAD[(eng.name, hashlib.sha256(blob).digest())] = eng.load(blob)


class Stored:
    """A compiled set as its engine serialised it (a compiled-rules cache hit), loaded on use.

    Why: a scan hands its sets to the workers as bytes and never matches with them itself, yet
    it loaded all three from the cache and serialised them again: with YARA-X 75 ms of the
    kiosk's own core before any worker could start (issue 19: time to first finding). The
    bytes are the cache's, checked against the kiosk's key before they get here; anything that
    does match in this process (``kiosk rules`` commands) loads them on first use.
    """

    def __init__(self, eng: Engine, blob: bytes) -> None:
        self.engine = eng
        self.blob = blob
        self._loaded: Any = None

    def load(self) -> Any:
        if self._loaded is None:
            self._loaded = self.engine.load(self.blob)
        return self._loaded


class Scanner(ABC):
    """Matches one compiled set in one process; raises ``RuleTimeoutError``/``RuleScanError``."""

    @abstractmethod
    def scan(self, data: bytes | bytearray, externals: dict[str, str]) -> list[tuple[str, str]]:
        """(namespace, rule) of every non-private rule that matched ``data``."""

    @abstractmethod
    def scan_offsets(self, data: bytes) -> list[tuple[str, str, list[int]]]:
        """(namespace, rule, where each of its strings matched) of every rule that matched
        ``data``, externals at their compiled defaults: the windows' view (engine.windows),
        which reports offsets, never content."""


# --------------------------------------------------------------------------- libyara


class _LibyaraScanner(Scanner):
    def __init__(self, rules: Any, timeout_s: int) -> None:
        self._rules = rules
        self._timeout = timeout_s

    def _match(self, data: bytes | bytearray, **externals: Any) -> Any:
        try:
            return self._rules.match(data=data, timeout=self._timeout, **externals)
        except yara.TimeoutError as e:
            raise RuleTimeoutError(str(e)) from e
        except yara.Error as e:
            raise RuleScanError(str(e)) from e

    def scan(self, data: bytes | bytearray, externals: dict[str, str]) -> list[tuple[str, str]]:
        return [(m.namespace, m.rule) for m in self._match(data, externals=externals)]

    def scan_offsets(self, data: bytes) -> list[tuple[str, str, list[int]]]:
        found = self._match(data)
        return [
            (m.namespace, m.rule, [i.offset for s in m.strings for i in s.instances]) for m in found
        ]


class Libyara(Engine):
    name = LIBYARA
    modules = frozenset(yara.modules)

    @property
    def version(self) -> str:
        return str(yara.__version__)

    def compile(self, sources: dict[str, str], externals: dict[str, str]) -> Any:
        try:
            return yara.compile(sources=sources, externals=externals, includes=False)
        except yara.Error as e:
            raise RulesError(str(e)) from e

    def save(self, rules: Any) -> bytes:
        buf = io.BytesIO()
        rules.save(file=buf)
        return buf.getvalue()

    def load(self, blob: bytes) -> Any:
        try:
            return yara.load(file=io.BytesIO(blob))
        except yara.Error as e:
            raise RulesError(str(e)) from e

    def from_cache(self, blob: bytes) -> Any:
        return self.load(blob)  # a few ms, and the gate keeps libyara's object

    def scanner(self, rules: Any, timeout_s: int) -> Scanner:
        return _LibyaraScanner(rules, timeout_s)


# --------------------------------------------------------------------------- YARA-X


class _YaraXState:
    """One yara-x scanner and the globals it holds now (set only what changed)."""

    def __init__(self, rules: Any, timeout_s: int) -> None:
        self.rules = rules  # held, so the identity test below can never match a reused id
        self.timeout_s = timeout_s
        self.scanner = yara_x.Scanner(rules)
        self.scanner.set_timeout(timeout_s)
        self.set: dict[str, str] = {}
        self.undefined: set[str] = set()


# yara-x's Scanner is bound to the thread that made it (dropping it on another thread aborts
# with "unsendable"), while a scan may run on any thread (the app's worker thread, a Dask worker
# thread). So each thread keeps its own few scanners, made and dropped on that thread; a new one
# costs ~50 µs, against ~2 µs for a call on one already made.
_THREAD = threading.local()
_PER_THREAD = 4  # the full and the gate's reduced set, and a little room


def _state(rules: Any, timeout_s: int) -> _YaraXState:
    cache: list[_YaraXState] | None = getattr(_THREAD, "yara_x", None)
    if cache is None:
        cache = _THREAD.yara_x = []
    for st in cache:
        if st.rules is rules and st.timeout_s == timeout_s:
            return st
    st = _YaraXState(rules, timeout_s)
    cache.insert(0, st)
    del cache[_PER_THREAD:]
    return st


def _run(st: _YaraXState, data: bytes) -> Any:
    try:
        return st.scanner.scan(data)
    except yara_x.TimeoutError as e:
        raise RuleTimeoutError(str(e) or "timed out") from e
    except yara_x.ScanError as e:
        raise RuleScanError(str(e)) from e


class _YaraXScanner(Scanner):
    def __init__(self, rules: Any, timeout_s: int) -> None:
        self._rules = rules
        self._timeout = timeout_s

    def scan(self, data: bytes | bytearray, externals: dict[str, str]) -> list[tuple[str, str]]:
        st = _state(self._rules, self._timeout)
        for k, v in externals.items():
            if st.set.get(k) != v and k not in st.undefined:
                try:
                    st.scanner.set_global(k, v)
                except ValueError:  # not defined when compiled: no rule can read it
                    st.undefined.add(k)
                st.set[k] = v
        # the binding takes bytes only: a bytearray is copied once (up to the YARA cap)
        results = _run(st, data if isinstance(data, bytes) else bytes(data))
        return [(r.namespace, r.identifier) for r in results.matching_rules]

    def scan_offsets(self, data: bytes) -> list[tuple[str, str, list[int]]]:
        results = _run(_state(self._rules, self._timeout), data)
        return [
            (r.namespace, r.identifier, [m.offset for p in r.patterns for m in p.matches])
            for r in results.matching_rules
        ]


class YaraX(Engine):
    name = YARA_X
    modules = frozenset(yara_x.module_names())  # type: ignore[attr-defined]

    @property
    def version(self) -> str:
        """From the package metadata, read when first asked: importlib.metadata costs ~75 ms of
        start-up in every worker process, which never needs it."""
        return _yara_x_version()

    def compile(self, sources: dict[str, str], externals: dict[str, str]) -> Any:
        c = yara_x.Compiler(includes_enabled=False)
        try:
            for k, v in externals.items():
                c.define_global(k, v)
            for ns, text in sources.items():
                c.new_namespace(ns)
                c.add_source(text)
            return c.build()
        except yara_x.CompileError as e:
            raise RulesError(_first_line(str(e))) from e

    def save(self, rules: Any) -> bytes:
        buf = io.BytesIO()
        rules.serialize_into(buf)
        return buf.getvalue()

    def load(self, blob: bytes) -> Any:
        try:
            return yara_x.Rules.deserialize_from(io.BytesIO(blob))
        except Exception as e:  # the binding raises plain exceptions for a bad blob
            raise RulesError(f"{type(e).__name__}: {e}") from e

    def scanner(self, rules: Any, timeout_s: int) -> Scanner:
        return _YaraXScanner(rules, timeout_s)


@functools.cache
def _yara_x_version() -> str:
    import importlib.metadata

    return importlib.metadata.version("yara-x")


def _first_line(text: str) -> str:
    """YARA-X errors are multi-line source excerpts; the first line and the location suffice."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    where = next((ln.strip() for ln in lines[1:] if ln.strip().startswith("-->")), "")
    return f"{lines[0]} ({where.removeprefix('--> ')})" if where else (lines[0] if lines else text)


_ENGINES: dict[str, Engine] = {LIBYARA: Libyara(), YARA_X: YaraX()}


def engine(name: str) -> Engine:
    """The engine by name (``check_engine`` first for a name a person typed)."""
    return _ENGINES[check_engine(name)]
