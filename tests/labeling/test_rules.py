"""Rule conditions: pattern validation, matching, and the model's checks."""

import re
import time
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from labeling.models import Rule, RuleMatch
from labeling.rules import Conditions, check_pattern


def matches(conditions, description="SHELL OIL 5744 OAKLAND CA", **row):
    values = {"merchant": "shell", "amount": Decimal("-40.00"), "account": "Visa"}
    values.update(row)
    return conditions.matcher()(
        description,
        values["merchant"],
        values["amount"],
        values["account"],
        values.get("day", 14),
    )


# Regular expressions ----------------------------------------------------------


def test_an_invalid_regex_is_refused_with_its_position():
    with pytest.raises(ValidationError) as caught:
        check_pattern("(shell|chevron")

    assert caught.value.messages == [
        "Invalid regular expression at position 0: missing ), unterminated subpattern."
    ]


def test_the_position_is_where_re_reports_it():
    with pytest.raises(ValidationError) as caught:
        check_pattern(r"fuel [z-a]")

    assert "at position 6: bad character range z-a" in caught.value.messages[0]


@pytest.mark.parametrize(
    "pattern",
    [r"(a+)+$", r"(a*)*b", r"(\w+\s?)+$", r"(?:x|(y+))*z", r"((ab)*c)+", r"(.*a){20}"],
)
def test_nested_quantifiers_are_refused(pattern):
    with pytest.raises(ValidationError) as caught:
        check_pattern(pattern)

    assert "exponential" in caught.value.messages[0]


def test_the_refused_shape_really_is_catastrophic():
    # What the check prevents: 22 characters already take a noticeable time,
    # and every extra one doubles it.
    evil = re.compile(r"(a+)+$")
    started = time.perf_counter()
    evil.search("a" * 22 + "!")
    assert time.perf_counter() - started > 0.05


@pytest.mark.parametrize(
    "pattern",
    [
        r"\b(shell|chevron|exxon)\b",
        r"^ach credit .* payroll",
        r"amzn\s?mktp",
        r"(ab){2}c+",
        r"x{1,3}y",
    ],
)
def test_ordinary_patterns_pass(pattern):
    check_pattern(pattern)


def test_absurd_repeat_counts_are_a_validation_error_not_a_crash():
    with pytest.raises(ValidationError):
        check_pattern("a{99999999999999999999}")


def test_overlong_patterns_are_refused():
    with pytest.raises(ValidationError):
        check_pattern("a" * 501)


# Matching -------------------------------------------------------------------------


def test_text_conditions_ignore_case():
    assert matches(Conditions(pattern="shell oil"))
    assert matches(Conditions(operator="starts_with", pattern="Shell"))
    assert not matches(Conditions(operator="starts_with", pattern="oil"))
    assert matches(Conditions(operator="regex", pattern=r"\bOIL \d+"))


def test_merchant_conditions_read_the_merchant():
    rule = Conditions(field="merchant", operator="equals", pattern="Shell")

    assert matches(rule)
    assert not matches(rule, merchant="shell oil")
    # Without features there is no merchant, and no match.
    assert not matches(rule, merchant=None)


def test_amount_bounds_are_on_the_absolute_amount_and_the_sign_separate():
    fuel = Conditions(pattern="shell", sign="out", amount_min=Decimal("15"))

    assert matches(fuel, amount=Decimal("-15.00"))
    assert not matches(fuel, amount=Decimal("-14.99"))
    assert not matches(fuel, amount=Decimal("40.00"))  # money in
    capped = Conditions(pattern="shell", amount_max=Decimal("10"))
    assert matches(capped, amount=Decimal("9.99"))
    assert not matches(capped, amount=Decimal("-10.01"))


def test_account_must_be_equal_ignoring_case():
    rule = Conditions(pattern="shell", account="visa")

    assert matches(rule, account="VISA")
    assert not matches(rule, account="Visa 2")


def test_day_window_and_its_wrap_around_the_month_end():
    middle = Conditions(pattern="rent", day_from=10, day_to=20)
    turn = Conditions(pattern="rent", day_from=28, day_to=3)

    assert matches(middle, "RENT", day=10) and matches(middle, "RENT", day=20)
    assert not matches(middle, "RENT", day=21)
    assert matches(turn, "RENT", day=30) and matches(turn, "RENT", day=2)
    assert not matches(turn, "RENT", day=15)


def test_conditions_report_their_errors_by_field():
    errors = Conditions(
        operator="regex",
        pattern="(a",
        amount_min=Decimal("5"),
        amount_max=Decimal("1"),
        day_from=3,
    ).errors()

    assert set(errors) == {"pattern", "amount_max", "day_to"}
    assert "position 0" in errors["pattern"]


def test_a_rule_without_any_condition_is_refused():
    assert "pattern" in Conditions().errors()
    assert Conditions(sign="in", account="Savings").errors() == {}


# The model ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_model_clean_rejects_a_bad_regex():
    rule = Rule(name="Bad", operator="regex", pattern="(a+)+", category_id="Income")

    with pytest.raises(ValidationError) as caught:
        rule.full_clean()

    assert "pattern" in caught.value.message_dict


@pytest.mark.django_db
def test_changing_the_conditions_drops_the_matches(make_txn):
    txn = make_txn(description="SHELL OIL")
    rule = Rule.objects.create(name="Fuel", pattern="shell", category_id="Income")
    RuleMatch.objects.create(rule=rule, txn=txn)
    first_change = rule.conditions_changed_at

    rule.priority = 5
    rule.save()
    assert RuleMatch.objects.filter(rule=rule).exists()

    rule.pattern = "shell oil"
    rule.save()
    assert not RuleMatch.objects.filter(rule=rule).exists()
    assert rule.conditions_changed_at > first_change
