"""Tests for smartunion.validation, with python-stdnum as an independent oracle."""

from __future__ import annotations

import datetime as dt
import pickle
import time
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from stdnum.cn import ric, uscc

from smartunion import validation as v
from smartunion.reference import regions

GB11643_SAMPLE = "11010519491231002X"  # the worked example of GB 11643-1999
REAL_USCC = "91110000600037341L"  # python-stdnum's doctest example; org code 60003734-1

COUNTY_CODES = [item.code for item in regions.all_regions() if item.level == "county"]
DIGITS = "0123456789"
ID_CHARS = DIGITS + "X"
LATIN36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def build_id(region: str, born: dt.date, sequence: int) -> str:
    first17 = f"{region}{born:%Y%m%d}{sequence:03d}"
    return first17 + v.citizen_id_check_digit(first17)


def org_check_oracle(body8: str) -> str:
    """GB 11714-1997 check character, written out independently of the module."""
    total = sum(LATIN36.index(c) * w for c, w in zip(body8, (3, 7, 9, 10, 5, 8, 4, 2), strict=True))
    return "0123456789X0"[11 - total % 11]


regions_st = st.sampled_from(COUNTY_CODES)
# python-stdnum's region table crashes (KeyError 'county') on Hong Kong, Macao and Taiwan
# codes, so the oracle comparison uses mainland codes only.
mainland_regions_st = st.sampled_from([c for c in COUNTY_CODES if c[:2] not in ("71", "81", "82")])
births_st = st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2020, 12, 31))
sequences_st = st.integers(min_value=0, max_value=999)
citizen_ids_st = st.builds(build_id, regions_st, births_st, sequences_st)
alphabet_st = st.sampled_from(v.USCC_ALPHABET)
org8_st = st.text(alphabet=v.USCC_ALPHABET, min_size=8, max_size=8)
region6_st = st.text(alphabet=DIGITS, min_size=6, max_size=6)
authority_st = st.sampled_from(v.USCC_AUTHORITIES)
kind_st = st.sampled_from("123456789")
usccs_st = st.builds(v.make_uscc, authority_st, kind_st, region6_st, org8_st)


class TestValidationError:
    def test_is_a_value_error_with_field_and_reason(self) -> None:
        with pytest.raises(v.ValidationError, match="citizen_id: must be 18 characters") as info:
            v.check_citizen_id("123")
        assert isinstance(info.value, ValueError)
        assert info.value.field == "citizen_id"
        assert info.value.reason == "must be 18 characters, got 3"

    def test_pickles(self) -> None:
        error = v.ValidationError("uscc", "check character should be L")
        copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own object
        assert (copy.field, copy.reason, str(copy)) == (error.field, error.reason, str(error))


class TestCitizenIdCheckDigit:
    def test_gb_sample(self) -> None:
        assert v.citizen_id_check_digit(GB11643_SAMPLE[:17]) == "X"

    @given(st.text(alphabet=DIGITS, min_size=17, max_size=17))
    def test_matches_stdnum(self, first17: str) -> None:
        # stdnum's calc_check_digit expects the number with a (placeholder) check digit.
        assert v.citizen_id_check_digit(first17) == ric.calc_check_digit(first17 + "0")

    @pytest.mark.parametrize(
        "bad", ["", "1234567890123456", "123456789012345678", "1234567890123456X"]
    )
    def test_rejects_bad_input(self, bad: str) -> None:
        with pytest.raises(v.ValidationError):
            v.citizen_id_check_digit(bad)


