"""Validation of the identifiers SmartUnion stores: citizen ID numbers, unified social
credit codes and mainland mobile numbers.

Every identifier has a ``check_*`` function that returns the normalised value (or a small
record of its parts) and raises :class:`ValidationError` with a reason, and an ``is_*``
function that answers with a bool. Reasons never repeat the submitted value, so they can
be logged and shown without leaking personal data.

Standards implemented here (python-stdnum is only used by the tests, as an oracle):

* GB 11643-1999 《公民身份号码》: 18-character citizen ID number, ISO 7064 MOD 11-2
  check character.
* GB 32100-2015 《法人和其他组织统一社会信用代码编码规则》: 18-character unified social
  credit code (USCC), ISO 7064 MOD 31-3 style check character over a 31-symbol alphabet,
  embedding a GB 11714-1997 《全国组织机构代码编制规则》 organisation code whose own
  MOD 11 check character is validated as well.

The vectorised helpers (``citizen_id_check_digits``, ``make_citizen_ids``,
``make_usccs``) serve the synthetic data generator, which builds millions of numbers.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from smartunion.reference.regions import is_province_prefix, is_region_code

__all__ = [
    "MOBILE_PREFIXES",
    "MOBILE_PREFIXES_BY_OPERATOR",
    "USCC_ALPHABET",
    "USCC_AUTHORITIES",
    "USCC_INSTITUTION_TYPES",
    "CitizenId",
    "Uscc",
    "ValidationError",
    "check_citizen_id",
    "check_mobile",
    "check_uscc",
    "citizen_id_check_digit",
    "citizen_id_check_digits",
    "is_citizen_id",
    "is_mobile",
    "is_region_code",
    "is_union_code",
    "is_uscc",
    "make_citizen_ids",
    "make_uscc",
    "make_usccs",
    "organization_code_check_char",
    "uscc_check_char",
]


class ValidationError(ValueError):
    """A value failed validation; ``field`` names the identifier, ``reason`` says why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason

    def __reduce__(self) -> tuple[type[ValidationError], tuple[str, str]]:
        # The default pickling replays ``args`` (the joined message) into __init__, which
        # takes two arguments; needed when errors cross process boundaries.
        return (type(self), (self.field, self.reason))


# --------------------------------------------------------------------------------------
# Citizen ID number, GB 11643-1999
# --------------------------------------------------------------------------------------

_CITIZEN_ID = "citizen_id"
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK_CHARS = "10X98765432"
_ID_BODY = re.compile(r"[0-9]{17}")
_ID_FULL = re.compile(r"[0-9]{17}[0-9X]")
_EARLIEST_BIRTH = dt.date(1900, 1, 1)


@dataclass(frozen=True, slots=True)
class CitizenId:
    """The parts of a valid citizen ID number.

    ``region_code`` is where the number was issued (usually the household registration at
    birth); it may be a code that no longer exists.
    """

    number: str
    region_code: str
    birth_date: dt.date
    gender: Literal["M", "F"]
    check_digit: str

    def age_on(self, day: dt.date) -> int:
        """Age in whole years on ``day``."""
        before_birthday = (day.month, day.day) < (self.birth_date.month, self.birth_date.day)
        return day.year - self.birth_date.year - before_birthday


