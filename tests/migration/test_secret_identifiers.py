"""The secret lint leaves identifiers alone (a Google spreadsheet id, a form id) and
keeps refusing tokens, keys and passwords."""

from __future__ import annotations

import pytest

from lorchestra_dagster.spec import secrets
from lorchestra_dagster.spec.yamlpos import load_yaml_text

pytestmark = pytest.mark.unit

SHEET = "1AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdEFG"
FORM = "1FAIpQLSd9x7Qw2ErTy8UiOp3AsDf4GhJk5LzXcVbN6m"


def _codes(text: str) -> list[tuple[str, str]]:
    return [
        (code, ".".join(map(str, path)))
        for code, path, _pos, _m in secrets.scan(load_yaml_text(text))
    ]


@pytest.mark.parametrize("key", ["spreadsheet_id", "form_id", "calendarId", "folder_id", "id"])
def test_identifier_keys_are_not_secrets(key):
    assert _codes(f"{key}: {SHEET}\nconfig:\n  {key}: {FORM}\n") == []


def test_tokens_keys_and_passwords_are_still_refused():
    text = (
        f"api_token: {SHEET}\n"
        "password: hunter2\n"
        "spreadsheet_id: ghp_abcdefghijklmnopqrstuvwxyz0123456789\n"
        f"notes: {SHEET}\n"
    )
    assert _codes(text) == [
        ("L060", "api_token"),
        ("L060", "password"),
        ("L061", "spreadsheet_id"),
        ("L061", "notes"),
    ]
