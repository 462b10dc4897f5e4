"""YAML loading with positions: every key and value maps back to line:col."""

from __future__ import annotations

import time

import pytest

from lorchestra_dagster.spec import YamlSyntaxError, load_yaml_file, load_yaml_text
from lorchestra_dagster.spec.yamlpos import Pos

pytestmark = pytest.mark.unit

TEXT = """\
job_id: j
steps:
- step_id: a
  params:
    items: [x, {k: v}]
"""


def test_positions_of_keys_and_values():
    doc = load_yaml_text(TEXT)
    assert doc.data["steps"][0]["params"]["items"][1] == {"k": "v"}
    assert doc.pos(("job_id",)) == Pos(1, 9)
    assert doc.pos(("job_id",), key=True) == Pos(1, 1)
    assert doc.pos(("steps", 0, "step_id")) == Pos(3, 12)
    assert doc.pos(("steps", 0, "params", "items", 1, "k")) == Pos(5, 20)
    assert doc.pos(("steps", 0, "params", "items", 1, "k"), key=True) == Pos(5, 17)
    # an unknown path falls back to its nearest known ancestor
    assert doc.pos(("steps", 0, "params", "nope", 3)) == Pos(5, 5)
    assert doc.pos(()) == Pos(1, 1)


def test_duplicate_keys_are_recorded():
    doc = load_yaml_text("a: 1\nb: 2\na: 3\n")
    assert doc.data == {"a": 3, "b": 2}
    assert doc.duplicate_keys == [(("a",), Pos(3, 1))]


@pytest.mark.parametrize(
    ("text", "line"),
    [("a: [1,\nb: 2\n", 3), ("a: 1\n---\nb: 2\n", 2), ("a:\n\tb: 1\n", 2), ("k: 'open\n", 2)],
)
def test_syntax_errors_carry_position(text, line):
    with pytest.raises(YamlSyntaxError) as info:
        load_yaml_text(text)
    assert info.value.line == line and info.value.col >= 1
    assert info.value.message.startswith("YAML syntax error")


def test_non_utf8_file_is_a_syntax_issue(tmp_path):
    path = tmp_path / "latin.yaml"
    path.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(YamlSyntaxError, match="not UTF-8"):
        load_yaml_file(path)


def test_empty_document_is_none():
    assert load_yaml_text("# only a comment\n").data is None


def test_alias_bomb_terminates_quickly():
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        prev = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{', '.join([prev] * 10)}]")
    started = time.monotonic()
    doc = load_yaml_text("\n".join(lines) + "\n")
    assert time.monotonic() - started < 10
    assert "a8" in doc.data
