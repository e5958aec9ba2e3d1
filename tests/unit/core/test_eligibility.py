from interconnect.core.credit_code import make_credit_code
from interconnect.core.eligibility import eligibility_failures

GOOD = make_credit_code("91520100MA6DJ7H8X")


def test_eligible_entity_has_no_failures() -> None:
    assert eligibility_failures(credit_code=GOOD, telecom_licence="B1-20230001", registered_capital="50000000") == []


def test_each_rule_names_its_field() -> None:
    bad_code = GOOD[:-1] + ("0" if GOOD[-1] != "0" else "1")
    failures = eligibility_failures(credit_code=bad_code, telecom_licence=" ", registered_capital="49999999.99")
    assert len(failures) == 3
    assert failures[0].startswith("spec.operatingEntity.creditCode")
    assert failures[1].startswith("spec.operatingEntity.telecomLicence")
    assert "below the minimum of CNY 50,000,000" in failures[2]
