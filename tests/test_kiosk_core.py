"""The starter pack rules/kiosk-core: its own samples pass, and the trickier conditions (Luhn,
track data, seed phrases) agree with an independent implementation."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.packs.check import compile_pack_sources, read_pack
from kiosk.packs.load import file_externals
from kiosk.packs.selftest import run_pack_tests
from tests.conftest import RULES

PACK = RULES / "kiosk-core"


@pytest.fixture(scope="module")
def rules() -> Any:
    return compile_pack_sources([read_pack(PACK)])


def _matches(rules: Any, data: bytes, name: str = "sample.txt") -> set[str]:
    found = rules.match(data=data, externals=file_externals(data, name, "/" + name), timeout=10)
    return {m.rule for m in found}


def luhn_valid(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def test_kiosk_rules_test_kiosk_core_passes() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "kiosk", "rules", "test", "kiosk-core", "--rules", str(RULES)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONWARNINGS": "error"},
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.splitlines()[-1].endswith(" 0 failure(s)")


def test_every_rule_has_its_own_positive_and_negative_samples() -> None:
    report = run_pack_tests(PACK)
    assert report.passed
    assert report.problems == ()
    positives = {r.sample.split("/")[2] for r in report.results if "/positive/" in r.sample}
    assert len(positives) == 19


@settings(max_examples=300, deadline=None)
@given(st.from_regex(r"\A[3-6][0-9]{15}\Z", fullmatch=True))
def test_the_luhn_condition_agrees_with_python(rules: Any, number: str) -> None:
    data = ("cards\n" + f"{number},12/27\n" * 3).encode()
    assert ("card_number_list_luhn" in _matches(rules, data)) == luhn_valid(number)


def test_the_card_list_needs_four_in_five_valid(rules: Any) -> None:
    valid = ["4111111111111111", "5555555555554444", "4012888888881881", "5105105105105100"]
    invalid = ["4111111111111112", "5555555555554445", "4012888888881882"]
    assert luhn_valid(valid[0])
    assert not any(luhn_valid(n) for n in invalid)

    def listing(numbers: list[str]) -> bytes:
        return ("number\n" + "\n".join(numbers) + "\n").encode()

    assert "card_number_list_luhn" in _matches(rules, listing([*valid, invalid[0]]))  # 4 of 5
    assert "card_number_list_luhn" not in _matches(rules, listing([*valid[:3], *invalid[:2]]))
    assert "card_number_list_luhn" not in _matches(rules, listing(valid[:2]))  # fewer than 3
    assert "card_number_list_luhn" not in _matches(rules, listing([v + "9" for v in valid]))


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (12, True),
        (24, True),
        (11, False),
    ],
)
def test_a_seed_phrase_needs_twelve_words(rules: Any, words: int, expected: bool) -> None:
    phrase = " ".join(["zoo"] * (words - 1) + ["wrong"])
    data = f"my seed words: {phrase}\n".encode()
    assert ("seed_phrase_labelled" in _matches(rules, data)) is expected


def test_a_seed_phrase_with_a_long_word_is_prose(rules: Any) -> None:
    data = b"Seed phrase: abandon ability able about above absent absorb abstract absurd abuse\n"
    assert "seed_phrase_labelled" not in _matches(rules, data)  # "abstract" ok, 10 words only
    long_word = b"Recovery words: zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo extraordinary\n"
    assert "seed_phrase_labelled" not in _matches(rules, long_word)


def test_private_key_rules_want_a_body_not_just_a_header(rules: Any) -> None:
    header_only = b"-----BEGIN RSA PRIVATE KEY-----\n...\n-----END RSA PRIVATE KEY-----\n"
    assert _matches(rules, header_only) == set()
    body = b"-----BEGIN RSA PRIVATE KEY-----\n" + b"A" * 64 + b"\n-----END RSA PRIVATE KEY-----\n"
    assert _matches(rules, body) == {"key_pem_private"}