class TestCheckCitizenId:
    def test_gb_sample(self) -> None:
        parsed = v.check_citizen_id(GB11643_SAMPLE, strict_region=True)
        assert parsed == v.CitizenId(GB11643_SAMPLE, "110105", dt.date(1949, 12, 31), "F", "X")
        assert ric.is_valid(GB11643_SAMPLE)

    def test_normalises_case_and_whitespace(self) -> None:
        assert v.check_citizen_id(f"  {GB11643_SAMPLE.lower()}\n").number == GB11643_SAMPLE

    def test_age_on(self) -> None:
        parsed = v.check_citizen_id(GB11643_SAMPLE)
        assert parsed.age_on(dt.date(2019, 12, 30)) == 69
        assert parsed.age_on(dt.date(2019, 12, 31)) == 70

    @given(regions_st, births_st, sequences_st)
    def test_built_numbers_are_valid(self, region: str, born: dt.date, sequence: int) -> None:
        number = build_id(region, born, sequence)
        parsed = v.check_citizen_id(number, strict_region=True)
        assert parsed.number == number
        assert parsed.region_code == region
        assert parsed.birth_date == born
        assert parsed.gender == ("M" if sequence % 2 else "F")
        assert parsed.check_digit == number[-1]
        assert v.is_citizen_id(number)

    @given(citizen_ids_st, st.data())
    def test_any_single_substitution_is_rejected(self, number: str, data: st.DataObject) -> None:
        # MOD 11-2 weights are all non-zero mod 11, so every single-character error is caught.
        position = data.draw(st.integers(min_value=0, max_value=17))
        choices = ID_CHARS if position == 17 else DIGITS
        replacement = data.draw(st.sampled_from(choices).filter(lambda c: c != number[position]))
        changed = number[:position] + replacement + number[position + 1 :]
        assert not v.is_citizen_id(changed)

    @settings(deadline=None)  # stdnum loads its region database on first use
    @given(mainland_regions_st, births_st, sequences_st, st.sampled_from(ID_CHARS))
    def test_agrees_with_stdnum(
        self, region: str, born: dt.date, sequence: int, check: str
    ) -> None:
        number = f"{region}{born:%Y%m%d}{sequence:03d}{check}"
        # stdnum also checks the region against the code's validity years, so it may
        # reject what we accept, never the reverse; the check digits must agree.
        if ric.is_valid(number):
            assert v.is_citizen_id(number)
        assert v.is_citizen_id(number) == (ric.calc_check_digit(number) == check)

    def test_historical_region_accepted_unless_strict(self) -> None:
        number = build_id("140102", dt.date(1980, 5, 1), 123)  # an abolished Taiyuan district
        assert v.check_citizen_id(number).region_code == "140102"
        with pytest.raises(v.ValidationError, match="not a current administrative division"):
            v.check_citizen_id(number, strict_region=True)

    @pytest.mark.parametrize(
        ("number", "reason"),
        [
            ("110105491231002", "15-digit legacy ID numbers are not accepted"),
            ("11010519491231002", "must be 18 characters, got 17"),
            ("11010519491231002X1", "must be 18 characters, got 19"),
            ("1101051949123100XX", "first 17 characters must be digits"),
            ("11010519491231002Y", "first 17 characters must be digits"),
            ("１１０１０５１９４９１２３１００２X", "first 17 characters must be digits"),
            (build_id("990000", dt.date(1980, 1, 1), 1), "does not start with a province code"),
            (build_id("000000", dt.date(1980, 1, 1), 1), "does not start with a province code"),
            ("110105199902300010", "birth date is not a calendar date"),
            (build_id("110105", dt.date(1899, 12, 31), 1), "birth date is before 1900"),
            ("11010519491231002 ", "must be 18 characters, got 17"),
            ("110105194912310021", "check digit should be X"),
        ],
    )
    def test_rejects(self, number: str, reason: str) -> None:
        with pytest.raises(v.ValidationError, match=reason) as info:
            v.check_citizen_id(number)
        assert number.strip() not in str(info.value)
        assert not v.is_citizen_id(number)

    def test_rejects_impossible_date_even_with_right_check_digit(self) -> None:
        first17 = "11010519990230001"
        with pytest.raises(v.ValidationError, match="not a calendar date"):
            v.check_citizen_id(first17 + v.citizen_id_check_digit(first17))

    def test_rejects_future_birth_date(self) -> None:
        number = build_id("110105", dt.date(2030, 1, 1), 1)
        assert v.check_citizen_id(number, today=dt.date(2030, 1, 1)).birth_date.year == 2030
        with pytest.raises(v.ValidationError, match="birth date is in the future"):
            v.check_citizen_id(number, today=dt.date(2029, 12, 31))

    def test_rejects_non_string(self) -> None:
        assert not v.is_citizen_id(11010519491231002)  # type: ignore[arg-type]


digit_matrices_st = hnp.arrays(
    dtype=st.sampled_from([np.int8, np.uint8, np.int64]),
    shape=st.tuples(st.integers(min_value=0, max_value=40), st.just(17)),
    elements=st.integers(min_value=0, max_value=9),
)


