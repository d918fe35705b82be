"""Writing exported lists to CSV and Excel: watermarked, formula-safe, streamed.

- Formula injection (CSV injection): a cell starting with ``= + - @`` (or a tab or carriage
  return) is prefixed with ``'`` so spreadsheet programs show it as text.
- Watermark: who exported, when, and the export number — kept where it breaks nothing,
  so the first row is always the column headers (Excel filters, pivot tables and
  re-import need that). Excel files carry it in the document properties, the printed page
  header and a second sheet "说明"; a CSV has no place for it outside its rows, so it is
  traced through its file name (the export number) and its SHA-256, recorded with the
  download in the audit trail (docs/security.md, *Exports*).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import BinaryIO, Literal

import xlsxwriter

FileFormat = Literal["csv", "xlsx"]
_FORMULA_START = ("=", "+", "-", "@")
_CONTROL_START = ("\t", "\r", "\n")
NOTE_SHEET = "说明"  # the watermark's sheet in an Excel export


def neutralise(value: object) -> str:
    """``'`` before a cell a spreadsheet could read as a formula. Spreadsheet programs skip
    leading blanks (ASCII or not: the ideographic space U+3000, no-break spaces) before
    evaluating, so `` =HYPERLINK(…)`` is as dangerous as ``=HYPERLINK(…)``."""
    text = "" if value is None else str(value)
    if text.startswith(_CONTROL_START) or text.lstrip().startswith(_FORMULA_START):
        return "'" + text
    return text


@dataclass(frozen=True)
class Watermark:
    export_uid: str
    username: str
    at_local: str

    @property
    def text(self) -> str:
        return (
            f"SmartUnion 导出编号 {self.export_uid} · 导出人 {self.username} · {self.at_local} · "
            "仅限工会工作使用，禁止外传"
        )


def write_csv(
    out: BinaryIO,
    headers: Sequence[str],
    rows: Iterable[Sequence[object]],
    watermark: Watermark,
    *,
    encoding: str = "utf-8-sig",
) -> int:
    """UTF-8 with BOM by default (Excel opens it correctly); ``gb18030`` for old systems.

    ``watermark`` is not written: a line of it would be the file's first data row. The
    file name and the SHA-256 in the audit trail tie a copy back to its export.
    """
    text = io.TextIOWrapper(out, encoding=encoding, newline="", write_through=True)
    writer = csv.writer(text)
    writer.writerow(headers)
    count = 0
    for row in rows:
        writer.writerow([neutralise(v) for v in row])
        count += 1
    text.flush()
    text.detach()
    return count


def write_xlsx(
    out: BinaryIO,
    headers: Sequence[str],
    rows: Iterable[Sequence[object]],
    watermark: Watermark,
    *,
    sheet: str = "导出",
) -> int:
    # constant_memory streams rows to the file: memory stays flat for long lists.
    book = xlsxwriter.Workbook(out, {"constant_memory": True, "in_memory": True})
    book.set_properties(
        {
            "title": f"SmartUnion export {watermark.export_uid}",
            "subject": "仅限工会工作使用，禁止外传",
            "author": watermark.username,
            "keywords": watermark.export_uid,
            "comments": watermark.text,
        }
    )
    book.set_custom_property("SmartUnion export", watermark.export_uid)
    ws = book.add_worksheet(sheet)
    ws.set_header(f"&L{watermark.text.replace('&', '&&')}")
    ws.set_footer("&C&P / &N")
    bold = book.add_format({"bold": True})
    # Row 1 is the column headers: filters, pivot tables and re-import work as they are.
    for col, name in enumerate(headers):
        ws.write_string(0, col, name, bold)
    ws.freeze_panes(1, 0)
    count = 0
    for count, row in enumerate(rows, start=1):
        for col, value in enumerate(row):
            # write_string: never let xlsxwriter turn text into a formula or a number.
            ws.write_string(count, col, neutralise(value))
    if headers:
        ws.autofilter(0, 0, count, len(headers) - 1)
    note = book.add_worksheet(NOTE_SHEET)
    note.set_column(0, 0, 100)
    note.write_string(0, 0, watermark.text)
    note.write_string(1, 0, f"导出编号：{watermark.export_uid}")
    note.write_string(2, 0, f"导出人：{watermark.username}")
    note.write_string(3, 0, f"导出时间：{watermark.at_local}")
    book.close()
    return count
