"""Who may join the market: the programme's admission rules for an operating entity."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from interconnect.core.credit_code import credit_code_error

MIN_REGISTERED_CAPITAL_CNY = Decimal("50000000")


def eligibility_failures(*, credit_code: str, telecom_licence: str, registered_capital: str) -> list[str]:
    """Every rule the entity fails, as a sentence naming the field; empty when eligible."""
    failures: list[str] = []
    error = credit_code_error(credit_code)
    if error:
        failures.append(f"spec.operatingEntity.creditCode: {error}")
    if not telecom_licence.strip():
        failures.append("spec.operatingEntity.telecomLicence: a telecom business licence is required")
    try:
        capital = Decimal(registered_capital)
    except InvalidOperation:
        failures.append(f"spec.operatingEntity.registeredCapital: {registered_capital!r} is not a decimal amount")
    else:
        if not capital.is_finite() or capital < MIN_REGISTERED_CAPITAL_CNY:
            failures.append(
                f"spec.operatingEntity.registeredCapital: CNY {registered_capital} is below the "
                f"minimum of CNY {MIN_REGISTERED_CAPITAL_CNY:,}")
    return failures
