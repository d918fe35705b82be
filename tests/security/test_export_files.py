"""Formula neutralisation of exported cells (CSV injection), CSV and Excel alike."""

from __future__ import annotations

import csv
import io

import openpyxl
import pytest

from smartunion.security.export_files import Watermark, neutralise, write_csv, write_xlsx

MARK = Watermark(export_uid="E1", username="staff_a", at_local="2026-12-01 08:00")

DANGEROUS = [
    '=HYPERLINK("http://x")',
    ' =HYPERLINK("http://x")',
    "   =1+1",
    "\u3000=1+1",  # ideographic space, common in Chinese input
    "\xa0@SUM(A1)",
    " +1",
    " -1+1",
    "\t=1",
    "\r=1",
    "\n=1",
    "\t",
    "@x",
]
HARMLESS = ["张三丰", "采煤工", "a=b", "1985-**-**", "", " 钳工", "138****5678"]


@pytest.mark.parametrize("value", DANGEROUS)
def test_formula_after_blanks_is_neutralised(value: str) -> None:
    assert neutralise(value) == "'" + value


@pytest.mark.parametrize("value", HARMLESS)
def test_ordinary_text_is_left_alone(value: str) -> None:
    assert neutralise(value) == value


def test_csv_and_xlsx_cells_never_start_a_formula() -> None:
    rows = [[v] for v in DANGEROUS]
    out = io.BytesIO()
    write_csv(out, ["值"], rows, MARK)
    # Row 1 is the header (the watermark is not a row: issue 9 #13).
    cells = [row[0] for row in csv.reader(io.StringIO(out.getvalue().decode("utf-8-sig")))][1:]
    assert cells == ["'" + v for v in DANGEROUS]
    out = io.BytesIO()
    write_xlsx(out, ["值"], rows, MARK)
    sheet = openpyxl.load_workbook(io.BytesIO(out.getvalue())).active
    values = [sheet.cell(row=i + 2, column=1).value for i in range(len(DANGEROUS))]
    assert all(isinstance(v, str) and v.startswith("'") for v in values), values