def citizen_id_check_digit(first17: str) -> str:
    """The GB 11643 check character ('0'-'9' or 'X') for the first 17 digits."""
    if not (isinstance(first17, str) and _ID_BODY.fullmatch(first17)):
        raise ValidationError(_CITIZEN_ID, "check digit needs exactly 17 digits")
    total = sum(int(char) * weight for char, weight in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK_CHARS[total % 11]


def _digit_matrix(digits: npt.ArrayLike, width: int) -> npt.NDArray[np.integer[Any]]:
    matrix = np.asarray(digits)
    if matrix.ndim != 2 or matrix.shape[1] != width:
        raise ValidationError(_CITIZEN_ID, f"expected an (N, {width}) array of digits")
    if not np.issubdtype(matrix.dtype, np.integer):
        raise ValidationError(_CITIZEN_ID, "expected an integer array of digits")
    if matrix.size and (matrix.min() < 0 or matrix.max() > 9):
        raise ValidationError(_CITIZEN_ID, "digits must be between 0 and 9")
    return matrix


def _id_totals(matrix: npt.NDArray[np.integer[Any]]) -> npt.NDArray[np.int32]:
    # einsum accumulates in int32 without first widening an int8 input into a big copy,
    # as a plain matmul would. Unsafe casting is fine: digits are checked to be 0-9.
    weights = np.asarray(_ID_WEIGHTS, dtype=np.int32)
    totals: npt.NDArray[np.int32] = np.einsum(
        "ij,j->i", matrix, weights, dtype=np.int32, casting="unsafe"
    )
    return totals


def citizen_id_check_digits(digits: npt.ArrayLike) -> npt.NDArray[np.str_]:
    """Vectorised :func:`citizen_id_check_digit` for an (N, 17) integer array of digits.

    Returns an (N,) array of one-character strings.
    """
    totals = _id_totals(_digit_matrix(digits, 17))
    return np.asarray(list(_ID_CHECK_CHARS))[totals % 11]


def make_citizen_ids(digits: npt.ArrayLike) -> npt.NDArray[np.str_]:
    """Complete an (N, 17) integer array of digits into N 18-character ID numbers.

    The region and birth date inside the digits are the caller's responsibility.
    """
    matrix = _digit_matrix(digits, 17)
    check_points = np.frombuffer(_ID_CHECK_CHARS.encode("utf-32-le"), dtype=np.uint32)
    totals = _id_totals(matrix)
    points = np.empty((matrix.shape[0], 18), dtype=np.uint32)
    points[:, :17] = matrix + ord("0")
    points[:, 17] = check_points[totals % 11]
    # A C-contiguous block of UCS-4 code points is exactly numpy's '<U18' layout.
    return points.view("<U18").reshape(-1)


def _birth_date(number: str, today: dt.date) -> dt.date:
    try:
        born = dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise ValidationError(_CITIZEN_ID, "birth date is not a calendar date") from None
    if born < _EARLIEST_BIRTH:
        raise ValidationError(_CITIZEN_ID, "birth date is before 1900")
    if born > today:
        raise ValidationError(_CITIZEN_ID, "birth date is in the future")
    return born


def check_citizen_id(
    value: str, *, strict_region: bool = False, today: dt.date | None = None
) -> CitizenId:
    """Validate an 18-character citizen ID number (GB 11643-1999).

    Surrounding whitespace is ignored and a lower-case ``x`` accepted. 15-digit numbers
    (issued before 1999) are rejected: every living holder has been issued an 18-digit one.

    Region: the first two digits must be a province code. Numbers issued long ago carry
    county codes that have since been abolished, and the historical table (with validity
    years) is not shipped, so the remaining four digits are only checked against current
    divisions when ``strict_region`` is set; use that for numbers being issued now.

    ``today`` bounds the birth date (default: the current date).
    """
    if not isinstance(value, str):
        raise ValidationError(_CITIZEN_ID, "must be a string")
    number = value.strip().upper()
    if len(number) == 15 and number.isascii() and number.isdigit():
        raise ValidationError(
            _CITIZEN_ID, "15-digit legacy ID numbers are not accepted; give the 18-digit number"
        )
    if len(number) != 18:
        raise ValidationError(_CITIZEN_ID, f"must be 18 characters, got {len(number)}")
    if not _ID_FULL.fullmatch(number):
        raise ValidationError(
            _CITIZEN_ID, "first 17 characters must be digits and the last a digit or X"
        )
    region_code = number[:6]
    if not is_province_prefix(region_code[:2]):
        raise ValidationError(_CITIZEN_ID, "region code does not start with a province code")
    if strict_region and not is_region_code(region_code):
        raise ValidationError(_CITIZEN_ID, "region code is not a current administrative division")
    birth_date = _birth_date(number, today or dt.date.today())
    expected = citizen_id_check_digit(number[:17])
    if number[17] != expected:
        raise ValidationError(_CITIZEN_ID, f"check digit should be {expected}")
    gender: Literal["M", "F"] = "M" if int(number[16]) % 2 else "F"
    return CitizenId(number, region_code, birth_date, gender, number[17])


def is_citizen_id(value: str, *, strict_region: bool = False) -> bool:
    """Whether :func:`check_citizen_id` accepts ``value``."""
    try:
        check_citizen_id(value, strict_region=strict_region)
    except ValidationError:
        return False
    return True


# --------------------------------------------------------------------------------------
# Unified social credit code, GB 32100-2015 (with the GB 11714-1997 organisation code)
# --------------------------------------------------------------------------------------

_USCC = "uscc"
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
"""The 31 symbols of GB 32100: digits and capitals except I, O, S, V, Z."""

USCC_AUTHORITIES = "123456789ANY"
"""Registration authority codes (登记管理部门码), position 1."""

USCC_INSTITUTION_TYPES: Mapping[str, Mapping[str, str]] = {
    "1": {
        "1": "government organ",
        "2": "public institution",
        "3": "mass organisation",
        "9": "other",
    },
    "2": {"1": "resident foreign news agency", "9": "other"},
    "3": {
        "1": "law firm",
        "2": "notary office",
        "3": "grassroots legal service",
        "4": "forensic appraisal institution",
        "5": "arbitration commission",
        "9": "other",
    },
    "4": {"1": "foreign cultural centre", "9": "other"},
    "5": {
        "1": "social organisation",
        "2": "private non-enterprise unit",
        "3": "foundation",
        "9": "other",
    },
    "6": {
        "1": "foreign tourism office",
        "2": "Hong Kong, Macao or Taiwan tourism office",
        "9": "other",
    },
    "7": {"1": "religious venue", "2": "religious school", "9": "other"},
    "8": {"1": "grassroots trade union", "9": "other trade union"},
    "9": {"1": "enterprise", "2": "individual business", "3": "farmers' cooperative"},
    "A": {"1": "military public institution", "9": "other"},
    "N": {
        "1": "group collective",
        "2": "village collective",
        "3": "township collective",
        "9": "other",
    },
    "Y": {"1": "other"},
}
"""Institution type codes (机构类别码, position 2) by authority, as assigned under
GB 32100 (国发〔2015〕33号 scheme); authority 8 is the trade unions."""

_USCC_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
_USCC_VALUE = {char: index for index, char in enumerate(USCC_ALPHABET)}
_USCC_REGION = re.compile(r"[0-9]{6}")
_UNION_PREFIXES = ("81", "89")


def _org_value(char: str) -> int:
    # GB 11714 values letters by their place in the full Latin alphabet (A=10 … Z=35),
    # unlike GB 32100, which counts only its 31 symbols.
    return int(char, 36)


def _org_check(values: list[int]) -> str:
    check = 11 - sum(v * w for v, w in zip(values, _ORG_WEIGHTS, strict=True)) % 11
    return {10: "X", 11: "0"}.get(check, str(check))


def organization_code_check_char(body8: str) -> str:
    """The GB 11714 check character ('0'-'9' or 'X') of an 8-character organisation code."""
    if not (isinstance(body8, str) and len(body8) == 8 and all(c in _USCC_VALUE for c in body8)):
        raise ValidationError(_USCC, "organisation code body must be 8 characters of the alphabet")
    return _org_check([_org_value(char) for char in body8])


def uscc_check_char(first17: str) -> str:
    """The GB 32100 check character for the first 17 characters of a USCC."""
    if not (
        isinstance(first17, str) and len(first17) == 17 and all(c in _USCC_VALUE for c in first17)
    ):
        raise ValidationError(_USCC, "check character needs 17 characters of the alphabet")
    total = sum(
        _USCC_VALUE[char] * weight for char, weight in zip(first17, _USCC_WEIGHTS, strict=True)
    )
    return USCC_ALPHABET[-total % 31]


@dataclass(frozen=True, slots=True)
class Uscc:
    """The parts of a valid unified social credit code."""

    code: str
    authority: str
    institution_type: str
    region_code: str
    organization_code: str
    check_char: str

    @property
    def is_union(self) -> bool:
        """Registered by a trade union (authority 8, type 1 grassroots or 9 other)."""
        return self.code.startswith(_UNION_PREFIXES)


def check_uscc(value: str, *, strict_type: bool = False) -> Uscc:
    """Validate an 18-character unified social credit code (GB 32100-2015).

    Checks the alphabet, the authority code (1-9, A, N, Y), the institution type (a digit;
    with ``strict_type`` it must be one listed in :data:`USCC_INSTITUTION_TYPES`), that the
    region part is six digits, the organisation code's own check character and the final
    check character. The region is not looked up: it is the registering authority's code
    at the time (100000 for national registrations) and may have been abolished since.
    Surrounding whitespace is ignored and lower case accepted.
    """
    if not isinstance(value, str):
        raise ValidationError(_USCC, "must be a string")
    code = value.strip().upper()
    if len(code) != 18:
        raise ValidationError(_USCC, f"must be 18 characters, got {len(code)}")
    if any(char not in _USCC_VALUE for char in code):
        raise ValidationError(
            _USCC, "may only contain digits and capital letters other than I, O, S, V, Z"
        )
    authority, kind = code[0], code[1]
    if authority not in USCC_AUTHORITIES:
        raise ValidationError(_USCC, "registration authority code must be 1-9, A, N or Y")
    if not ("1" <= kind <= "9"):
        raise ValidationError(_USCC, "institution type code must be a digit 1-9")
    if strict_type and kind not in USCC_INSTITUTION_TYPES[authority]:
        raise ValidationError(
            _USCC, f"institution type {kind} is not defined for authority {authority}"
        )
    if not _USCC_REGION.fullmatch(code[2:8]):
        raise ValidationError(_USCC, "region code (positions 3-8) must be 6 digits")
    org_expected = organization_code_check_char(code[8:16])
    if code[16] != org_expected:
        raise ValidationError(_USCC, f"organisation code check character should be {org_expected}")
    expected = uscc_check_char(code[:17])
    if code[17] != expected:
        raise ValidationError(_USCC, f"check character should be {expected}")
    return Uscc(code, authority, kind, code[2:8], code[8:17], code[17])


def is_uscc(value: str) -> bool:
    """Whether :func:`check_uscc` accepts ``value``."""
    try:
        check_uscc(value)
    except ValidationError:
        return False
    return True


def is_union_code(value: str) -> bool:
    """Whether ``value`` is a valid USCC issued to a trade union (starts 81 or 89)."""
    try:
        return check_uscc(value).is_union
    except ValidationError:
        return False


def make_uscc(authority: str, kind: str, region6: str, org8: str) -> str:
    """Build a valid USCC from its parts, computing both check characters.

    ``org8`` is the organisation code body without its check character.
    """
    body = f"{authority}{kind}{region6}{org8}".upper()
    if len(body) != 16:
        raise ValidationError(_USCC, "parts must have 1, 1, 6 and 8 characters")
    with_org = body + organization_code_check_char(body[8:16])
    return check_uscc(with_org + uscc_check_char(with_org)).code


# Code point -> value lookups for the vectorised builder; -1 marks characters outside
# the alphabet.
_ASCII = 128
_LUT_USCC = np.full(_ASCII, -1, dtype=np.int64)
_LUT_ORG = np.full(_ASCII, -1, dtype=np.int64)
for _char, _value in _USCC_VALUE.items():
    _LUT_USCC[ord(_char)] = _value
    _LUT_ORG[ord(_char)] = _org_value(_char)
_LUT_AUTHORITY = np.zeros(_ASCII, dtype=bool)
_LUT_AUTHORITY[[ord(c) for c in USCC_AUTHORITIES]] = True
# Organisation check value c in 1..11 -> its character (index 0 never occurs).
_ORG_CHECK_POINTS = np.array([ord(c) for c in "0123456789X0"], dtype=np.uint32)
_USCC_POINTS = np.array([ord(c) for c in USCC_ALPHABET], dtype=np.uint32)


def _first_bad_row(mask: npt.NDArray[np.bool_] | np.bool_) -> int:
    return int(np.flatnonzero(mask)[0])


def make_usccs(prefixes: npt.ArrayLike) -> npt.NDArray[np.str_]:
    """Vectorised :func:`make_uscc`: complete N 16-character prefixes into N valid codes.

    Each prefix is authority + institution type + 6-digit region + 8-character
    organisation code body (e.g. ``"81" "140105" "MA0X1234"``). Returns an (N,) array of
    18-character strings. Raises :class:`ValidationError` naming the first bad row.
    """
    raw = np.asarray(prefixes, dtype=np.str_).reshape(-1)
    if raw.size == 0:
        return np.empty(0, dtype="<U18")
    lengths = np.char.str_len(raw)
    if np.any(lengths != 16):
        bad = _first_bad_row(lengths != 16)
        raise ValidationError(_USCC, f"row {bad}: prefix must have 16 characters")
    points = np.ascontiguousarray(raw.astype("<U16")).view(np.uint32).reshape(-1, 16)
    # Upper-case ASCII letters; anything outside ASCII maps to NUL, which is invalid.
    points = np.where((points >= ord("a")) & (points <= ord("z")), points - 32, points)
    points = np.where(points < _ASCII, points, 0)
    values = _LUT_USCC[points]
    checks: list[tuple[npt.NDArray[np.bool_] | np.bool_, str]] = [
        ((values < 0).any(axis=1), "characters outside the alphabet"),
        (~_LUT_AUTHORITY[points[:, 0]], "registration authority code must be 1-9, A, N or Y"),
        ((values[:, 1] < 1) | (values[:, 1] > 9), "institution type code must be a digit 1-9"),
        ((values[:, 2:8] > 9).any(axis=1), "region code must be 6 digits"),
    ]
    for mask, reason in checks:
        if mask.any():
            raise ValidationError(_USCC, f"row {_first_bad_row(mask)}: {reason}")
    org_totals = _LUT_ORG[points[:, 8:16]] @ np.asarray(_ORG_WEIGHTS, dtype=np.int64)
    org_points = _ORG_CHECK_POINTS[11 - org_totals % 11]
    full = np.empty((raw.size, 18), dtype=np.uint32)
    full[:, :16] = points
    full[:, 16] = org_points
    totals = values @ np.asarray(_USCC_WEIGHTS[:16], dtype=np.int64)
    totals += _LUT_USCC[org_points] * _USCC_WEIGHTS[16]
    full[:, 17] = _USCC_POINTS[-totals % 31]
    return full.view("<U18").reshape(-1)


# --------------------------------------------------------------------------------------
# Mainland mobile numbers
# --------------------------------------------------------------------------------------

_MOBILE = "mobile"
_MOBILE_SEPARATORS = re.compile(r"[\s\-]")
_MOBILE_COUNTRY = re.compile(r"^(?:\+86|0086|86)(?=[0-9]{11}$)")


def _expand(*parts: int | tuple[int, int]) -> tuple[str, ...]:
    prefixes: list[str] = []
    for part in parts:
        low, high = part if isinstance(part, tuple) else (part, part)
        prefixes.extend(str(n) for n in range(low, high + 1))
    return tuple(prefixes)


MOBILE_PREFIXES_BY_OPERATOR: Mapping[str, tuple[str, ...]] = {
    "China Mobile": _expand(
        (134, 139), 147, (150, 152), (157, 159), 172, 178, (182, 184), 187, 188, 195, 197, 198
    ),
    "China Unicom": _expand((130, 132), 145, 155, 156, 166, 175, 176, 185, 186, 196),
    "China Telecom": _expand(133, 149, 153, 173, 177, 180, 181, 189, 190, 191, 193, 199),
}
"""Three-digit number blocks of the three national operators (for generated data)."""

MOBILE_PREFIXES: tuple[str, ...] = tuple(
    sorted(p for group in MOBILE_PREFIXES_BY_OPERATOR.values() for p in group)
)


def check_mobile(value: str) -> str:
    """Validate a mainland mobile number and return its 11 digits.

    Spaces and hyphens are ignored and a +86, 0086 or 86 country prefix is removed.
    The number must then be 11 digits, start with 1 and have 3-9 as its second digit;
    the block is not checked against :data:`MOBILE_PREFIXES`, since new blocks open.
    """
    if not isinstance(value, str):
        raise ValidationError(_MOBILE, "must be a string")
    number = _MOBILE_COUNTRY.sub("", _MOBILE_SEPARATORS.sub("", value), count=1)
    if number and not (number.isascii() and number.isdigit()):
        raise ValidationError(_MOBILE, "must contain only digits, optionally after +86")
    if len(number) != 11:
        raise ValidationError(_MOBILE, f"must be 11 digits, got {len(number)}")
    if number[0] != "1":
        raise ValidationError(_MOBILE, "must start with 1")
    if number[1] < "3":
        raise ValidationError(_MOBILE, "second digit must be 3-9")
    return number


def is_mobile(value: str) -> bool:
    """Whether :func:`check_mobile` accepts ``value``."""
    try:
        check_mobile(value)
    except ValidationError:
        return False
    return True
