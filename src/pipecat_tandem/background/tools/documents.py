#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Full-text search over a local folder of documents (SQLite FTS5, bm25 ranking).

:class:`DocumentIndex` indexes the ``.txt`` and ``.md`` files under a folder into
an FTS5 table, in memory or in a cache file that is rebuilt only when the
folder's files change (path, size and mtime fingerprint). Files that are too
large, binary or not UTF-8 are skipped and counted, never fatal.

User text never reaches FTS5's query language: it is split into word tokens and
each token is quoted, so ``"``, ``*``, ``NEAR``, ``-`` or ``AND`` in a question are
plain words, not syntax. Tokens are OR-ed and bm25 ranks documents that match
more (and rarer) words first. The Porter stemmer makes "passwords" find
"password".

The SQLite connection is shared across threads (the agent runs tools in a worker
thread) and guarded by a lock.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loguru import logger

from pipecat_tandem.background.tools.base import Tool, ToolEnv, ToolError

SUFFIXES = (".txt", ".md")
"""File types that are indexed."""

MAX_QUERY_CHARS = 1000
"""Longest accepted query."""

MAX_QUERY_TOKENS = 32
"""Query words beyond this many are ignored."""

MAX_LIMIT = 20
"""Most results one search returns."""

# Words that carry no search signal in a spoken question.
_STOPWORDS = frozenset(
    "a an and are as at be by can do does for from has have how i in is it me my of on or "
    "the to was we what when where which who why will with you your".split()
)
_TOKEN = re.compile(r"\w+", re.UNICODE)


@dataclass
class IndexStats:
    """What the last (re)index saw.

    Parameters:
        indexed: Files indexed.
        skipped_binary: Files skipped as binary or not UTF-8.
        skipped_too_large: Files over the per-file size cap.
        skipped_unreadable: Files that could not be read (permissions, races).
        skipped_over_limit: Files beyond the file-count or total-size cap.
        skipped_files: Relative paths of the skipped files (first 50).
    """

    indexed: int = 0
    skipped_binary: int = 0
    skipped_too_large: int = 0
    skipped_unreadable: int = 0
    skipped_over_limit: int = 0
    skipped_files: list[str] = field(default_factory=list)

    @property
    def skipped(self) -> int:
        """All skipped files."""
        return (
            self.skipped_binary
            + self.skipped_too_large
            + self.skipped_unreadable
            + self.skipped_over_limit
        )

    def _skip(self, kind: str, rel: str) -> None:
        setattr(self, kind, getattr(self, kind) + 1)
        if len(self.skipped_files) < 50:
            self.skipped_files.append(rel)


def build_match_query(text: str) -> str:
    """Turn free user text into a safe FTS5 MATCH expression.

    Args:
        text: A question or keywords, in any language.

    Returns:
        Quoted tokens joined by ``OR`` (stop words dropped unless nothing else is left).

    Raises:
        ToolError: On empty, oversized or word-less input.
    """
    if not isinstance(text, str):
        raise ToolError(f"query must be a string, got {type(text).__name__}")
    if len(text) > MAX_QUERY_CHARS:
        raise ToolError(f"query too long ({len(text)} > {MAX_QUERY_CHARS} chars)")
    tokens = [t.lower() for t in _TOKEN.findall(text)]
    if not tokens:
        raise ToolError("query has no searchable words")
    content = [t for t in tokens if t not in _STOPWORDS] or tokens
    unique = list(dict.fromkeys(content))[:MAX_QUERY_TOKENS]
    # \w never matches '"', so quoting cannot be broken out of; doubling is belt and braces.
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in unique)