class TestVectorisedCitizenIds:
    @given(digit_matrices_st)
    def test_check_digits_match_scalar(self, digits: npt.NDArray[np.integer[Any]]) -> None:
        result = v.citizen_id_check_digits(digits)
        expected = [v.citizen_id_check_digit("".join(map(str, row))) for row in digits.tolist()]
        assert result.shape == (digits.shape[0],)
        assert result.tolist() == expected

    @given(digit_matrices_st)
    def test_make_citizen_ids_match_scalar(self, digits: npt.NDArray[np.integer[Any]]) -> None:
        result = v.make_citizen_ids(digits)
        rows = ["".join(map(str, row)) for row in digits.tolist()]
        assert result.tolist() == [row + v.citizen_id_check_digit(row) for row in rows]

    @pytest.mark.parametrize(
        "bad",
        [
            np.zeros((3, 16), dtype=np.int8),
            np.zeros(17, dtype=np.int8),
            np.full((2, 17), 10, dtype=np.int8),
            np.full((2, 17), -1, dtype=np.int8),
            np.zeros((2, 17), dtype=np.float64),
        ],
    )
    def test_rejects_bad_arrays(self, bad: npt.NDArray[Any]) -> None:
        with pytest.raises(v.ValidationError):
            v.citizen_id_check_digits(bad)

    def test_a_million_rows_is_fast(self) -> None:
        digits = np.random.default_rng(0).integers(0, 10, size=(1_000_000, 17), dtype=np.int8)
        start = time.perf_counter()
        checks = v.citizen_id_check_digits(digits)
        elapsed = time.perf_counter() - start
        assert checks.shape == (1_000_000,)
        # Measured about 0.06 s; the bound only catches a fall back to Python loops.
        assert elapsed < 1.0


class TestUsccCheckChars:
    def test_real_code(self) -> None:
        assert v.uscc_check_char(REAL_USCC[:17]) == "L"
        assert v.organization_code_check_char(REAL_USCC[8:16]) == "1"

    @given(st.text(alphabet=v.USCC_ALPHABET, min_size=17, max_size=17))
    def test_check_char_matches_stdnum(self, first17: str) -> None:
        assert v.uscc_check_char(first17) == uscc.calc_check_digit(first17)

    @given(org8_st)
    def test_org_check_matches_oracle(self, body8: str) -> None:
        assert v.organization_code_check_char(body8) == org_check_oracle(body8)

    @pytest.mark.parametrize("bad", ["", "6000373", "600037341", "6000373I"])
    def test_org_check_rejects_bad_input(self, bad: str) -> None:
        with pytest.raises(v.ValidationError):
            v.organization_code_check_char(bad)

    @pytest.mark.parametrize("bad", ["", REAL_USCC[:16], REAL_USCC, REAL_USCC[:16] + "O"])
    def test_check_char_rejects_bad_input(self, bad: str) -> None:
        with pytest.raises(v.ValidationError):
            v.uscc_check_char(bad)


def with_final_check(first17: str) -> str:
    """Append the final check character computed by stdnum."""
    return first17 + uscc.calc_check_digit(first17)


