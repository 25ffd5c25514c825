"""Type-name skeletons: how Warden tells a name from its look-alikes (ADR 0080).

Cedar type names are case-sensitive, so ``AGENT`` is not ``Agent`` to Cedar; but a person
reading a policy or a log cannot tell ``Agent``, ``agent ``, ``\u0410gent`` (Cyrillic A) or
``Warden::Agent`` apart. The *skeleton* of a name — compatibility-decomposed, marks and
separators dropped, case-folded, common confusables mapped to Latin — is what Warden compares
when it decides whether a caller named a type it owns, or the tool resource type.
"""

from __future__ import annotations

import unicodedata

__all__ = ["RESERVED_TYPES", "is_reserved_type", "is_tool_type", "skeleton"]

RESERVED_TYPES = frozenset({"agent", "task", "group"})
_TOOL = "tool"

# Latin look-alikes from other scripts (Unicode confusables, the subset that can spell the
# reserved names); NFKD already folds full-width and mathematical letters.
_CONFUSABLES = str.maketrans(
    {
        "\u0430": "a",  # Cyrillic
        "\u0435": "e",
        "\u043e": "o",
        "\u0440": "p",
        "\u0441": "c",
        "\u0443": "y",
        "\u0445": "x",
        "\u0456": "i",
        "\u0458": "j",
        "\u0455": "s",
        "\u0442": "t",
        "\u043a": "k",
        "\u043d": "h",
        "\u0433": "r",
        "\u0501": "d",
        "\u0261": "g",  # Latin script g
        "\u0581": "g",  # Armenian
        "\u03b1": "a",  # Greek
        "\u03b5": "e",
        "\u03bf": "o",
        "\u03c4": "t",
        "\u03ba": "k",
        "\u03bd": "v",
        "\u03c1": "p",
        "\u03b9": "i",
        "\u0475": "v",
        "\u0131": "i",  # dotless i
    }
)


def skeleton(name: str) -> str:
    """The comparison form of a type name segment (see the module docstring)."""
    decomposed = unicodedata.normalize("NFKD", name)
    folded = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    return "".join(c for c in folded.translate(_CONFUSABLES) if c.isalnum())


def _segments(name: str) -> list[str]:
    """The whole name and each run of it between separators (``::``, ``.``, ``/``, …)."""
    spaced = "".join(c if c.isalnum() or unicodedata.combining(c) else " " for c in name)
    return [name, *spaced.split()]


def is_reserved_type(name: str) -> bool:
    """Does ``name``, or any namespace segment of it, read as a type Warden owns?"""
    return any(skeleton(part) in RESERVED_TYPES for part in _segments(name))


def is_tool_type(name: str) -> bool:
    """Is ``name`` the tool resource type (``tool``, ``Tool`` or a look-alike)?"""
    return skeleton(name) == _TOOL
