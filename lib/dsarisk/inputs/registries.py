"""Registries the inputs are checked against: the DSA's article lists (the risk modules are
data: see :mod:`dsarisk.inputs.taxonomy`)."""

from __future__ import annotations

from typing import Literal

ART34_1 = {
    "a": "illegal content",
    "b": "fundamental rights",
    "c": "civic discourse, electoral processes, public security",
    "d": "gender-based violence, public health, minors, physical and mental well-being",
}
ART34_2_FACTORS = (
    "recommender systems",
    "content moderation systems",
    "terms and conditions and their enforcement",
    "advertising systems",
    "data-related practices",
    "intentional manipulation and inauthentic use",
    "regional or linguistic aspects",
)
ART35_1 = {
    "a": "design, features or functioning of the service, including online interfaces",
    "b": "terms and conditions and their enforcement",
    "c": "content moderation processes",
    "d": "algorithmic systems, including recommender systems",
    "e": "advertising systems",
    "f": "internal processes, resources, testing, documentation or supervision",
    "g": "cooperation with trusted flaggers and out-of-court settlement",
    "h": "cooperation with other providers (codes of conduct, crisis protocols)",
    "i": "awareness-raising and interface measures",
    "j": "protection of the rights of the child (age verification, parental controls)",
    "k": "marking of generated or manipulated media",
}
Art34Letter = Literal["a", "b", "c", "d"]
Art35Letter = Literal["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"]
