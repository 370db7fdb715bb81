"""Years generated for tests and benchmarks: any number of modules, judged inputs only, on a
methodology given as a mapping. Nothing here computes a rating: the tests do that on their own."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import yaml

HARMS = [
    "Hate speech", "Civic integrity", "Minor safety", "Gender-based violence", "Terrorist content",
    "Child sexual abuse material", "Non-consensual intimate imagery", "Self-harm and suicide", "Eating disorders",
    "Disinformation", "Election interference", "Public health misinformation", "Scams and fraud",
    "Counterfeit goods", "Unsafe products", "Illegal drugs", "Weapons", "Animal welfare", "Privacy violations",
    "Data protection", "Copyright infringement", "Trademark infringement", "Harassment", "Cyberstalking",
    "Doxxing", "Deceptive interface design", "Addictive design", "Right to an effective remedy",
    "Freedom of expression", "Freedom to conduct a business", "Consumer information", "Manipulated media",
]

THREE_BY_THREE: dict[str, Any] = {
    "name": "Three by three (generated)",
    "probability": {"levels": [{"label": "Improbable", "min": 0}, {"label": "Probable", "min": 1},
                               {"label": "Highly probable", "min": 10}]},
    "severity": {"levels": ["Low impact", "Moderate impact", "High impact"]},
    "inherent": {"method": "matrix", "levels": ["Low", "Medium", "High"],
                 "matrix": {"Improbable": ["Low", "Low", "Medium"], "Probable": ["Low", "Medium", "High"],
                            "Highly probable": ["Medium", "High", "High"]}},
    "maturity": [{"label": "Ad hoc", "credit": 0}, {"label": "Defined", "credit": 1}],
    "effectiveness": {"levels": [{"label": "Weak", "min": 0}, {"label": "Adequate", "min": 40},
                                 {"label": "Strong", "min": 75}]},
    "residual": {"method": "matrix", "levels": ["Low", "Medium", "High"],
                 "matrix": {"Weak": ["Low", "Medium", "High"], "Adequate": ["Low", "Low", "Medium"],
                            "Strong": ["Low", "Low", "Low"]}},
}

FOUR_BY_FOUR_PRODUCT: dict[str, Any] = {
    "name": "Four by four, product with control factor (generated)",
    "probability": {"levels": [{"label": "Rare", "min": 0}, {"label": "Unlikely", "min": 1},
                               {"label": "Likely", "min": 5}, {"label": "Almost certain", "min": 20}]},
    "severity": {"levels": ["Minor", "Moderate", "Major", "Critical"]},
    "inherent": {"method": "product", "levels": ["Low", "Medium", "High", "Critical"],
                 "bands": [{"label": "Low", "min": 1}, {"label": "Medium", "min": 4}, {"label": "High", "min": 8},
                           {"label": "Critical", "min": 12}]},
    "maturity": [{"label": "Ad hoc", "credit": 0}, {"label": "Defined", "credit": 1}],
    "effectiveness": {"levels": [{"label": "Ineffective", "min": 0, "factor": 1.0},
                                 {"label": "Partially effective", "min": 30, "factor": 0.75},
                                 {"label": "Effective", "min": 60, "factor": 0.5},
                                 {"label": "Highly effective", "min": 85, "factor": 0.25}]},
    "residual": {"method": "product", "inherent_value": "score", "levels": ["Low", "Medium", "High", "Critical"],
                 "bands": [{"label": "Low", "min": 0}, {"label": "Medium", "min": 3}, {"label": "High", "min": 6},
                           {"label": "Critical", "min": 10}]},
}


def _labels(levels: list[Any]) -> list[str]:
    return [level if isinstance(level, str) else level["label"] for level in levels]


def write_year(root: Path, *, modules: int, methodology: dict[str, Any], year: int = 2030,
               seed: int = 13) -> dict[str, dict[str, str]]:
    """Write ``root/<year>/`` (assessment and one judged module file each) and
    ``root/methodology/generated.yaml``; return each module's judged levels by id."""
    rng = random.Random(seed)
    (root / "methodology").mkdir(parents=True, exist_ok=True)
    (root / "methodology" / "generated.yaml").write_text(yaml.safe_dump(methodology, sort_keys=False))
    folder = root / str(year)
    folder.mkdir(parents=True)
    scales = {rating: _labels(methodology[rating]["levels"]) for rating in ("probability", "severity", "effectiveness")}
    entries, judged = [], {}
    for index in range(modules):
        name = HARMS[index % len(HARMS)] + (f" {index // len(HARMS) + 1}" if index >= len(HARMS) else "")
        module_id = "-".join(name.lower().replace("-", " ").split())
        entries.append({"id": module_id, "title": name, "short": f"R{index + 1}"})
        levels = {rating: rng.choice(labels) for rating, labels in scales.items()}
        judged[module_id] = levels
        data = {"module": module_id, "title": name,
                **{rating: {"level": level, "rationale": f"{name}: {rating} judged {level} by the risk team."}
                   for rating, level in levels.items()}}
        (folder / f"{module_id}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    assessment = {"platform": "Generated Platform", "year": year, "period": {"start": f"{year - 1}-07-01",
                  "end": f"{year}-06-30"}, "methodology": "../methodology/generated.yaml", "modules": entries}
    (folder / "assessment.yaml").write_text(yaml.safe_dump(assessment, sort_keys=False))
    return judged