class DocumentIndex:
    """An FTS5 index of the text files in a folder.

    Args:
        folder: The folder to index (recursively).
        cache_path: SQLite file to keep the index in; ``None`` for memory only.
        max_file_bytes: Larger files are skipped.
        max_files: Files beyond this count are skipped.
        max_total_bytes: Files beyond this total are skipped.

    Raises:
        ValueError: If ``folder`` is not a directory.
    """

    def __init__(
        self,
        folder: str | Path,
        *,
        cache_path: str | Path | None = None,
        max_file_bytes: int = 2_000_000,
        max_files: int = 5_000,
        max_total_bytes: int = 100_000_000,
    ) -> None:
        self._folder = Path(folder).expanduser().resolve()
        if not self._folder.is_dir():
            raise ValueError(f"document folder {str(folder)!r} is not a directory")
        if max_file_bytes <= 0 or max_files <= 0 or max_total_bytes <= 0:
            raise ValueError("size and count limits must be positive")
        self._max_file_bytes = max_file_bytes
        self._max_files = max_files
        self._max_total_bytes = max_total_bytes
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            str(cache_path) if cache_path else ":memory:", check_same_thread=False
        )
        self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        self._db.execute(
            "CREATE VIRTUAL TABLE IF NOT EXISTS docs USING fts5("
            "path UNINDEXED, title, body, tokenize='porter unicode61 remove_diacritics 2')"
        )
        self.stats = IndexStats()
        self._fingerprint = ""

    @property
    def folder(self) -> Path:
        """The indexed folder."""
        return self._folder

    def _candidates(self) -> list[Path]:
        files = [
            p
            for p in self._folder.rglob("*")
            if p.suffix.lower() in SUFFIXES and p.is_file() and not p.is_symlink()
        ]
        return sorted(files)

    def _folder_fingerprint(self, files: list[Path]) -> str:
        h = hashlib.sha256()
        for p in files:
            try:
                st = p.stat()
            except OSError:
                continue
            h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        return h.hexdigest()

    def refresh(self) -> IndexStats:
        """(Re)index the folder if its files changed since the last index.

        Returns:
            The stats of the current index.
        """
        with self._lock:
            files = self._candidates()
            fingerprint = self._folder_fingerprint(files)
            row = self._db.execute("SELECT value FROM meta WHERE key='fingerprint'").fetchone()
            if fingerprint == self._fingerprint or (
                not self._fingerprint and row and row[0] == fingerprint
            ):
                self._fingerprint = fingerprint
                if not self.stats.indexed:
                    count = self._db.execute("SELECT count(*) FROM docs").fetchone()[0]
                    self.stats.indexed = int(count)
                return self.stats
            self.stats = self._reindex(files)
            self._db.execute(
                "INSERT OR REPLACE INTO meta VALUES ('fingerprint', ?)", (fingerprint,)
            )
            self._db.commit()
            self._fingerprint = fingerprint
            return self.stats

    def _reindex(self, files: list[Path]) -> IndexStats:
        stats = IndexStats()
        total = 0
        self._db.execute("DELETE FROM docs")
        for path in files:
            rel = path.relative_to(self._folder).as_posix()
            try:
                size = path.stat().st_size
                if size > self._max_file_bytes:
                    stats._skip("skipped_too_large", rel)
                    continue
                if stats.indexed >= self._max_files or total + size > self._max_total_bytes:
                    stats._skip("skipped_over_limit", rel)
                    continue
                data = path.read_bytes()
            except OSError as e:
                logger.debug(f"documents: cannot read {rel}: {e}")
                stats._skip("skipped_unreadable", rel)
                continue
            if b"\x00" in data[:8192]:
                stats._skip("skipped_binary", rel)
                continue
            try:
                text = data.decode("utf-8-sig")
            except UnicodeDecodeError:
                stats._skip("skipped_binary", rel)
                continue
            total += len(data)
            self._db.execute(
                "INSERT INTO docs (path, title, body) VALUES (?, ?, ?)",
                (rel, _title(path, text), text),
            )
            stats.indexed += 1
        if stats.skipped:
            logger.info(f"documents: indexed {stats.indexed} files, skipped {stats.skipped}")
        return stats

    def search(self, query: str, limit: int = 5) -> list[dict[str, Any]]:
        """Search the folder.

        Args:
            query: Free text; never interpreted as FTS5 syntax.
            limit: Most results to return (1..:data:`MAX_LIMIT`).

        Returns:
            Results best first: ``{"path", "title", "snippet", "score"}``; the
            snippet marks matches with ``[...]``, a higher score is a better match.

        Raises:
            ToolError: On a bad query or limit.
        """
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
            raise ToolError(f"limit must be a whole number from 1 to {MAX_LIMIT}")
        match = build_match_query(query)
        self.refresh()
        with self._lock:
            try:
                rows = self._db.execute(
                    "SELECT path, title, snippet(docs, 2, '[', ']', '…', 16), "
                    "bm25(docs, 0, 5, 1), body "
                    "FROM docs WHERE docs MATCH ? ORDER BY bm25(docs, 0, 5, 1) LIMIT ?",
                    (match, limit),
                ).fetchall()
            except sqlite3.OperationalError as e:  # defensive: quoting should prevent this
                raise ToolError(f"search failed: {e}") from None
        return [
            {
                "path": p,
                "title": t,
                "snippet": s.strip(),
                "score": round(-float(b), 4),
                "lines": best_lines(body, query),
            }
            for p, t, s, b, body in rows
        ]

    def close(self) -> None:
        """Close the SQLite connection."""
        with self._lock:
            self._db.close()


