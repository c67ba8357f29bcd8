import pytest
from recognize_reads import make_read

from recognize.formats import (
    DEFAULT_FORMATS,
    GENERIC_WEIGHT,
    LETTER_FOR_DIGIT,
    FormatMatcher,
    expand_pattern,
    look_alike_prob,
)


def test_expand_pattern_repeats() -> None:
    assert expand_pattern("LN{1,2}") == ["LN", "LNN"]
    assert expand_pattern("LLLNLNN") == ["LLLNLNN"]
    assert len(expand_pattern("L{2,5}N{1,4}")) == 16


@pytest.mark.parametrize("bad", ["", "LX", "N{3,1}", "L{2"])
def test_expand_pattern_rejects_bad(bad: str) -> None:
    with pytest.raises(ValueError):
        expand_pattern(bad)


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
    # UK LLNNLLL, the last must be a letter: the model sees an O (0.08) beside its sure 0, and
    # the look-alike table prices the O above the model's own figure.
    m = FormatMatcher(("uk",)).match(make_read("AB12CD0", {6: {"0": 0.9, "O": 0.08}}))
    assert m is not None and m.plate == "AB12CDO" and m.score > 0.8


def test_a_look_alike_the_model_rules_out_is_not_forced() -> None:
    # The same read with no O mass at all: the font told 0 from O, so the UK format does not fit.
    assert FormatMatcher(("uk",)).match(make_read("AB12CD0", {6: {"0": 0.9}})) is None


@pytest.mark.parametrize(("mass", "lifted"), [(0.0, False), (0.04, False), (0.05, True), (0.3, True)])
def test_look_alike_prob_lifts_only_what_the_model_sees(mass: float, lifted: bool) -> None:
    read = make_read("K179658", {1: {"1": 0.95, "I": mass}})
    expected = 0.95 * LETTER_FOR_DIGIT["1"][1] if lifted else mass
    assert look_alike_prob(read, 1, "I") == pytest.approx(expected, rel=1e-5)
    assert look_alike_prob(read, 1, "L") == 0.0  # not a look-alike of 1: the model's figure only


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
    assert m.match(make_read("12O", {2: {"O": 0.9, "0": 0.08}})).plate == "120"  # type: ignore[union-attr]


def test_generic_family_reads_a_plate_no_format_describes() -> None:
    m = FormatMatcher(("eu", "uk", "us", "br", "any")).match(make_read("HH9G5W"))
    assert m is not None and (m.plate, m.region) == ("HH9G5W", "any")
    assert m.score == pytest.approx(0.99 * GENERIC_WEIGHT, rel=1e-3)


def test_generic_family_loses_to_a_format_the_read_fits_as_is() -> None:
    m = FormatMatcher(("any", "eu")).match(make_read("AB123CD"))  # order gives "any" the ties
    assert m is not None and m.region == "eu"


def test_look_alike_forced_on_a_surely_read_character_loses_to_the_generic_reading() -> None:
    # KC4Z3X: no format has a letter where the Z is except as 2 (EU LLNNNL); the model gave 2 no mass.
    m = FormatMatcher(("eu", "any")).match(make_read("KC4Z3X"))
    assert m is not None and (m.plate, m.region) == ("KC4Z3X", "any")


def test_o_and_zero_still_follow_the_format() -> None:
    # The model half-backs 0 where LLNNNLL needs a digit: the format's reading wins over "any".
    formats = {"it": ("LLNNNLL",), "any": DEFAULT_FORMATS["any"]}
    m = FormatMatcher(("it", "any"), formats).match(make_read("RKO99AN", {2: {"O": 0.6, "0": 0.38}}))
    assert m is not None and (m.plate, m.region) == ("RK099AN", "it")


@pytest.mark.parametrize("text", ["ABC", "ABCDE1234"])
def test_generic_family_length_bounds(text: str) -> None:
    assert FormatMatcher(("any",)).match(make_read(text)) is None
