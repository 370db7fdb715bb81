"""What must not appear in a public rendering, and the search for it: numbers in every
common rendering, the labels of hidden ratings, and what a reader can infer from the
levels that are shown. Written apart from :mod:`dsarisk.confidentiality`, so that a
mistake there is not repeated here."""

from __future__ import annotations

import base64
import re
import zlib
from functools import cache
from itertools import product
from pathlib import Path

from dsarisk.assess import ModuleAssessment, assess_year
from dsarisk.confidentiality import leaves
from dsarisk.inputs import load_year
from dsarisk.plots import inherent_grid, residual_grid
from dsarisk.values import Value


def secret_numbers(assessment: ModuleAssessment) -> set[float]:
    """The module's confidential values, every value derived from one, and every number that
    fixes a confidential rating (the basis proxy's counts fix the probability band)."""
    item = assessment.inputs
    derived = leaves(item)
    derived += [proxy.rate_value() for proxy in item.probability.proxies]
    derived += [f.value * 100 / f.denominator for factor in item.factors for f in factor.figures
                if f.denominator is not None]
    derived += [part for finding in assessment.findings for part in finding.parts if isinstance(part, Value)]
    derived += [assessment.rate, assessment.effectiveness_pct]
    if "effectiveness" in item.confidential_ratings:
        derived += [Value(pct, True) for pct in assessment.by_area.values()]
    if assessment.severity_confidential:
        derived += [Value(assessment.severity.raw or 0, True)]
    if "probability" in item.confidential_ratings:
        basis = item.probability.basis_proxy
        derived += [Value(v.value, True) for v in (basis.incidents, basis.volume, basis.rate_value()) if v]
    return {v.value for v in derived if v.confidential}


def written_numbers(assessment: ModuleAssessment) -> set[float]:
    """Numbers the analyst wrote in the module's text ("400 brands added"): printed as written,
    they are not the workbook's to hide (a known limit: text is not parsed for figures)."""
    found = re.findall(r"(?<![\w.,-])\d[\d,]*(?:\.\d+)?(?![\w-])", " ".join(leaves(assessment.inputs, str)))
    return {float(number.replace(",", "")) for number in found}


def confidential_numbers(data_dir: Path, year: int) -> set[float]:
    """:func:`secret_numbers` of every module of the year."""
    return {n for a in assess_year(load_year(year, data_dir=data_dir)).values() for n in secret_numbers(a)}


def hidden_labels(assessment: ModuleAssessment) -> set[str]:
    """Labels that the module's own text must not hold: the maturity answers and the band
    labels of its confidential ratings (labels no other rating of the module uses)."""
    method, hidden = assessment.methodology, set(assessment.inputs.confidential_ratings)
    labels: set[str] = set()
    if "effectiveness" in hidden:
        labels |= {m.label for m in method.maturity} | set(method.effectiveness.labels)
    if "probability" in hidden:
        labels |= set(method.probability_scale(assessment.module).labels)
    return labels


def renderings(number: float) -> set[str]:
    """The ways a number can be written: digits, thousands separators, rounded decimals,
    decimal commas, scientific notation; short ones ("78") only as a percentage ("78 %")."""
    forms = {repr(number), f"{number:g}"}
    if float(number).is_integer():
        whole = f"{int(number):,}"
        forms |= {str(int(number))} | {whole.replace(",", sep) for sep in (",", ".", " ", "\u2009", "\u202f", "\xa0")}
    for decimals in range(4):
        fixed = f"{number:.{decimals}f}"
        forms |= {fixed, fixed.replace(".", ","), f"{number:,.{decimals}f}"}
    for decimals in range(4):
        scientific = f"{number:.{decimals}e}"
        mantissa, exponent = scientific.split("e")
        forms |= {scientific, scientific.upper(), f"{mantissa}e{int(exponent)}", f"{mantissa}×10^{int(exponent)}"}
    # a bare rendering with fewer than three digits ("0.7", "34") is too common to prove a leak;
    # as a percentage it is not
    long = {form for form in forms if sum(ch.isdigit() for ch in form) >= 3}
    short = {form + sign for form in forms - long if any(ch in "123456789" for ch in form)
             for sign in (" %", "%", "\u202f%", "\xa0%")}
    return long | short


