import pytest
from recognize_reads import make_read

from recognize.formats import FormatMatcher, expand_pattern, normalise


def test_expand_pattern_repeats() -> None:
    assert expand_pattern("LN{1,2}") == ["LN", "LNN"]
    assert expand_pattern("LLLNLNN") == ["LLLNLNN"]
    assert len(expand_pattern("L{2,5}N{1,4}")) == 16


@pytest.mark.parametrize("bad", ["", "LX", "N{3,1}", "L{2"])
def test_expand_pattern_rejects_bad(bad: str) -> None:
    with pytest.raises(ValueError):
        expand_pattern(bad)


def test_normalise() -> None:
    assert normalise("ab-12 3·c") == "AB123C"


def test_unknown_region() -> None:
    with pytest.raises(ValueError, match="known"):
        FormatMatcher(("mars",))


def test_mercosur_digit_resolved_to_letter_by_model_alternative() -> None:
    # Brazil Mercosur LLLNLNN: position 4 must be a letter; the model slightly preferred 8.
    read = make_read("ABC1834", {4: {"8": 0.6, "B": 0.35}})
    m = FormatMatcher(("br",), {"br": ("LLLNLNN",)}).match(read)
    assert m is not None and m.plate == "ABC1B34" and m.region == "br"
    assert m.score < 0.99 * 0.9


def test_lookalike_fallback_when_model_is_confidently_wrong() -> None:
    m = FormatMatcher(("uk",)).match(make_read("AB12CD0"))  # UK LLNNLLL, last must be a letter
    assert m is not None and m.plate == "AB12CDO"


def test_no_change_when_read_fits() -> None:
    m = FormatMatcher().match(make_read("RK755AJ"))
    assert m is not None and m.plate == "RK755AJ" and m.region == "eu" and m.score > 0.98


def test_region_order_breaks_ties() -> None:
    assert FormatMatcher(("br", "us")).match(make_read("ABC1234")).region == "br"  # type: ignore[union-attr]
    assert FormatMatcher(("us", "br")).match(make_read("ABC1234")).region == "us"  # type: ignore[union-attr]


def test_wrong_length_or_class_does_not_match() -> None:
    assert FormatMatcher(("br",)).match(make_read("AB12")) is None
    assert FormatMatcher(("br",)).match(make_read("1234567")) is None  # no look-alike for 3 -> L


def test_custom_formats() -> None:
    m = FormatMatcher(("xx",), {"xx": ("NNN",)})
    assert m.match(make_read("12O")).plate == "120"  # type: ignore[union-attr]
