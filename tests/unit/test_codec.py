"""The one typed decoder: dispatch on real types, strict for the config, lenient for status."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from hubd.codec import decode, describe, field_types, from_text


@dataclass(frozen=True)
class _Keys:
    ratio: float = 0.5
    maybe: float | None = None
    names: tuple[str, ...] = ()
    count: int = 0


def test_a_float_key_decodes_from_toml_and_from_text() -> None:
    kinds = field_types(_Keys)
    assert decode(kinds["ratio"], 2, strict=True) == (True, 2.0)
    assert decode(kinds["maybe"], 1.5, strict=True) == (True, 1.5)
    assert decode(kinds["ratio"], True, strict=True) == (False, None)  # a bool is no number
    assert from_text(kinds["ratio"], " 0.25 ") == 0.25
    assert from_text(kinds["maybe"], "3") == 3.0
    assert describe(kinds["maybe"]) == "a number"


def test_lists_become_tuples_strict_refuses_a_bad_item_lenient_drops_it() -> None:
    kind = field_types(_Keys)["names"]
    assert decode(kind, ["a", "b"], strict=True) == (True, ("a", "b"))
    assert decode(kind, ["a", 1], strict=True) == (False, None)
    assert decode(kind, ["a", 1]) == (True, ("a",))
    assert from_text(kind, "a, b,,") == ("a", "b")
    assert describe(kind) == "a list of strings"


def test_text_that_does_not_fit_raises_value_error() -> None:
    with pytest.raises(ValueError):
        from_text(int, "1.5")
    with pytest.raises(ValueError):
        from_text(bool, "maybe")
