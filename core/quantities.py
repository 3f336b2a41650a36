"""Kubernetes resource quantities, parsed exactly as ``resource.ParseQuantity`` does.

Task resource checks compare what users write (``500m``, ``1.5Gi``, ``1e3``) with platform limits,
and flyteadmin reports both sides with the quantity's k8s ``String()``. So this module keeps k8s's
grammar and its quirks: a bare sign, ``.`` or a suffix alone (``k``, ``+``) is zero; negative values
parse (the API server rejects them later, not the parser); values finer than 1n are rounded up
away from zero to 1n; binary values are capped at 2^63-1; decimal ones are not capped.

Values are exact ``Decimal``s and comparisons are exact (``1000m == 1``, ``1Gi > 1G``).
"""

from __future__ import annotations

import enum
import functools
import re
from dataclasses import dataclass
from decimal import Decimal

FORMAT_WRONG = (
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
)
NUMERIC = "unable to parse numeric part of quantity"
SUFFIX = "unable to parse quantity's suffix"

_MAX_INT64 = (1 << 63) - 1
_MAX_INT64_FACTORS = 18  # decimal digits that always fit an int64 (k8s's fast path)
_NANO = -9
_MAX_DIGITS = 1000
_SUFFIX_CHARS = frozenset("eEinumkKMGTP")
_DIGITS = frozenset("0123456789")
_INT64_TEXT = re.compile(r"[+-]?[0-9]+")

_DECIMAL_SUFFIXES = {
    "n": -9,
    "u": -6,
    "m": -3,
    "": 0,
    "k": 3,
    "M": 6,
    "G": 9,
    "T": 12,
    "P": 15,
    "E": 18,
}
_BINARY_SUFFIXES = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL_BY_EXPONENT = {e: s for s, e in _DECIMAL_SUFFIXES.items()}
_BINARY_BY_EXPONENT = {e: s for s, e in _BINARY_SUFFIXES.items()}


class QuantityError(ValueError):
    """The text is not a quantity; the message is k8s's own."""


class Format(enum.Enum):
    DECIMAL_SI = "DecimalSI"
    BINARY_SI = "BinarySI"
    DECIMAL_EXPONENT = "DecimalExponent"


@functools.total_ordering
@dataclass(frozen=True, eq=False)
class Quantity:
    value: Decimal
    format: Format
    text: str = ""
    """The input, when k8s keeps it as the string form (it was already canonical)."""

    def __eq__(self, other: object) -> bool:
        value = _comparable(other)
        return NotImplemented if value is None else self.value == value

    def __lt__(self, other: object) -> bool:
        value = _comparable(other)
        return NotImplemented if value is None else self.value < value

    def __gt__(self, other: object) -> bool:  # also serves ``int < Quantity``
        value = _comparable(other)
        return NotImplemented if value is None else self.value > value

    def __hash__(self) -> int:
        return hash(self.value)

    def is_whole(self) -> bool:
        return self.value == self.value.to_integral_value()

    def is_zero(self) -> bool:
        return self.value == 0

    def __str__(self) -> str:
        return self.text or _canonical(self.value, self.format)


def _comparable(other: object) -> Decimal | None:
    """Quantities compare with each other and with plain numbers (a byte count, say)."""
    if isinstance(other, Quantity):
        return other.value
    if isinstance(other, int | Decimal) and not isinstance(other, bool):
        return Decimal(other)
    return None


def parse_quantity(text: str) -> Quantity:
    """``resource.ParseQuantity``: raises ``QuantityError`` with k8s's message."""
    if not text:
        raise QuantityError(FORMAT_WRONG)
    if text == "0":
        return Quantity(Decimal(0), Format.DECIMAL_SI, "0")
    positive, value, num, denom, suffix = _scan(text)
    base, exponent, fmt = _interpret(suffix)
    digits = num + denom
    if len(digits) > _MAX_DIGITS:  # k8s would take it, Python's int() would not; no one means it
        raise QuantityError(NUMERIC)
    magnitude = int(digits) * (1 << exponent if base == 2 else 1)
    scale = (exponent if base == 10 else 0) - len(denom)

    # k8s takes an exact int64 path when the digits surely fit; only that path may keep the
    # input as the string form, and only the other path fails on a number without digits.
    if base == 10:
        precision = _MAX_INT64_FACTORS - len(digits)
    else:
        precision = 15 - len(num) - int(exponent * 3 / 10) - 1 if not denom else -1
    if precision >= 0 and scale >= _NANO and magnitude <= _MAX_INT64:
        kept = _kept_text(text, fmt, exponent, scale, digits)
        return Quantity(_decimal(magnitude if positive else -magnitude, scale), fmt, kept)
    if not any(c in _DIGITS for c in value):
        raise QuantityError(NUMERIC)

    if magnitude and scale < _NANO:
        magnitude, scale = _round_up_to_nano(magnitude, scale), _NANO
    result = _decimal(magnitude, scale)
    if fmt is Format.BINARY_SI and result > _MAX_INT64:
        result = Decimal(_MAX_INT64)
    if fmt is Format.BINARY_SI and 0 < result < 1:
        fmt = Format.DECIMAL_SI
    return Quantity(result if positive else -result, fmt)


