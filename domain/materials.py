"""Embodied carbon of the works' materials, reuse and biogenic carbon.

Product factors come from EPDs (FDES in France, INIES database). A reused product
(réemploi) carries no manufacturing impact: its ``factor_kgco2e_per_unit`` is 0 or its
transport only, and ``new_factor_kgco2e_per_unit`` holds the same product bought new,
for the comparison. Biogenic carbon stored in bio-sourced materials is reported
separately, never subtracted from the embodied total.

Pure functions over explicit arguments; no I/O.
Nomenclature: ``*_kg`` masses of CO2 equivalent in kg.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

MaterialUnit = Literal["kg", "t", "m", "m2", "m3", "unit"]

_Text = Annotated[str, Field(min_length=1)]
_NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class Material(BaseModel):
    """One material or product of the works, with its carbon factors.

    Parameters
    ----------
    name, category : str
        What it is, and its family (structure, insulation, finishing…).
    quantity : float
        Installed quantity [``unit``], > 0.
    unit : {"kg", "t", "m", "m2", "m3", "unit"}
        Functional unit of the quantity and of the factors.
    factor_kgco2e_per_unit : float
        Embodied carbon as installed [kgCO2e/unit], ≥ 0: 0 or transport only for a
        reused product.
    new_factor_kgco2e_per_unit : float or None
        The same product bought new [kgCO2e/unit], ≥ 0, for the reuse comparison;
        only for a reused product.
    reused : bool
        Réemploi: a product reused rather than bought new.
    biogenic_kgco2e_per_unit : float
        Biogenic carbon stored [kgCO2e/unit], ≥ 0 (positive = stored).
    source : str
        EPD/FDES reference (INIES id, database and year) of the factors.
    """

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid", str_strip_whitespace=True)

    name: _Text
    category: _Text
    quantity: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    unit: MaterialUnit
    factor_kgco2e_per_unit: _NonNegative
    new_factor_kgco2e_per_unit: _NonNegative | None = None
    reused: bool
    biogenic_kgco2e_per_unit: _NonNegative = 0.0
    source: _Text

    @model_validator(mode="after")
    def _new_factor_for_reuse_only(self) -> Self:
        new = self.new_factor_kgco2e_per_unit
        if not self.reused and new is not None and new != self.factor_kgco2e_per_unit:
            raise ValueError(
                "new_factor_kgco2e_per_unit applies to a reused product; a new product's "
                "factor is factor_kgco2e_per_unit"
            )
        return self


@dataclass(frozen=True)
class Embodied:
    """Embodied carbon of a set of materials [kgCO2e].

    Parameters
    ----------
    total_kg : float
        Σ quantity × factor, as installed [kgCO2e].
    amortised_kg : float
        The period's share: total × period_years / study_period_years [kgCO2e].
    biogenic_stored_kg : float
        Σ quantity × biogenic factor [kgCO2e], stored, reported separately.
    if_new_kg : float
        Σ quantity × (new factor, else factor): had everything been bought new [kgCO2e].
        A reused product without a new factor counts as installed: the comparison
        covers only the reused products with one.
    avoided_by_reuse_kg : float
        if_new − total [kgCO2e], over the reused products with a new factor.
    reused_without_new_factor : tuple of str
        Names of the reused products lacking ``new_factor_kgco2e_per_unit``: their
        avoided carbon is unknown (not 0), left out of ``avoided_by_reuse_kg``.
    """

    total_kg: float
    amortised_kg: float
    biogenic_stored_kg: float
    if_new_kg: float
    avoided_by_reuse_kg: float
    reused_without_new_factor: tuple[str, ...] = ()


def embodied(
    materials: Iterable[Material], study_period_years: float, period_years: float
) -> Embodied:
    """Embodied carbon of ``materials`` and the share of a period of ``period_years``.

    The total is spread evenly over the study period (RE2020: 50 years), so the
    shares of consecutive periods covering the study period add up to the total.

    Raises
    ------
    ValueError
        On a study period ≤ 0 or a period < 0.
    """
    if not (math.isfinite(study_period_years) and study_period_years > 0):
        raise ValueError(f"study_period_years must be > 0, got {study_period_years!r}")
    if not (math.isfinite(period_years) and period_years >= 0):
        raise ValueError(f"period_years must be ≥ 0, got {period_years!r}")
    items = list(materials)
    total = math.fsum(m.quantity * m.factor_kgco2e_per_unit for m in items)
    if_new = math.fsum(
        m.quantity
        * (
            m.new_factor_kgco2e_per_unit
            if m.new_factor_kgco2e_per_unit is not None
            else m.factor_kgco2e_per_unit
        )
        for m in items
    )
    return Embodied(
        total_kg=total,
        amortised_kg=total * period_years / study_period_years,
        biogenic_stored_kg=math.fsum(m.quantity * m.biogenic_kgco2e_per_unit for m in items),
        if_new_kg=if_new,
        avoided_by_reuse_kg=if_new - total,
        reused_without_new_factor=tuple(
            m.name for m in items if m.reused and m.new_factor_kgco2e_per_unit is None
        ),
    )


# ---------------------------------------------------------------- CSV

MATERIAL_COLUMNS = (
    "name",
    "category",
    "quantity",
    "unit",
    "factor_kgco2e_per_unit",
    "new_factor_kgco2e_per_unit",
    "reused",
    "biogenic_kgco2e_per_unit",
    "source",
)

_TRUE = frozenset({"true", "yes", "1", "oui", "vrai", "y", "o"})
_FALSE = frozenset({"false", "no", "0", "non", "faux", "n"})


def parse_number(text: str) -> float:
    """A finite number from a CSV cell; a decimal comma and spaces as thousands
    separators are accepted (``1 234,5``).

    Raises
    ------
    ValueError
        When the cell is not a finite number.
    """
    cleaned = text.strip()
    for space in (" ", "\u00a0", "\u202f"):
        cleaned = cleaned.replace(space, "")
    if "," in cleaned and "." not in cleaned and cleaned.count(",") == 1:
        cleaned = cleaned.replace(",", ".")
    try:
        value = float(cleaned)
    except ValueError:
        raise ValueError(f"not a number: {text.strip()!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {text.strip()!r}")
    return value


def _parse_bool(text: str) -> bool:
    word = text.strip().casefold()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError(f"expected true or false, got {text.strip()!r}")


def _optional_number(text: str) -> float | None:
    return None if not text.strip() else parse_number(text)


def _number_or_zero(text: str) -> float:
    return 0.0 if not text.strip() else parse_number(text)


_CONVERT: dict[str, Callable[[str], object]] = {
    "quantity": parse_number,
    "factor_kgco2e_per_unit": parse_number,
    "new_factor_kgco2e_per_unit": _optional_number,
    "reused": _parse_bool,
    "biogenic_kgco2e_per_unit": _number_or_zero,
}


def sniff_separator(header: str, candidates: str = ";,") -> str:
    """The separator of a CSV: the candidate appearing most in its header line."""
    return max(candidates, key=header.count)


def _lines_after_bom(text: str) -> list[str]:
    # A byte-order mark is never data: drop it wherever a concatenation left it.
    return text.replace("\ufeff", "").splitlines()


def parse_materials_csv(text: str) -> list[Material]:
    """Materials from a ``;`` or ``,`` separated CSV with a header row.

    Columns (any order): ``name, category, quantity, unit, factor_kgco2e_per_unit,
    new_factor_kgco2e_per_unit, reused, biogenic_kgco2e_per_unit, source``.
    Empty ``new_factor_kgco2e_per_unit`` means none, empty ``biogenic_kgco2e_per_unit``
    means 0; ``reused`` is true/false (yes/no, 1/0, oui/non); numbers may use a decimal
    comma. Blank lines, a byte-order mark and a trailing separator are tolerated.

    Raises
    ------
    ValueError
        Listing the first :data:`MAX_REPORTED_PROBLEMS` bad rows as ``line N: field:
        reason``, then a count of the rest; nothing is returned half-parsed.
    """
    lines = _lines_after_bom(text)
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        raise ValueError("empty materials file: a header row is expected")
    separator = sniff_separator(lines[first])
    rows = csv.reader(lines[first:], delimiter=separator)
    header = [h.strip().casefold() for h in next(rows)]
    while header and not header[-1]:
        header.pop()  # trailing separator
    header_line = first + 1
    unknown = [h or "(empty)" for h in header if h not in MATERIAL_COLUMNS]
    missing = [c for c in MATERIAL_COLUMNS if c not in header]
    duplicated = sorted({h for h in header if header.count(h) > 1})
    problems = []
    if unknown:
        problems.append(f"unknown column(s) {', '.join(unknown)}")
    if missing:
        problems.append(f"missing column(s) {', '.join(missing)}")
    if duplicated:
        problems.append(f"duplicated column(s) {', '.join(duplicated)}")
    if problems:
        raise ValueError(f"line {header_line}: header: {'; '.join(problems)}")

    materials: list[Material] = []
    errors: list[str] = []
    consumed = rows.line_num
    for cells in rows:
        line = first + consumed + 1  # the row's first physical line, 1-based
        consumed = rows.line_num
        if not any(c.strip() for c in cells):
            continue
        extra = cells[len(header) :]
        if any(c.strip() for c in extra):
            errors.append(f"line {line}: row: {len(cells)} fields, the header has {len(header)}")
            continue
        if len(cells) < len(header):
            absent = ", ".join(header[len(cells) :])
            errors.append(f"line {line}: {absent}: missing field(s)")
            continue
        values: dict[str, object] = {}
        row_errors = []
        for column, cell in zip(header, cells, strict=False):
            convert = _CONVERT.get(column)
            if convert is None:
                values[column] = cell
                continue
            try:
                values[column] = convert(cell)
            except ValueError as exc:
                row_errors.append(f"line {line}: {column}: {exc}")
        if row_errors:
            errors.extend(row_errors)
            continue
        try:
            materials.append(Material.model_validate(values))
        except ValidationError as exc:
            for err in exc.errors():
                msg = err["msg"].removeprefix("Value error, ")
                if err["loc"]:
                    field = ".".join(str(p) for p in err["loc"])
                    errors.append(f"line {line}: {field}: {msg} (got {err['input']!r})")
                else:
                    errors.append(f"line {line}: row: {msg}")
    if errors:
        raise ValueError("invalid materials file:\n" + "\n".join(_first_problems(errors)))
    return materials


#: Problems a message lists; the rest are counted (a file of 10,000 bad rows must not
#: make a message of 10,000 lines).
MAX_REPORTED_PROBLEMS = 20


def _first_problems(problems: list[str]) -> list[str]:
    shown = problems[:MAX_REPORTED_PROBLEMS]
    rest = len(problems) - len(shown)
    return [*shown, f"… and {rest} more problem(s) ({len(problems)} in all)"] if rest else shown
