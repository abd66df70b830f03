"""Stage folders: atomic replacement, cache hits by key and content, nothing half-written on failure."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from edgekit.core.builddir import BuildDir, cache_key
from edgekit.core.errors import InputError


@dataclass(frozen=True)
class Note:
    path: str
    text: str


def _writer(text: str, calls: list[str]):  # type: ignore[no-untyped-def]
    def produce(out: Path) -> Note:
        calls.append(text)
        (out / "note.txt").write_text(text)
        return Note("note.txt", text)

    return produce


def test_second_run_with_same_key_is_a_cache_hit(tmp_path: Path) -> None:
    bd, calls = BuildDir(tmp_path), []
    first, rec1 = bd.run_stage("s", "stage", cache_key({"a": 1}), Note, _writer("one", calls))
    second, rec2 = bd.run_stage("s", "stage", cache_key({"a": 1}), Note, _writer("two", calls))
    assert calls == ["one"] and not rec1.cached and rec2.cached
    assert second == first and (tmp_path / "stage" / "note.txt").read_text() == "one"


def test_changed_key_force_or_tampered_file_rebuilds(tmp_path: Path) -> None:
    bd, calls = BuildDir(tmp_path), []
    bd.run_stage("s", "stage", cache_key({"a": 1}), Note, _writer("one", calls))
    bd.run_stage("s", "stage", cache_key({"a": 2}), Note, _writer("two", calls))
    bd.run_stage("s", "stage", cache_key({"a": 2}), Note, _writer("three", calls), force=True)
    (tmp_path / "stage" / "note.txt").write_text("tampered")
    _, record = bd.run_stage("s", "stage", cache_key({"a": 2}), Note, _writer("four", calls))
    assert calls == ["one", "two", "three", "four"] and not record.cached
    assert (tmp_path / "stage" / "note.txt").read_text() == "four"


def test_failed_stage_keeps_previous_output_and_leaves_no_temp(tmp_path: Path) -> None:
    bd, calls = BuildDir(tmp_path), []
    bd.run_stage("s", "stage", cache_key({"a": 1}), Note, _writer("good", calls))

    def broken(out: Path) -> Note:
        (out / "note.txt").write_text("half")
        raise RuntimeError("toolchain crashed mid-way")

    with pytest.raises(RuntimeError):
        bd.run_stage("s", "stage", cache_key({"a": 2}), Note, broken)
    assert (tmp_path / "stage" / "note.txt").read_text() == "good"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stage"]
    # the old output is still a valid cache entry for its own key
    _, record = bd.run_stage("s", "stage", cache_key({"a": 1}), Note, _writer("again", calls))
    assert record.cached


def test_verify_files_names_missing_and_changed_files(tmp_path: Path) -> None:
    bd = BuildDir(tmp_path)
    _, record = bd.run_stage("s", "stage", cache_key({}), Note, _writer("x", []))
    bd.verify_files("stage", record.files)
    (tmp_path / "stage" / "note.txt").write_text("y")
    with pytest.raises(InputError, match="changed since it was built"):
        bd.verify_files("stage", record.files)
    (tmp_path / "stage" / "note.txt").unlink()
    with pytest.raises(InputError, match="is missing"):
        bd.verify_files("stage", record.files)


def test_cache_key_is_order_independent_and_content_sensitive() -> None:
    assert cache_key({"a": 1, "b": [1, 2]}) == cache_key({"b": [1, 2], "a": 1})
    assert cache_key({"a": 1}) != cache_key({"a": 1.5})
