from pathlib import Path

import pytest

from pipecat_tandem.background.tools import DocumentIndex, ToolEnv, ToolError, documents_tool
from pipecat_tandem.background.tools.documents import (
    MAX_LIMIT,
    MAX_QUERY_CHARS,
    build_match_query,
)


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "wifi.md").write_text(
        "# Office wifi\nThe office wifi password is tandem-42. Ask Maria for the guest "
        "network. The password changes every month.\n"
    )
    (tmp_path / "parking.txt").write_text(
        "Parking: the garage opens at 7am. Visitors park on level -2 near the lifts.\n"
    )
    sub = tmp_path / "manuals"
    sub.mkdir()
    (sub / "coffee_machine.txt").write_text(
        "Coffee machine manual. Descale the machine every month. The wifi module of the "
        "machine is optional. Use the * button for a double shot.\n"
    )
    (tmp_path / "blob.txt").write_bytes(b"\x00\x01\x02binary junk")
    (tmp_path / "latin1.md").write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))
    (tmp_path / "report.pdf").write_bytes(b"%PDF-1.4 wifi")
    return tmp_path


def test_indexes_text_files_and_counts_skipped(folder):
    index = DocumentIndex(folder)
    stats = index.refresh()
    assert stats.indexed == 3
    assert stats.skipped_binary == 2
    assert sorted(stats.skipped_files) == ["blob.txt", "latin1.md"]


def test_ranking_and_snippets(folder):
    results = DocumentIndex(folder).search("what is the wifi password?", limit=5)
    assert [r["path"] for r in results] == ["wifi.md", "manuals/coffee_machine.txt"]
    assert results[0]["title"] == "Office wifi"
    assert "[password]" in results[0]["snippet"] and "[wifi]" in results[0]["snippet"]
    assert results[0]["score"] > results[1]["score"]
    assert results[1]["title"] == "coffee machine"


def test_stemming_matches_word_forms(folder):
    results = DocumentIndex(folder).search("passwords", limit=3)
    assert [r["path"] for r in results] == ["wifi.md"]


def test_limit(folder):
    assert len(DocumentIndex(folder).search("the", limit=1)) == 1


@pytest.mark.parametrize(
    "query",
    [
        '"wifi',
        'wifi"',
        "wifi*",
        "*",
        "NEAR(wifi password)",
        "wifi NEAR password",
        "level -2",
        "-wifi",
        "wifi AND",
        "OR OR",
        "NOT",
        "(wifi",
        "wifi)",
        "col:wifi",
        "^wifi",
        "wifi + -",
        "'; DROP TABLE docs; --",
        "\\",
        "{wifi}",
        "title:password",
    ],
)
def test_special_characters_never_break_the_query(folder, query):
    index = DocumentIndex(folder)
    try:
        results = index.search(query, limit=5)
    except ToolError as e:
        assert "no searchable words" in str(e)
        return
    assert isinstance(results, list)
    # The table survived and still answers.
    assert index.search("garage", limit=5)[0]["path"] == "parking.txt"


def test_operators_are_plain_words(folder):
    assert build_match_query('NEAR("x" y*)') == '"near" OR "x" OR "y"'
    results = DocumentIndex(folder).search("level -2", limit=5)
    assert results[0]["path"] == "parking.txt"
    assert "[level]" in results[0]["snippet"]


def test_star_is_not_a_prefix_operator(folder):
    assert DocumentIndex(folder).search("pass*", limit=5) == []


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "no searchable words"),
        ("   ", "no searchable words"),
        ('"*-()', "no searchable words"),
        ("x" * (MAX_QUERY_CHARS + 1), "query too long"),
        (None, "must be a string"),
    ],
)
def test_bad_queries(folder, query, message):
    with pytest.raises(ToolError, match=message):
        DocumentIndex(folder).search(query)


@pytest.mark.parametrize("limit", [0, -1, MAX_LIMIT + 1, True, 2.5, "3"])
def test_bad_limits(folder, limit):
    with pytest.raises(ToolError, match="limit"):
        DocumentIndex(folder).search("wifi", limit=limit)


def test_empty_folder(tmp_path):
    index = DocumentIndex(tmp_path)
    assert index.search("anything") == []
    out = documents_tool(index).call({"query": "anything"}, ToolEnv())["result"]
    assert out["note"] == "no documents in the folder"


def test_not_a_folder(tmp_path):
    with pytest.raises(ValueError, match="not a directory"):
        DocumentIndex(tmp_path / "missing")
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(ValueError, match="not a directory"):
        DocumentIndex(tmp_path / "f.txt")
    with pytest.raises(ValueError, match="positive"):
        DocumentIndex(tmp_path, max_files=0)


def test_size_caps(tmp_path):
    (tmp_path / "big.txt").write_text("wifi " * 1000)
    (tmp_path / "a.txt").write_text("alpha wifi")
    (tmp_path / "b.txt").write_text("beta wifi")
    index = DocumentIndex(tmp_path, max_file_bytes=1000, max_files=1)
    stats = index.refresh()
    assert (stats.indexed, stats.skipped_too_large, stats.skipped_over_limit) == (1, 1, 1)
    assert [r["path"] for r in index.search("wifi")] == ["a.txt"]


def test_unreadable_file_is_skipped(tmp_path, monkeypatch):
    (tmp_path / "secret.txt").write_text("hidden")
    (tmp_path / "open.txt").write_text("visible")
    real_read = Path.read_bytes

    def read_bytes(self):
        if self.name == "secret.txt":
            raise PermissionError(13, "Permission denied")
        return real_read(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    index = DocumentIndex(tmp_path)
    stats = index.refresh()
    assert (stats.indexed, stats.skipped_unreadable) == (1, 1)
    assert index.search("visible")[0]["path"] == "open.txt"


def test_reindexes_when_files_change(folder):
    index = DocumentIndex(folder)
    assert index.search("tuesday") == []
    (folder / "meeting.md").write_text("Standup moved to Tuesday.")
    assert [r["path"] for r in index.search("tuesday")] == ["meeting.md"]
    (folder / "meeting.md").unlink()
    assert index.search("tuesday") == []


def test_cache_file_is_reused(folder, tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache") / "index.sqlite"
    first = DocumentIndex(folder, cache_path=cache)
    assert first.search("garage")[0]["path"] == "parking.txt"
    first.close()
    second = DocumentIndex(folder, cache_path=cache)
    assert second.refresh().indexed == 3
    assert second.search("garage")[0]["path"] == "parking.txt"


def test_tool_call(folder):
    tool = documents_tool(DocumentIndex(folder))
    assert tool.schema().name == "search_documents"
    out = tool.call({"query": "guest network", "limit": "2"}, ToolEnv())["result"]
    assert out["results"][0]["path"] == "wifi.md"
    assert out["skipped_files"] == 2
    none = tool.call({"query": "zeppelin"}, ToolEnv())["result"]
    assert none["results"] == [] and none["note"] == "no document matches these words"
    assert "missing 'query'" in tool.call({}, ToolEnv())["error"]
    assert "missing 'query'" in tool.call({"query": 5}, ToolEnv())["error"]
    assert "limit" in tool.call({"query": "wifi", "limit": "many"}, ToolEnv())["error"]
    assert "limit" in tool.call({"query": "wifi", "limit": 1000}, ToolEnv())["error"]