MAX_LINE_CHARS = 240
"""Longest line quoted by :func:`best_lines` (longer ones are cut around the match)."""


def _stem(word: str) -> str:
    # A crude suffix strip, enough to match "passwords" to "password" and "expires" to
    # "expire" within one document (the index itself ranks with Porter's stemmer).
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def best_lines(text: str, query: str, limit: int = 2) -> list[str]:
    """The lines of ``text`` that hold the most of the query's words, best first.

    A small model reading a snippet cut mid-sentence (or one that spans two facts)
    picks the wrong fact; whole lines of notes are one fact each.

    Args:
        text: A document's text.
        query: The search words.
        limit: Most lines to return.

    Returns:
        Up to ``limit`` lines (stripped, heading marks removed) that match at
        least one content word of the query; ties keep the document order.
    """
    scored: list[tuple[int, int, str]] = []
    for i, raw in enumerate(text.splitlines()):
        line = raw.strip().lstrip("#").strip()
        hits = line_hits(line, query)
        if hits:
            scored.append((-hits, i, line[:MAX_LINE_CHARS]))
    return [line for _, _, line in sorted(scored)[:limit]]


def line_hits(line: str, query: str) -> int:
    """How many distinct content words of ``query`` the ``line`` holds (stemmed)."""
    words = {_stem(t.lower()) for t in _TOKEN.findall(query) if t.lower() not in _STOPWORDS}
    return len(words & {_stem(t.lower()) for t in _TOKEN.findall(line)})


def _title(path: Path, text: str) -> str:
    for line in text.splitlines()[:20]:
        line = line.strip()
        if line.startswith("#"):
            return line.lstrip("#").strip()[:200]
    return path.stem.replace("_", " ").replace("-", " ")


# Words that point at the documents rather than say what to find in them.
_POINTERS = re.compile(
    r"\b(in|from|check|search|look (it )?up in|according to|see) (my|the) (notes?|documents?|"
    r"files?|folder|docs)\b|\b(look (it )?up|check my documents|according to)\b",
    re.I,
)


def task_query(task: str) -> str | None:
    """The search words of a look-up task ("what is the wifi password in my notes").

    The words that only point at the documents ("in my notes", "check my documents")
    are dropped; ``None`` when no searchable word is left.
    """
    if not isinstance(task, str):
        return None
    query = " ".join(_POINTERS.sub(" ", task).split())[:MAX_QUERY_CHARS]
    content = [t for t in _TOKEN.findall(query.lower()) if t not in _STOPWORDS]
    return query if content else None


def documents_tool(index: DocumentIndex) -> Tool:
    """The ``search_documents`` tool over a :class:`DocumentIndex`."""

    def run(args: Mapping[str, Any], env: ToolEnv) -> dict[str, Any]:
        query = args.get("query")
        if not isinstance(query, str) or not query.strip():
            raise ToolError("missing 'query' (the words to look for)")
        raw_limit = args.get("limit", 5)
        try:
            limit = int(raw_limit) if not isinstance(raw_limit, bool) else -1
        except (TypeError, ValueError):
            raise ToolError(f"limit must be a whole number from 1 to {MAX_LIMIT}") from None
        results = index.search(query, limit)
        out: dict[str, Any] = {"query": query, "results": results}
        # The lines that answer best across the files (most query words, then the
        # file's rank): what a model should read first. A line with less than half
        # the best line's words is another fact ("Flight to Lisbon" for a hotel
        # question): left out, so a small model does not mix it into the answer.
        ranked = sorted(
            (-line_hits(line, query), i, line) for i, r in enumerate(results) for line in r["lines"]
        )
        best = -ranked[0][0] if ranked else 0
        out["lines"] = [line for hits, _, line in ranked[:3] if -hits * 2 >= best]
        if not results:
            out["note"] = (
                "no documents in the folder"
                if index.stats.indexed == 0
                else "no document matches these words"
            )
        if index.stats.skipped:
            out["skipped_files"] = index.stats.skipped
        return out

    return Tool(
        name="search_documents",
        description=(
            "Search the user's local documents (notes, manuals) by keywords; returns the "
            "best-matching files with a snippet around the matches."
        ),
        properties={
            "query": {"type": "string", "description": "Keywords or a question."},
            "limit": {"type": "integer", "description": f"Max results (1-{MAX_LIMIT}), default 5."},
        },
        required=["query"],
        fn=run,
        # In the step protocol the model gives only the words: a small model writes
        # "limit": 1 and then misses the line that answers (and pays the tokens).
        extra={"step_properties": {"query": {"type": "string"}}},
    )
