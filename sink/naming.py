"""Warehouse identifiers: column and child-table names from attribute paths, ≤ 63 characters.

A name is the attribute path joined with ``__`` (``user__pii__email``). PostgreSQL cuts identifiers
at 63 characters, and silent truncation is a trap (collisions, unguessable names), so long names are
shortened deterministically instead (see ``/work/shared/notes/warehouse-naming.md``):

* Names are decided per *record*: the paths sharing one parent prefix (the path minus its leaf) are
  siblings. If the full name of any sibling exceeds the limit, every sibling is renamed to the
  initials of each outer segment followed by its whole leaf:
  ``enterprise_course_enrollment__enterprise_customer_user__is_relinkable`` →
  ``ece__ecu__is_relinkable``, and its sibling ``…__user_id`` → ``ece__ecu__user_id``. A record's
  columns thus keep one prefix, sort together and read alike; other records are left alone.
* Should a shortened name still be too long (a leaf near the limit by itself), it is cut and ends in
  an 8-hex-digit hash of the full name; so is a one-segment name that is too long.
* Should a shortened name collide with another name of the same namespace, a 4-hex-digit hash of
  the full outer path joins its abbreviated prefix (``ece__ecu_1a2b__id``).
* The full name of every shortened identifier stays discoverable: :mod:`sink.tables` writes it into
  the column (or table) comment, and ``sink events --columns`` lists it.

Constraint and index names are internal; :func:`constraint_name` keeps them ≤ 63 characters by
cutting them and appending a hash.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from typing import Final

#: The longest identifier every supported dialect keeps intact (PostgreSQL's limit).
MAX_IDENTIFIER_LENGTH: Final = 63

#: Joins the segments of an attribute path into a name.
SEPARATOR: Final = "__"

#: An attribute path: attribute names from the outermost inwards.
Path = tuple[str, ...]


def full_name(path: Path) -> str:
    """The unshortened name of ``path``: its segments joined with ``__``."""
    return SEPARATOR.join(path)


def initials(segment: str) -> str:
    """The first letter of each ``_``-separated word: ``enterprise_course_enrollment`` → ``ece``."""
    letters = "".join(word[0] for word in segment.split("_") if word)
    return letters or segment[:1]


def shorten(
    paths: Iterable[Path],
    *,
    reserved: Collection[str] = (),
    limit: int = MAX_IDENTIFIER_LENGTH,
) -> dict[Path, str]:
    """Name every path of one namespace (a table's columns, or a set of tables).

    Args:
        paths: Distinct, non-empty attribute paths.
        reserved: Names already taken in the namespace (e.g. envelope columns); a path whose full
            name is reserved is an error, a shortened name never lands on one.
        limit: Longest allowed name.

    Returns:
        The name of each path, in the order given: unique, ≤ ``limit`` characters, and equal to the
        full name unless the record's rule above shortened it.

    Raises:
        ValueError: Paths are empty or duplicated, a full name is reserved, or no unique name fits.
    """
    ordered = list(paths)
    _check_paths(ordered, reserved)
    abbreviated = _records_to_abbreviate(ordered, limit)
    names = {path: _name(path, abbreviated, limit) for path in ordered}
    return _resolve_collisions(names, reserved, limit)


def shortened(names: Mapping[Path, str]) -> dict[Path, str]:
    """The subset of ``names`` (as returned by :func:`shorten`) that differ from the full name."""
    return {path: name for path, name in names.items() if name != full_name(path)}


def constraint_name(prefix: str, *parts: str, limit: int = MAX_IDENTIFIER_LENGTH) -> str:
    """``prefix_part1_part2…``, cut to ``limit`` with a hash of the whole when longer."""
    name = "_".join((prefix, *parts))
    return name if len(name) <= limit else _cut_with_hash(name, limit)


def _check_paths(paths: list[Path], reserved: Collection[str]) -> None:
    if any(not path for path in paths):
        raise ValueError("an attribute path cannot be empty")
    if len({full_name(path) for path in paths}) != len(paths):
        raise ValueError("attribute paths must be distinct and join to distinct names")
    if taken := sorted(full_name(p) for p in paths if full_name(p) in reserved):
        raise ValueError(f"names already reserved in this namespace: {', '.join(taken)}")


def _records_to_abbreviate(paths: list[Path], limit: int) -> set[Path]:
    """The parent prefixes (records) having at least one child whose full name is too long."""
    return {path[:-1] for path in paths if len(full_name(path)) > limit and len(path) > 1}


def _name(path: Path, abbreviated: set[Path], limit: int) -> str:
    if path[:-1] in abbreviated:
        return _abbreviate(path, limit)
    name = full_name(path)
    return name if len(name) <= limit else _cut_with_hash(name, limit)


def _abbreviate(path: Path, limit: int) -> str:
    """Outer segments to initials, leaf whole; cut with a hash if even that is too long."""
    name = full_name((*(initials(segment) for segment in path[:-1]), path[-1]))
    return name if len(name) <= limit else _cut_with_hash(name, limit, full_name(path))


def _disambiguate(path: Path, limit: int) -> str:
    """An abbreviated name carrying a hash of the full outer path, for names that collided."""
    outer = full_name(tuple(initials(segment) for segment in path[:-1]))
    name = f"{outer}_{_digest(full_name(path[:-1]), 4)}{SEPARATOR}{path[-1]}"
    return name if len(name) <= limit else _cut_with_hash(name, limit, full_name(path))


def _resolve_collisions(
    names: dict[Path, str], reserved: Collection[str], limit: int
) -> dict[Path, str]:
    """Rename shortened paths whose name collides with another name or a reserved one."""
    holders: defaultdict[str, list[Path]] = defaultdict(list)
    for path, name in names.items():
        holders[name].append(path)
    resolved = dict(names)
    for name, paths in holders.items():
        if len(paths) == 1 and name not in reserved:
            continue
        for path in paths:
            if name != full_name(path):
                resolved[path] = _disambiguate(path, limit)
    final = list(resolved.values())
    if len(set(final)) != len(final) or set(final) & set(reserved):
        raise ValueError("no unique names fit; rename an attribute")
    return resolved


def _cut_with_hash(name: str, limit: int, hashed: str | None = None) -> str:
    """``name`` cut to ``limit`` with the hash of ``hashed`` (default: ``name``) at the end."""
    return f"{name[: limit - 9]}_{_digest(name if hashed is None else hashed, 8)}"


def _digest(text: str, length: int) -> str:
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:length]