@cache
def _pattern(numbers: frozenset[float]) -> re.Pattern[str]:
    forms = sorted({form for number in numbers for form in renderings(number)}, key=len, reverse=True)
    return re.compile(r"(?<![\d.,])(?:" + "|".join(map(re.escape, forms)) + r")(?![\d]|[.,]\d)")


def number_hits(text: str, numbers: set[float], *, where: str = "") -> list[str]:
    """Every rendering of ``numbers`` in ``text``, with its context."""
    if not numbers:
        return []
    return [f"{where}: '{m.group()}' in ...{text[max(0, m.start() - 60):m.end() + 20]!r}"
            for m in _pattern(frozenset(numbers)).finditer(text)]


def label_hits(text: str, labels: set[str], *, where: str = "") -> list[str]:
    """Every whole-word occurrence of ``labels`` in ``text``."""
    return [f"{where}: label '{label}' in ...{text[max(0, m.start() - 60):m.end() + 20]!r}"
            for label in labels for m in re.finditer(r"(?<![\w-])" + re.escape(label) + r"(?![\w-])", text)]


def inferred(method, record: dict) -> dict[str, set[str]]:
    """What a reader of a public summary record can infer of each input rating: the levels
    consistent with the levels the record shows, read off the drawn risk matrices."""
    probability, severity = method.probability.labels, method.severity.labels
    effectiveness, inherent_levels = method.effectiveness.labels, method.inherent.labels
    inherent, residual = inherent_grid(method), residual_grid(method)
    shown = {"probability": record["probability"]["level"], "severity": record["severity"]["level"],
             "effectiveness": record["effectiveness"]["level"], "inherent": record["inherent"],
             "residual": record["residual"]}
    seen: dict[str, set[str]] = {"probability": set(), "severity": set(), "effectiveness": set()}
    for (i, p), (j, s), (k, e) in product(enumerate(probability), enumerate(severity), enumerate(effectiveness)):
        level = inherent[i][j]
        cell = {"probability": p, "severity": s, "effectiveness": e, "inherent": level,
                "residual": residual[k][inherent_levels.index(level)]}
        if all(shown[r] is None or shown[r] == cell[r] for r in cell):
            for rating in seen:
                seen[rating].add(cell[rating])
    return seen


_STYLE = re.compile(r"<style[^>]*>.*?</style>", re.DOTALL)
_IMAGE = re.compile(r"(data:image/png;base64,|\"image/png\":\s*\")([A-Za-z0-9+/=\\n]+)")


def _png_text(payload: str) -> str:
    """The text chunks (tEXt, zTXt, iTXt) of a base64 PNG: where a chart could carry a number."""
    data = base64.b64decode(payload.replace("\\n", ""))
    texts, position = [], 8
    while position + 8 <= len(data):
        length = int.from_bytes(data[position:position + 4], "big")
        kind = data[position + 4:position + 8]
        body = data[position + 8:position + 8 + length]
        if kind == b"tEXt" or kind == b"iTXt":
            texts.append(body.decode("latin-1"))
        elif kind == b"zTXt":
            key, _, rest = body.partition(b"\0")
            texts.append(key.decode("latin-1") + zlib.decompress(rest[1:]).decode("latin-1"))
        position += 12 + length
    return "\n".join(texts)


_CELL_ID = re.compile(r'("id": "|cell-id=)[0-9a-f]{8}(?![0-9a-z-])')


def searchable_text(path: Path) -> str:
    """A file's text with image payloads replaced by the text inside the images, and without
    notebook cell ids: nbformat draws them at random (8 hex digits, in the notebooks and as
    ``cell-id=`` in the HTML), so ``100b59be`` once read as a hidden 100 in a run."""
    text = _CELL_ID.sub(r"\1", path.read_text(encoding="utf-8", errors="replace"))
    if path.suffix == ".html":
        # the stylesheet is the template's, the same in every build (a test checks it)
        text = _STYLE.sub("<style/>", text)
    return _IMAGE.sub(lambda m: m.group(1) + _png_text(m.group(2)), text)


def leaks(folder: Path, numbers: set[float]) -> list[str]:
    """Every rendering of ``numbers`` in every file under ``folder``."""
    return [hit for path in sorted(p for p in folder.rglob("*") if p.is_file())
            for hit in number_hits(searchable_text(path), numbers, where=str(path.relative_to(folder)))]