def _scan(text: str) -> tuple[bool, str, str, str, str]:
    """Split into sign, numeric text, integer digits, fraction digits and suffix, like k8s."""
    end = len(text)
    pos = 0
    positive = True
    if text[0] in "+-":
        positive = text[0] == "+"
        pos = 1
    while pos < end and text[pos] == "0":
        pos += 1
    if pos >= end:
        return positive, "0", "0", "", ""
    start = pos
    while pos < end and text[pos] in _DIGITS:
        pos += 1
    num = text[start:pos] or "0"
    if pos >= end:
        return positive, text, num, "", ""
    denom = ""
    if text[pos] == ".":
        pos += 1
        start = pos
        while pos < end and text[pos] in _DIGITS:
            pos += 1
        denom = text[start:pos]
        if pos >= end:
            return positive, text, num, denom, ""
    value = text[:pos]
    suffix_start = pos
    while pos < end and text[pos] in _SUFFIX_CHARS:
        pos += 1
    if pos < end and text[pos] in "+-":
        pos += 1
    while pos < end and text[pos] in _DIGITS:
        pos += 1
    if pos < end:
        raise QuantityError(FORMAT_WRONG)
    return positive, value, num, denom, text[suffix_start:]


def _interpret(suffix: str) -> tuple[int, int, Format]:
    if suffix in _DECIMAL_SUFFIXES:
        return 10, _DECIMAL_SUFFIXES[suffix], Format.DECIMAL_SI
    if suffix in _BINARY_SUFFIXES:
        return 2, _BINARY_SUFFIXES[suffix], Format.BINARY_SI
    if len(suffix) > 1 and suffix[0] in "eE" and _INT64_TEXT.fullmatch(suffix[1:]):
        exponent = int(suffix[1:])
        if -_MAX_INT64 - 1 <= exponent <= _MAX_INT64:
            # Go keeps the exponent in an int32, wrapping around.
            return 10, (exponent + (1 << 31)) % (1 << 32) - (1 << 31), Format.DECIMAL_EXPONENT
    raise QuantityError(SUFFIX)


def _kept_text(text: str, fmt: Format, exponent: int, scale: int, digits: str) -> str:
    """k8s reuses the input as ``String()`` when it looks canonical (sign and all)."""
    if fmt is Format.BINARY_SI:
        keep = exponent % 10 == 0 and int(digits) & 7 != 0
    else:
        keep = scale % 3 == 0 and not digits.endswith("000") and digits[0] != "0"
    return text if keep else ""


def _decimal(coefficient: int, scale: int) -> Decimal:
    return Decimal(f"{coefficient}E{scale}")


def _round_up_to_nano(magnitude: int, scale: int) -> int:
    shift = _NANO - scale
    if len(str(magnitude)) <= shift:
        return 1
    unit: int = 10**shift
    quotient, remainder = divmod(magnitude, unit)
    return quotient + (1 if remainder else 0)


def _canonical(value: Decimal, fmt: Format) -> str:
    """k8s ``Quantity.String()``: no fraction digits, the largest suffix that loses nothing."""
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    if fmt is Format.BINARY_SI and abs(value) >= 1024 and value == value.to_integral_value():
        amount, times = abs(int(value)), 0
        while amount >= 1024 and amount % 1024 == 0:
            amount, times = amount // 1024, times + 1
        return f"{sign}{amount}{_BINARY_BY_EXPONENT.get(times * 10, '')}"
    _, digit_tuple, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    amount = int("".join(map(str, digit_tuple)))
    while amount and amount % 10 == 0:
        amount, exponent = amount // 10, exponent + 1
    amount, exponent = amount * 10 ** (exponent % 3), exponent - exponent % 3
    if fmt is Format.DECIMAL_EXPONENT:
        return f"{sign}{amount}" + (f"e{exponent}" if exponent else "")
    # k8s has no suffix beyond E (10^18) and then prints none; we keep its output.
    return f"{sign}{amount}{_DECIMAL_BY_EXPONENT.get(exponent, '')}"