class TestCheckUscc:
    def test_real_code(self) -> None:
        parsed = v.check_uscc(REAL_USCC)
        assert parsed == v.Uscc(REAL_USCC, "9", "1", "110000", "600037341", "L")
        assert not parsed.is_union
        assert uscc.is_valid(REAL_USCC)

    def test_normalises_case_and_whitespace(self) -> None:
        assert v.check_uscc(f" {REAL_USCC.lower()} ").code == REAL_USCC

    @given(usccs_st)
    def test_built_codes_are_valid(self, code: str) -> None:
        parsed = v.check_uscc(code)
        assert parsed.code == code
        assert v.is_uscc(code)
        assert code[-1] == uscc.calc_check_digit(code)
        assert code[16] == org_check_oracle(code[8:16])

    @given(usccs_st)
    def test_stdnum_agrees_except_for_letter_authorities(self, code: str) -> None:
        # stdnum requires the first 8 characters to be digits, so it wrongly rejects the
        # authority codes A, N and Y that GB 32100 allows.
        assert uscc.is_valid(code) == (code[0] not in "ANY")

    @pytest.mark.parametrize("authority", ["A", "N", "Y"])
    def test_letter_authorities_are_accepted(self, authority: str) -> None:
        code = v.make_uscc(authority, "1", "110000", "MA01BC2D")
        assert v.check_uscc(code).authority == authority
        assert not uscc.is_valid(code)  # the known stdnum bug

    @given(usccs_st, st.data())
    def test_any_single_substitution_is_rejected(self, code: str, data: st.DataObject) -> None:
        position = data.draw(st.integers(min_value=0, max_value=17))
        replacement = data.draw(alphabet_st.filter(lambda c: c != code[position]))
        changed = code[:position] + replacement + code[position + 1 :]
        assert not v.is_uscc(changed)

    @given(
        alphabet_st,
        alphabet_st,
        st.one_of(region6_st, st.text(alphabet=v.USCC_ALPHABET, min_size=6, max_size=6)),
        org8_st,
        st.data(),
    )
    def test_mostly_valid_codes_against_oracles(
        self, authority: str, kind: str, region6: str, org8: str, data: st.DataObject
    ) -> None:
        org_check = data.draw(st.one_of(st.just(org_check_oracle(org8)), alphabet_st))
        code = with_final_check(authority + kind + region6 + org8 + org_check)
        expected = (
            authority in "123456789ANY"
            and kind in "123456789"
            and region6.isdigit()
            and org_check == org_check_oracle(org8)
        )
        assert v.is_uscc(code) == expected
        if expected and authority not in "ANY":
            assert uscc.is_valid(code)

    @pytest.mark.parametrize(
        ("code", "reason"),
        [
            (REAL_USCC[:17], "must be 18 characters, got 17"),
            (REAL_USCC + "0", "must be 18 characters, got 19"),
            ("91110000600O37341L", "other than I, O, S, V, Z"),
            ("9111000060003734-L", "other than I, O, S, V, Z"),
            (with_final_check("B1110000600037341"), "authority code must be 1-9, A, N or Y"),
            (with_final_check("90110000600037341"), "institution type code must be a digit 1-9"),
            (with_final_check("9A110000600037341"), "institution type code must be a digit 1-9"),
            (with_final_check("911100A0600037341"), "region code"),
            (
                with_final_check("91110000600037342"),
                "organisation code check character should be 1",
            ),
            ("91110000600037341M", "check character should be L"),
        ],
    )
    def test_rejects(self, code: str, reason: str) -> None:
        with pytest.raises(v.ValidationError, match=reason):
            v.check_uscc(code)
        assert not v.is_uscc(code)

    def test_strict_institution_type(self) -> None:
        code = v.make_uscc("9", "4", "110000", "60003734")
        assert v.check_uscc(code).institution_type == "4"
        with pytest.raises(v.ValidationError, match="type 4 is not defined for authority 9"):
            v.check_uscc(code, strict_type=True)
        assert v.check_uscc(v.make_uscc("8", "1", "110000", "60003734"), strict_type=True)

    def test_institution_type_table_covers_every_authority(self) -> None:
        assert set(v.USCC_INSTITUTION_TYPES) == set(v.USCC_AUTHORITIES)
        assert set(v.USCC_INSTITUTION_TYPES["8"]) == {"1", "9"}

    @pytest.mark.parametrize(
        ("authority", "kind", "expected"),
        [("8", "1", True), ("8", "9", True), ("8", "2", False), ("9", "1", False)],
    )
    def test_is_union_code(self, authority: str, kind: str, expected: bool) -> None:
        code = v.make_uscc(authority, kind, "140105", "MA0X1234")
        assert v.is_union_code(code) is expected
        assert v.check_uscc(code).is_union is expected

    def test_invalid_code_is_not_a_union_code(self) -> None:
        code = v.make_uscc("8", "1", "140105", "MA0X1234")
        assert not v.is_union_code(code[:17] + ("0" if code[17] != "0" else "1"))


