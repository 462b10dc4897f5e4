"""Errors of other libraries are recorded without the values they quote."""

from __future__ import annotations

from datetime import datetime

import pytest

from lorchestra_dagster.errors import PermanentError, fingerprint, safe_message

pytestmark = pytest.mark.unit

NAME = "Ottoline Brackenridge"


def test_library_messages_lose_their_quoted_values() -> None:
    with pytest.raises(ValueError) as info:
        datetime.fromisoformat(NAME)
    assert NAME in str(info.value)  # the library quotes it...
    text = safe_message(info.value)
    assert NAME not in text and text.startswith("ValueError: Invalid isoformat string")


def test_our_messages_are_kept_and_fingerprints_hide_values() -> None:
    assert safe_message(PermanentError("field when is not a time")) == "field when is not a time"
    fp = fingerprint(NAME)
    assert NAME not in fp and fp.startswith("str, 21 chars, sha256 ")
    assert fingerprint(NAME) == fp and fingerprint(NAME + "x") != fp
