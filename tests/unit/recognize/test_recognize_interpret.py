"""Which characters of an OCR line are the plate: end trims, inner drops and format ties."""

from recognize_reads import make_read

from recognize.formats import FormatMatcher
from recognize.interpret import best_fit, best_interpretation, interpret, kept_positions, support_shorter


def test_kept_positions_trim_ends_and_one_inner() -> None:
    views = list(kept_positions(6, 8))
    assert [0, 1, 2, 3, 4, 5] in views
    assert [2, 3, 4, 5] in views and [0, 1, 2, 3, 4] in views  # two leading / one trailing dropped
    assert [0, 1, 3, 4, 5] in views  # one inner character dropped
    assert [1, 2, 4, 5] in views  # trim and inner drop together
    assert all(len(v) >= 4 for v in views) and [0, 5] not in views
    assert max(len(v) for v in kept_positions(12, 10)) == 10  # no longer than the longest format


def test_unsure_inner_mark_is_dropped() -> None:
    # CZ plate NLANNNN with an inspection sticker between the groups, read as an unsure "8".
    read = make_read("1B285790", {3: {"8": 0.3, "B": 0.1}})
    best = interpret(read, FormatMatcher(("eu",), {"eu": ("NLANNNN",)}), dark_on_light=True, spill=0.0)
    assert best is not None and best.plate == "1B25790" and best.confidence > 0.7


def test_surely_read_inner_character_is_kept() -> None:
    # A clearly read character is part of the plate: no format match beats reading it as is.
    read = make_read("VW4X4WP")
    best = interpret(read, FormatMatcher(("eu",), {"eu": ("LLNNLL",)}), dark_on_light=True, spill=0.0)
    assert best is not None and best.plate == "VW4X4WP" and best.region is None


def test_country_band_letter_trimmed() -> None:
    read = make_read("DMAB1234")
    best = interpret(read, FormatMatcher(("eu",), {"eu": ("LLLNNNN",)}), dark_on_light=True, spill=0.0)
    assert best is not None and best.plate == "MAB1234"


def test_o_zero_swap_is_cheaper_than_i_one() -> None:
    # "W053011" fits LLNNNNN with 0->O and LNNNNNL with 1->I; O/0 look identical in plate fonts.
    # The model gives each look-alike the same small mass: the table decides.
    matcher = FormatMatcher(("eu",), {"eu": ("LNNNNNL", "LLNNNNN")})
    m = matcher.match(make_read("W053011", {1: {"0": 0.9, "O": 0.06}, 6: {"1": 0.9, "I": 0.06}}))
    assert m is not None and m.plate == "WO53011"


def test_spill_lowers_confidence() -> None:
    matcher = FormatMatcher(("eu",), {"eu": ("LLNNNLL",)})
    panel = interpret(make_read("RK755AJ"), matcher, dark_on_light=True, spill=0.0)
    paint = interpret(make_read("RK755AJ"), matcher, dark_on_light=True, spill=1.0)
    assert panel is not None and paint is not None and paint.confidence < 0.5 * panel.confidence


def test_best_of_crop_variants_wins() -> None:
    # The colour crop reads a seal between the groups as "8"; the grey crop of the same line
    # does not see it.  The variant that reads as a plate decides, not an average of both.
    matcher = FormatMatcher(("eu",), {"eu": ("NLANNNN", "LLN{1,6}")})
    colour = make_read("1B285790", {3: {"8": 0.9}})
    grey = make_read("1B25790")
    best = best_interpretation([colour, grey], matcher, dark_on_light=True, spill=0.0)
    assert best is not None and best.plate == "1B25790"
    alone = best_interpretation([colour], matcher, dark_on_light=True, spill=0.0)
    assert alone is not None and alone.plate != "1B25790"


def test_an_on_screen_clock_or_date_is_no_plate_while_a_seal_between_groups_is() -> None:
    matcher = FormatMatcher(("us", "any"), {"us": ("NNNNNN", "NNNNNNN", "NLNNNNN"), "any": ("A{4,7}",)})

    def plate(text: str, shown: str) -> str | None:
        best = best_interpretation([make_read(text, shown=shown)], matcher, dark_on_light=True, spill=0.0)
        return best.plate if best else None

    assert plate("064028", "") == "064028"  # its digits alone fit a format...
    assert plate("064028", "06:40:28") is None  # ...but they are the frame's clock
    assert plate("2012024", "2012:02:4") is None  # hours, minutes and seconds, cut by the crop
    assert plate("20140428", "2014-04-28") is None
    assert plate("2014430", "2014-4-30") is None
    assert plate("1T43213", "1T4:3213") == "1T43213"  # a seal between the groups, read as a colon
    assert plate("1234567", "12-345-67") == "1234567"  # digit groups that are no date
    assert plate("WH3T6N", "WH3-T6N") == "WH3T6N"


def test_no_variant_reads_as_a_plate() -> None:
    matcher = FormatMatcher(("eu",), {"eu": ("LLNNNLL",)})
    assert best_interpretation([make_read("AB"), make_read("HELLO")], matcher,
                               dark_on_light=False, spill=1.0) is None


def test_inner_sticker_dropped_rather_than_a_surely_read_last_character() -> None:
    # NLANNNN plate with a sticker read as "8" at 0.64 between the groups: dropping the surely
    # read final "5" to fit NLANNNN as 4B28187 must not beat dropping the unsure sticker.
    read = make_read("4B281875", {3: {"8": 0.64}})
    best = interpret(read, FormatMatcher(("eu",), {"eu": ("NLANNNN",)}), dark_on_light=True, spill=0.0)
    assert best is not None and best.plate == "4B21875"