class TestMakeUscc:
    def test_lower_case_parts(self) -> None:
        assert v.make_uscc("9", "1", "110000", "60003734") == REAL_USCC
        assert v.make_uscc("n", "1", "110000", "ma01bc2d").startswith("N1110000MA01BC2D")

    @pytest.mark.parametrize(
        "parts",
        [
            ("9", "1", "11000", "60003734"),
            ("91", "1", "110000", "60003734"),
            ("B", "1", "110000", "60003734"),
            ("9", "0", "110000", "60003734"),
            ("9", "1", "11000A", "60003734"),
            ("9", "1", "110000", "6000373I"),
        ],
    )
    def test_rejects_bad_parts(self, parts: tuple[str, str, str, str]) -> None:
        with pytest.raises(v.ValidationError):
            v.make_uscc(*parts)

    @given(st.lists(st.tuples(authority_st, kind_st, region6_st, org8_st), max_size=30))
    def test_vectorised_matches_scalar(self, rows: list[tuple[str, str, str, str]]) -> None:
        prefixes = np.asarray(["".join(row) for row in rows], dtype=np.str_)
        result = v.make_usccs(prefixes)
        assert result.shape == (len(rows),)
        assert result.tolist() == [v.make_uscc(*row) for row in rows]

    def test_vectorised_accepts_lists_and_lower_case(self) -> None:
        result = v.make_usccs(["9111000060003734", "n1110000ma01bc2d"])
        assert result.tolist() == [REAL_USCC, v.make_uscc("N", "1", "110000", "MA01BC2D")]

    def test_vectorised_empty(self) -> None:
        assert v.make_usccs([]).shape == (0,)

    @pytest.mark.parametrize(
        ("bad", "reason"),
        [
            ("911100006000373", "row 1: prefix must have 16 characters"),
            ("91110000600037341", "row 1: prefix must have 16 characters"),
            ("911100006000373I", "row 1: characters outside the alphabet"),
            ("911100006000373é", "row 1: characters outside the alphabet"),
            ("B111000060003734", "row 1: registration authority code"),
            ("9011000060003734", "row 1: institution type code"),
            ("91A1000060003734", "row 1: region code"),
        ],
    )
    def test_vectorised_names_the_bad_row(self, bad: str, reason: str) -> None:
        with pytest.raises(v.ValidationError, match=reason):
            v.make_usccs(["9111000060003734", bad])

    def test_vectorised_fifty_thousand(self) -> None:
        rng = np.random.default_rng(1)
        alphabet = np.asarray(list(v.USCC_ALPHABET))
        bodies = ["".join(row) for row in rng.choice(alphabet, size=(50_000, 8)).tolist()]
        codes = v.make_usccs([f"81140105{body}" for body in bodies])
        assert len(set(codes.tolist())) == len(set(bodies))
        assert all(v.is_union_code(code) for code in codes[::997].tolist())


class TestMobile:
    @pytest.mark.parametrize(
        "value",
        [
            "13800138000",
            " 13800138000 ",
            "138-0013-8000",
            "138 0013 8000",
            "+86 138 0013 8000",
            "+8613800138000",
            "86-13800138000",
            "0086 13800138000",
            "13800138000\u3000",
        ],
    )
    def test_accepts_and_normalises(self, value: str) -> None:
        assert v.check_mobile(value) == "13800138000"
        assert v.is_mobile(value)

    @pytest.mark.parametrize(
        ("value", "reason"),
        [
            ("", "must be 11 digits, got 0"),
            ("1380013800", "must be 11 digits, got 10"),
            ("138001380001", "must be 11 digits, got 12"),
            ("+87 13800138000", "only digits"),
            ("8713800138000", "must be 11 digits, got 13"),
            ("1380013800a", "only digits"),
            ("１３８００１３８０００", "only digits"),
            ("23800138000", "must start with 1"),
            ("12800138000", "second digit must be 3-9"),
            ("+86", "only digits"),
        ],
    )
    def test_rejects(self, value: str, reason: str) -> None:
        with pytest.raises(v.ValidationError, match=reason):
            v.check_mobile(value)
        assert not v.is_mobile(value)

    def test_prefixes(self) -> None:
        groups = v.MOBILE_PREFIXES_BY_OPERATOR
        assert [len(groups[name]) for name in groups] == [23, 12, 12]
        assert len(set(v.MOBILE_PREFIXES)) == len(v.MOBILE_PREFIXES) == 47
        assert list(v.MOBILE_PREFIXES) == sorted(v.MOBILE_PREFIXES)
        assert {"134", "139", "198", "130", "196", "133", "199"} <= set(v.MOBILE_PREFIXES)
        assert "140" not in v.MOBILE_PREFIXES

    @given(st.sampled_from(v.MOBILE_PREFIXES), st.text(alphabet=DIGITS, min_size=8, max_size=8))
    def test_generated_numbers_are_valid(self, prefix: str, rest: str) -> None:
        assert v.check_mobile(f"+86 {prefix}-{rest}") == prefix + rest


def test_is_region_code_is_re_exported() -> None:
    assert v.is_region_code is regions.is_region_code
    assert v.is_region_code("140105")
