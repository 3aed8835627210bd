"""Reading the type annotations of the payload classes (shared by schema, decoding, flattening)."""

from __future__ import annotations

import types
import typing
from typing import Any


def optional_member(python_type: Any) -> tuple[Any, bool]:
    """``(X, True)`` for ``X | None`` (or ``Optional[X]``); ``(python_type, False)`` otherwise.

    Raises:
        TypeError: A union other than ``X | None``: the payload classes have none.
    """
    if typing.get_origin(python_type) not in (typing.Union, types.UnionType):
        return python_type, False
    members = [arg for arg in typing.get_args(python_type) if arg is not type(None)]
    if len(members) != 1:
        raise TypeError(f"only X | None unions are supported, not {python_type!r}")
    return members[0], True
