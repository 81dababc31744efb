"""The spec's lax scalar schemas admit exactly what pydantic 2.11.7 (the gateway's validator) admits."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings, strategies as st
from pydantic import TypeAdapter, ValidationError

from openapi import Validators, load_spec

VALIDATORS = Validators(load_spec())
STRICT_INT = TypeAdapter(int)
STRICT_BOOL = TypeAdapter(bool)
# White space pydantic strips around integer strings, plus some it does not.
SPACES = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u200a\u2028\u2029\u202f\u205f\u3000\x1c\ufeff\u200b"
INT_ALPHABET = "0123456789_.+-eE" + SPACES


def _pydantic_accepts(adapter: TypeAdapter[Any], value: Any) -> bool:
    try:
        adapter.validate_python(value)
    except ValidationError:
        return False
    return True


def _spec_accepts(component: str, value: Any) -> bool:
    return VALIDATORS.for_component(component).is_valid(value)


int_strings = st.one_of(
    st.text(alphabet=INT_ALPHABET, max_size=12),
    st.from_regex(r"\A[ \t]?[+-]?[0-9]{1,4}(_[0-9]{1,3})?(\.0{0,3})?[ \t]?\Z"),
)
bool_strings = st.one_of(
    st.sampled_from(
        ["0", "1", "t", "f", "y", "n", "no", "on", "off", "yes", "true", "false", "2", "", "nope", "of", "o"]
    ).flatmap(lambda word: st.sampled_from([word, word.upper(), word.title(), f" {word}", f"{word} ", f"{word}\n"])),
    st.text(max_size=6),
)
numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-(2.0**62), max_value=2.0**62),
    st.sampled_from([0.0, -0.0, 1.0, 0.5, 60.0, 1.5]),
)
others = st.one_of(
    st.none(),
    st.booleans(),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
)


@given(st.one_of(int_strings, numbers, others))
@settings(max_examples=400, derandomize=True, database=None)
def test_lax_body_integer_admits_what_pydantic_admits(value: Any) -> None:
    assert _spec_accepts("LaxBodyInteger", value) == _pydantic_accepts(STRICT_INT, value), repr(value)


@given(st.one_of(int_strings, st.integers(min_value=-(2**70), max_value=2**70)))
@settings(max_examples=300, derandomize=True, database=None)
def test_lax_integer_admits_what_pydantic_admits_in_a_query(value: str | int) -> None:
    # A query value always arrives as a string.
    assert _spec_accepts("LaxInteger", value) == _pydantic_accepts(STRICT_INT, str(value)), repr(value)


@given(st.one_of(bool_strings, numbers, others))
@settings(max_examples=400, derandomize=True, database=None)
def test_lax_boolean_admits_what_pydantic_admits(value: Any) -> None:
    assert _spec_accepts("LaxBoolean", value) == _pydantic_accepts(STRICT_BOOL, value), repr(value)


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("600", True),
        (" 42 ", True),
        ("5_000", True),
        ("1.0", True),
        ("1.5", False),
        ("0x10", False),
        ("", False),
    ],
)
def test_lax_integer_strings_from_the_golden_cases(value: str, accepted: bool) -> None:
    assert _spec_accepts("LaxInteger", value) is accepted


def test_floats_beyond_int64_are_the_one_documented_gap() -> None:
    # JSON Schema cannot tell 1e20 from 100000000000000000000; pydantic refuses the float (int_parsing_size).
    assert _spec_accepts("LaxBodyInteger", 1e20)
    assert not _pydantic_accepts(STRICT_INT, 1e20)
    assert _pydantic_accepts(STRICT_INT, 10**20)


STRICT_FLOAT = TypeAdapter(float)
FLOAT_WORDS = ["inf", "INF", "Infinity", "nan", "NaN", "in_f", "n_a_n", "infin"]
float_strings = st.one_of(
    st.text(alphabet="0123456789_.+-eE" + SPACES, max_size=10),
    st.lists(st.sampled_from([*"01_.e+- ", *FLOAT_WORDS, "\u3000", "\x1c"]), max_size=5).map("".join),
    st.from_regex(r"\A[ \t]?[+-]?[0-9]{0,3}(\.[0-9]{0,3})?([eE][+-]?[0-9]{1,2})?[ \t]?\Z"),
)


@given(st.one_of(float_strings, numbers, others))
@settings(max_examples=600, derandomize=True, database=None, deadline=None)
def test_lax_number_admits_what_pydantic_admits(value: Any) -> None:
    assert _spec_accepts("LaxNumber", value) == _pydantic_accepts(STRICT_FLOAT, value), repr(value)


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("\u205f\u2003 -.347_05_3e-2", False),  # the Schemathesis find: white space and underscores
        ("-.347_05_3e-2", True),
        (" 1.5e2\t", True),
        ("1_e_1", True),
        ("1__0", False),
        ("\x0b+Nan", True),
        ("\x1c1.5", False),
    ],
)
def test_lax_number_strings_pydantic_reads_differently_from_float(value: str, accepted: bool) -> None:
    assert _spec_accepts("LaxNumber", value) is accepted
    assert _pydantic_accepts(STRICT_FLOAT, value) is accepted
