"""Numbers that remember whether they are confidential.

A value marked confidential in an input file stays confidential through every
computation: any arithmetic with a confidential operand gives a confidential
result. Rendering for the public report then hides it wherever it ends up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

REDACTED = "[Confidential]"


@dataclass(frozen=True)
class Value:
    """A number and whether it may be published."""

    value: float
    confidential: bool = False

    def _combine(self, other: Any, op: Any) -> Value:
        if isinstance(other, Value):
            return Value(op(self.value, other.value), self.confidential or other.confidential)
        return Value(op(self.value, other), self.confidential)

    def __add__(self, other: Any) -> Value:
        return self._combine(other, lambda a, b: a + b)

    def __sub__(self, other: Any) -> Value:
        return self._combine(other, lambda a, b: a - b)

    def __mul__(self, other: Any) -> Value:
        return self._combine(other, lambda a, b: a * b)

    def __truediv__(self, other: Any) -> Value:
        return self._combine(other, lambda a, b: a / b)

    __radd__ = __add__
    __rmul__ = __mul__

