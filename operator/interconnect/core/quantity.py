"""Kubernetes resource quantities (``resource.Quantity``) read exactly, as the API server does.

A member's pods and nodes carry quantities such as ``8``, ``1k`` or ``500m``: the API server
accepts any of them, so reading them with ``int()`` breaks on valid objects (a pod asking for
1,000 GPUs is served as ``1k``). The grammar is the API's: a signed decimal number, optionally
with a binary suffix (Ki, Mi, Gi, Ti, Pi, Ei), a decimal suffix (n, u, m, k, M, G, T, P, E) or a
decimal exponent (e3, E-2). The core may not import the Kubernetes client, so the few lines
that parse it live here.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
            "k": Decimal("1e3"), "M": Decimal("1e6"), "G": Decimal("1e9"), "T": Decimal("1e12"),
            "P": Decimal("1e15"), "E": Decimal("1e18")}
_QUANTITY = re.compile(r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?[0-9]+|[numkMGTPE])?$")


class QuantityError(ValueError):
    """Text that is not a Kubernetes quantity."""


def parse_quantity(value: object) -> Decimal:
    """The exact value of a quantity (``"1k"`` -> 1000, ``"500m"`` -> 0.5, ``2`` -> 2)."""
    if isinstance(value, bool):
        raise QuantityError(f"{value!r} is not a quantity")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise QuantityError(f"{value!r} is not a quantity")
        return Decimal(str(value))
    text = str(value).strip()
    match = _QUANTITY.match(text)
    if match is None:
        raise QuantityError(f"{text!r} is not a quantity")
    number, suffix = match.group(1), match.group(2) or ""
    try:
        base = Decimal(number)
        if suffix in _BINARY:
            return base * _BINARY[suffix]
        if suffix[:1] in ("e", "E"):
            return base.scaleb(int(suffix[1:]))
        return base * _DECIMAL[suffix]
    except (InvalidOperation, ValueError, OverflowError) as exc:
        raise QuantityError(f"{text!r} is not a quantity") from exc


def whole_units(value: object) -> int:
    """A count of an extended resource (cards): the quantity, rounded up to a whole unit.

    Extended resources are whole by the API's rules; rounding up never under-counts a pod.
    """
    return max(0, math.ceil(parse_quantity(value)))
