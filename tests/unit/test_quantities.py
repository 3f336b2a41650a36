"""Kubernetes quantities: the cases of apimachinery's quantity_test.go, plus comparisons."""

from __future__ import annotations

from decimal import Decimal

import pytest

from flyteadmin.core.quantities import (
    FORMAT_WRONG,
    NUMERIC,
    SUFFIX,
    Format,
    QuantityError,
    parse_quantity,
)

DEC, BIN, EXP = Format.DECIMAL_SI, Format.BINARY_SI, Format.DECIMAL_EXPONENT


@pytest.mark.parametrize(
    "text, value, fmt, shown",
    [
        ("0", "0", DEC, "0"),
        ("0n", "0", DEC, "0"),
        ("0Ki", "0", BIN, "0"),
        ("1", "1", DEC, "1"),
        ("1Ki", "1024", BIN, "1Ki"),
        ("7Mi", str(7 * 2**20), BIN, "7Mi"),
        ("3Ei", str(3 * 2**60), BIN, "3Ei"),
        ("1024Mi", str(2**30), BIN, "1Gi"),
        ("5n", "0.000000005", DEC, "5n"),
        ("4u", "0.000004", DEC, "4u"),
        ("3m", "0.003", DEC, "3m"),
        ("50k", "50000", DEC, "50k"),
        ("1000M", "1e9", DEC, "1G"),
        ("1E", "1e18", DEC, "1E"),
        ("12E", "12e18", DEC, "12E"),
        ("1e3", "1000", EXP, "1e3"),
        ("1E-3", "0.001", EXP, "1E-3"),
        ("10e2", "1000", EXP, "1e3"),
        ("1.2e3", "1200", EXP, "1200"),
        ("1.3E+6", "1300000", EXP, "1300e3"),
        ("0.5e-1", "0.05", EXP, "50e-3"),
        ("1.5", "1.5", DEC, "1500m"),
        ("0.5", "0.5", DEC, "500m"),
        (".5", "0.5", DEC, "500m"),
        ("1.", "1", DEC, "1."),  # k8s keeps input it deems canonical
        ("1.G", "1e9", DEC, "1.G"),
        (".0001k", "0.1", DEC, "100m"),
        ("100.035k", "100035", DEC, "100.035k"),
        ("100.0350k", "100035", DEC, "100035"),
        ("+1", "1", DEC, "+1"),
        ("-1.5", "-1.5", DEC, "-1500m"),
        ("1.5Gi", str(3 * 2**29), BIN, "1536Mi"),
        ("0.5Mi", str(2**19), BIN, "512Ki"),
        (".001Ki", "1.024", BIN, "1024m"),
        (".000001Ki", "0.001024", DEC, "1024u"),
        # rounded up to 1n, away from zero
        ("3.001n", "0.000000004", DEC, "4n"),
        ("1.1E-9", "0.000000002", EXP, "2e-9"),
        ("0.0000000001", "0.000000001", DEC, "1n"),
        ("-0.0000000001", "-0.000000001", DEC, "-1n"),
        (".000000000001Ki", "0.000000002", DEC, "2n"),
        # binary values are capped at 2^63-1; decimal ones are not
        ("9Ei", str(2**63 - 1), BIN, str(2**63 - 1)),
        ("9223372036854775807Ki", str(2**63 - 1), BIN, str(2**63 - 1)),
        ("20E", "2e19", DEC, "20E"),
        # k8s reads a lone sign, point or suffix as zero
        (".", "0", DEC, "0"),
        ("+", "0", DEC, "0"),
        ("-", "0", DEC, "0"),
        ("k", "0", DEC, "0"),
        ("Ti", "0", BIN, "0"),
    ],
)
def test_parse(text, value, fmt, shown):
    quantity = parse_quantity(text)
    assert quantity.value == Decimal(value)
    assert quantity.format is fmt
    assert str(quantity) == shown


@pytest.mark.parametrize(
    "text, message",
    [
        ("", FORMAT_WRONG),
        ("1.1.M", FORMAT_WRONG),
        ("1+1.0M", FORMAT_WRONG),
        ("0.1am", FORMAT_WRONG),
        ("aoeu", FORMAT_WRONG),
        (" 1", FORMAT_WRONG),
        ("1 ", FORMAT_WRONG),
        ("1KiB", FORMAT_WRONG),
        ("0.1mi", SUFFIX),
        (".5i", SUFFIX),
        ("1i", SUFFIX),
        ("1K", SUFFIX),
        ("1e", SUFFIX),
        ("-3.01e-", SUFFIX),
        ("1Mi1", SUFFIX),
        # no digits, on k8s's slow path
        ("Ei", NUMERIC),
        (".e-10", NUMERIC),
    ],
)
def test_parse_rejects(text, message):
    with pytest.raises(QuantityError) as caught:
        parse_quantity(text)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    "smaller, larger",
    [
        ("999m", "1"),
        ("1G", "1Gi"),
        ("1Mi", "1.1M"),
        ("200Mi", "1Gi"),
        ("2", "2001m"),
        ("-1", "0"),
        ("1n", "0.0000000011"),
        ("1E", "1e19"),
    ],
)
def test_ordering(smaller, larger):
    a, b = parse_quantity(smaller), parse_quantity(larger)
    assert a < b and b > a and a != b and not b <= a


@pytest.mark.parametrize(
    "left, right",
    [("1000m", "1"), ("1Ki", "1024"), ("1e3", "1k"), ("0.5Gi", "512Mi"), ("0", "0Mi"), (".", "k")],
)
def test_equal_values_are_equal_quantities(left, right):
    a, b = parse_quantity(left), parse_quantity(right)
    assert a == b and hash(a) == hash(b) and a <= b and a >= b


@pytest.mark.parametrize(
    "text, whole",
    [("1", True), ("1000m", True), ("2e3", True), ("1Ki", True), ("0", True)]
    + [("1500m", False), ("1.9999", False), ("1n", False), ("0.5", False)],
)
def test_is_whole(text, whole):
    assert parse_quantity(text).is_whole() is whole


@pytest.mark.parametrize(
    "text, number, relation",
    [("1Ki", 1024, "=="), ("1Ki", 1025, "<"), ("1k", 999, ">"), ("1500m", 1, ">"), ("1", 1, "==")],
)
def test_compares_with_plain_numbers(text, number, relation):
    quantity = parse_quantity(text)
    results = {"==": quantity == number, "<": quantity < number, ">": quantity > number}
    assert [r for r, holds in results.items() if holds] == [relation]
    assert (number > quantity) == (relation == "<")  # reflected, as for a byte count
