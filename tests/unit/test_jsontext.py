"""sink.jsontext reads strictly and writes exactly what the standard library does, only faster."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sink import jsontext
from sink.writer.postgres import has_nul

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
DOCUMENTS = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def same(left: Any, right: Any) -> bool:
    """Equal, with the type of every number and the sign of zeros compared too."""
    if isinstance(left, float) and isinstance(right, float):
        return left == right and math.copysign(1, left) == math.copysign(1, right)
    if type(left) is not type(right):
        return False
    if isinstance(left, dict):
        return left.keys() == right.keys() and all(same(left[k], right[k]) for k in left)
    if isinstance(left, list):
        return len(left) == len(right) and all(map(same, left, right))
    return bool(left == right)


@given(DOCUMENTS)
def test_loads_reads_what_the_standard_library_reads(document: Any) -> None:
    for text in (json.dumps(document), json.dumps(document, ensure_ascii=False)):
        assert same(jsontext.loads(text), json.loads(text))


@given(DOCUMENTS)
def test_dumps_round_trips_exactly(document: Any) -> None:
    assert same(json.loads(jsontext.dumps(document)), document)


def test_integers_beyond_64_bits_keep_every_digit() -> None:
    big = 123456789012345678901234567890
    assert jsontext.loads(f'{{"a": {big}}}') == {"a": big}
    assert jsontext.dumps({"a": big}) == f'{{"a":{big}}}'.encode()


@pytest.mark.parametrize("text", ['{"a": NaN}', '{"a": Infinity}', "[-Infinity]", "[1,", ""])
def test_what_is_not_json_is_refused(text: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - json and orjson errors are both ValueErrors
        jsontext.loads(text)


def test_nul_is_escaped_in_the_serialized_document() -> None:
    assert jsontext.dumps({"k\x00": ["v\x00"]}) == b'{"k\\u0000":["v\\u0000"]}'


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"a": "plain"}, False),
        ({"a": "x\x00y"}, True),
        ({"k\x00": 1}, True),
        ([{"deep": ["\x00"]}], True),
        ({"a": "a backslash then u0000: \\u0000"}, False),  # the escape's text, not a NUL
        ({"big": 2**70, "s": "\x00"}, True),
        ("text\x00", True),
        (None, False),
    ],
)
def test_postgres_nul_check_of_documents(value: Any, expected: bool) -> None:
    assert has_nul(value) is expected