def test_flat_dark_surround_vouches_for_plate_length_reads_only() -> None:
    # A black plate on a black bumper and a chrome badge on black paint look alike around the
    # text; only the plate-length read is treated as on a bounded panel.
    matcher = FormatMatcher(("eu",), {"eu": ("LLLNNNN", "LLNNN")})
    plate = interpret(make_read("WSQ3021"), matcher, dark_on_light=False, spill=1.0, flat_surround=True)
    badge = interpret(make_read("ES350"), matcher, dark_on_light=False, spill=1.0, flat_surround=True)
    assert plate is not None and plate.confidence > 0.9
    assert badge is not None and badge.confidence < 0.5


def test_a_tight_crop_that_lost_a_surely_seen_end_character_loses_to_the_padded_read() -> None:
    # The detector's box ended on the last character: the tight crop reads SK5K9, the padded SK5K9V.
    matcher = FormatMatcher(("eu", "any"))
    tight, padded = make_read("SK5K9"), make_read("SK5K9V")
    best = best_interpretation([tight, padded], matcher, dark_on_light=True, spill=0.0)
    assert best is not None and best.plate == "SK5K9V"


def test_a_faint_mark_beside_the_plate_costs_the_tight_read_little() -> None:
    # The padded crop also caught a frame edge, read as a faint C, and read the final I worse
    # (torn between 1 and I, which LLNNNL lets it drop): the tight reading still wins.
    matcher = FormatMatcher(("xx", "any"), {"xx": ("LLNNNLL", "LLNNNL"), "any": ("A{4,7}",)})
    tight = make_read("RK708A1", {6: {"1": 0.93, "I": 0.06}})
    padded = make_read("CRK708A1", {0: {"C": 0.28}, 7: {"1": 0.34, "I": 0.24}})
    best = best_interpretation([tight, padded], matcher, dark_on_light=True, spill=0.0)
    assert best is not None and (best.plate, best.region) == ("RK708AI", "xx")


def test_a_look_alike_split_between_crops_goes_to_the_side_both_crops_back() -> None:
    # One crop is torn between B (0.48) and 8 (0.47) at the second character, and B fits the
    # national format; the other crop reads a sure 8 (0.90, B at 0.08).  Alone, the first
    # crop's format reading wins; together, the crops back the 8.
    matcher = FormatMatcher(("xx", "any"), {"xx": ("LLNNNNN",), "any": ("A{4,7}",)})
    unsure = make_read("HB24126", {1: {"B": 0.48, "8": 0.47}})
    sure = make_read("H824126", {1: {"8": 0.90, "B": 0.08}})
    alone = best_interpretation([unsure], matcher, dark_on_light=True, spill=0.0)
    assert alone is not None and alone.plate == "HB24126"
    both = best_interpretation([unsure, sure], matcher, dark_on_light=True, spill=0.0)
    assert both is not None and both.plate == "H824126"


def test_an_unsure_leading_mark_that_one_crop_lacks_costs_what_it_was_read_at() -> None:
    # The padded crop reads a frame mark before the plate as an unsure L (0.3); the tight crop
    # does not see it.  Both readings fit a format: the tight crop's absence of the mark is
    # not free backing for the longer reading, so the plate without the mark wins.
    matcher = FormatMatcher(("xx",), {"xx": ("LLLNNNN", "LLLLNNNN")})
    tight, padded = make_read("KTR4821"), make_read("LKTR4821", {0: {"L": 0.3}})
    best = best_interpretation([tight, padded], matcher, dark_on_light=True, spill=0.0)
    assert best is not None and best.plate == "KTR4821"


def test_a_read_that_disagrees_gives_no_support() -> None:
    read = make_read("AB123")
    assert support_shorter(read, "XAB123", [0.99] * 6) > 0.9  # lacks only the leading X
    assert best_fit(read, "AB124")[0] == 0.0  # reads 3 where the proposal has 4
    assert best_fit(make_read("AB1234"), "AB124")[0] < 0.5  # shows it only by dropping a sure 3


def test_a_second_opinion_settles_a_look_alike_split_between_crops() -> None:
    # The tight crop reads J (0.74), the padded one a sure 1 with J below MIN_CHAR_PROB, so
    # the padded read gives the J reading no support and the 1 wins.  A second model reads J
    # in the padded crop (0.98): raised to the two models' mean, J is an alternative the
    # padded read backs, and the crops then agree on J.
    from recognize.ocr import with_second_opinion

    matcher = FormatMatcher(("xx", "any"), {"xx": ("NNNNNNN",), "any": ("A{4,7}",)})
    tight = make_read("J868321", {0: {"J": 0.74, "1": 0.2}})
    padded = make_read("1868321", {0: {"1": 0.87, "J": 0.01}})
    alone = best_interpretation([tight, padded], matcher, dark_on_light=True, spill=0.0)
    assert alone is not None and alone.plate == "1868321"
    second = make_read("J868321", {0: {"J": 0.98}})
    backed = [tight, with_second_opinion(padded, second)]
    both = best_interpretation(backed, matcher, dark_on_light=True, spill=0.0)
    assert both is not None and both.plate == "J868321"


def test_a_configured_region_with_ten_character_plates_is_read() -> None:
    # Longer than any built-in format (an Indian MH12AB1234): the region's own formats decide.
    matcher = FormatMatcher(("in", "any"), {"in": ("LLNNLLNNNN",), "any": ("A{4,7}",)})
    best = interpret(make_read("MH12AB1234"), matcher, dark_on_light=True, spill=0.0)
    assert best is not None and (best.plate, best.region) == ("MH12AB1234", "in")
