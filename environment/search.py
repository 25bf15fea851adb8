"""Text normalisation shared by directory writes and directory search."""

from __future__ import annotations

import unicodedata


def normalize(text: str) -> str:
    """Lower-case and strip accents, so "Zoë" and "zoe" match."""
    decomposed = unicodedata.normalize("NFKD", text or "")
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


def directory_search_text(*parts: str) -> str:
    return " ".join(normalize(p) for p in parts if p)
