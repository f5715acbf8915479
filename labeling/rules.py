"""What a labeling rule matches, in plain Python.

A rule's conditions are checked here and nowhere else: the rule runs
(``labeling.rule_runs``), the synthetic data generator and the validation of
forms and the API all use ``Conditions``, so a pattern means the same thing
everywhere. Text conditions ignore case. Regular expressions are Python
``re`` patterns; they never reach SQL, so there is one dialect only.

Python's ``re`` backtracks, and a pattern such as ``(a+)+$`` takes
exponential time on a string of a few dozen characters. ``check_pattern``
therefore refuses nested quantifiers (a repeated group that itself contains
a variable repeat), the shape behind catastrophic backtracking; a rule that
needs one can almost always be written with a single quantifier or two
rules.

This module needs no database, so the generator can import it without
Django settings.
"""

import re
import re._parser as sre_parse  # the parser ``re`` itself uses; stable since 3.11
from dataclasses import dataclass
from decimal import Decimal

from django.core.exceptions import ValidationError

DESCRIPTION = "description"
MERCHANT = "merchant"

CONTAINS = "contains"
STARTS_WITH = "starts_with"
EQUALS = "equals"
REGEX = "regex"

ANY = "any"
OUT = "out"
IN = "in"

# Long enough for any keyword list a person maintains by hand; longer
# patterns are usually generated and belong in a model, not a rule.
MAX_PATTERN_LENGTH = 500

_REPEATS = {sre_parse.MAX_REPEAT, sre_parse.MIN_REPEAT, sre_parse.POSSESSIVE_REPEAT}


def check_pattern(pattern):
    """Raise ``ValidationError`` unless ``pattern`` is a safe Python regex.

    The message of a syntax error names the position, as ``re`` reports it.
    """
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise ValidationError(
            f"The pattern is longer than {MAX_PATTERN_LENGTH} characters.",
            code="too_long",
        )
    try:
        re.compile(pattern)
        tree = sre_parse.parse(pattern)
    except re.error as exc:
        where = f" at position {exc.pos}" if exc.pos is not None else ""
        raise ValidationError(
            "Invalid regular expression%(where)s: %(msg)s.",
            code="invalid_regex",
            params={"where": where, "msg": exc.msg},
        ) from None
    except (OverflowError, RecursionError) as exc:
        # Repeat counts past the engine's limit, or absurd nesting.
        raise ValidationError(
            "Invalid regular expression: %(msg)s.",
            code="invalid_regex",
            params={"msg": exc},
        ) from None
    if _nested_repeat(tree, inside_repeat=False):
        raise ValidationError(
            "The pattern repeats a group that itself contains a repeat, such as "
            "(a+)+; matching it can take exponential time. Use one quantifier "
            "(a+), or split the rule in two.",
            code="nested_quantifier",
        )


def _nested_repeat(items, inside_repeat):
    """Whether a variable repeat sits inside a repeat that can run twice."""
    for op, av in items:
        if op in _REPEATS:
            low, high, body = av
            varies = low != high
            if inside_repeat and varies:
                return True
            repeats_body = high == sre_parse.MAXREPEAT or high > 1
            if _nested_repeat(body, inside_repeat or repeats_body):
                return True
        elif op is sre_parse.SUBPATTERN:
            if _nested_repeat(av[-1], inside_repeat):
                return True
        elif op is sre_parse.BRANCH:
            if any(_nested_repeat(branch, inside_repeat) for branch in av[1]):
                return True
        elif op in (sre_parse.ASSERT, sre_parse.ASSERT_NOT):
            if _nested_repeat(av[1], inside_repeat):
                return True
        elif op is sre_parse.ATOMIC_GROUP:
            if _nested_repeat(av, inside_repeat):
                return True
        elif op is sre_parse.GROUPREF_EXISTS:
            branches = [av[1], av[2]] if av[2] is not None else [av[1]]
            if any(_nested_repeat(branch, inside_repeat) for branch in branches):
                return True
    return False


@dataclass(frozen=True)
class Conditions:
    """What a transaction must look like for a rule to match it.

    Every condition that is set must hold. ``amount_min``/``amount_max``
    bound the absolute amount, ``sign`` says which direction; the day window
    ``day_from``..``day_to`` wraps around the month end when ``day_from`` is
    the larger (28..3 is the turn of the month).
    """

    field: str = DESCRIPTION
    operator: str = CONTAINS
    pattern: str = ""
    amount_min: Decimal | None = None
    amount_max: Decimal | None = None
    sign: str = ANY
    account: str = ""
    day_from: int | None = None
    day_to: int | None = None

    def errors(self):
        """Problems with the conditions, as {field name: message}."""
        errors = {}
        if self.operator == REGEX and self.pattern:
            try:
                check_pattern(self.pattern)
            except ValidationError as exc:
                errors["pattern"] = exc.messages[0]
        if (
            self.amount_min is not None
            and self.amount_max is not None
            and self.amount_min > self.amount_max
        ):
            errors["amount_max"] = "The maximum is below the minimum."
        for name in ("amount_min", "amount_max"):
            value = getattr(self, name)
            if value is not None and value < 0:
                errors[name] = "Bounds are on the absolute amount; use the sign."
        if (self.day_from is None) != (self.day_to is None):
            errors["day_to"] = "Give both ends of the day window, or neither."
        for name in ("day_from", "day_to"):
            value = getattr(self, name)
            if value is not None and not 1 <= value <= 31:
                errors[name] = "A day of the month, 1 to 31."
        if not self.pattern and not self._has_other_condition():
            errors["pattern"] = (
                "A rule needs a condition; without one it would match every "
                "transaction."
            )
        return errors

    def _has_other_condition(self):
        return (
            self.amount_min is not None
            or self.amount_max is not None
            or self.sign != ANY
            or bool(self.account)
            or self.day_from is not None
        )

    def matcher(self):
        """A function ``(description, merchant, amount, account, day) -> bool``.

        Call ``errors()`` first: a matcher of invalid conditions may raise.
        """
        text = _text_test(self.operator, self.pattern)
        use_merchant = self.field == MERCHANT
        low, high, sign = self.amount_min, self.amount_max, self.sign
        account = self.account.lower()
        day_from, day_to = self.day_from, self.day_to
        wraps = day_from is not None and day_from > day_to

        def matches(description, merchant, amount, account_name, day):
            if (sign == OUT and amount >= 0) or (sign == IN and amount <= 0):
                return False
            size = -amount if amount < 0 else amount
            if (low is not None and size < low) or (high is not None and size > high):
                return False
            if account and account_name.lower() != account:
                return False
            if day_from is not None:
                inside = (
                    day >= day_from or day <= day_to
                    if wraps
                    else day_from <= day <= day_to
                )
                if not inside:
                    return False
            if text is None:
                return True
            value = merchant if use_merchant else description
            return value is not None and text(value)

        return matches


def _text_test(operator, pattern):
    if not pattern:
        return None
    if operator == REGEX:
        if pattern == pattern.lower():
            # Without capitals (so without \S, \W, \D...), searching the
            # lower-cased text is case-insensitive already, and several times
            # faster than re.IGNORECASE.
            search = re.compile(pattern).search
            return lambda value: search(value.lower()) is not None
        search = re.compile(pattern, re.IGNORECASE).search
        return lambda value: search(value) is not None
    needle = pattern.lower()
    if operator == CONTAINS:
        return lambda value: needle in value.lower()
    if operator == STARTS_WITH:
        return lambda value: value.lower().startswith(needle)
    if operator == EQUALS:
        return lambda value: value.lower() == needle
    raise ValueError(f"Unknown operator {operator!r}")
