"""The labeling rules that come with the demo data.

Keyword rules of the kind people write in their first week: most are good,
one is sloppy on purpose. "Anything with credit is income" catches
paychecks, but also card payments ("CREDIT CARD PAYMENT") and refunds
("POS CREDIT VISA RETURN"), so its precision against human labels falls
under the floor and the admin flags it.

The generator writes its ``rule`` labels with these rules (the winner among
those that match, as a rule run would pick it), and the loader stores them
with their ``rule_id``.
"""

from decimal import Decimal

from labeling.rules import DESCRIPTION, IN, OUT, REGEX, Conditions
from labeling.synthetic import merchants as mc

DEMO_RULES = (
    {
        "name": "Paychecks",
        "operator": REGEX,
        "pattern": r"payroll|wage pay|direct dep",
        "sign": IN,
        "category": mc.INCOME,
        "priority": 50,
    },
    {
        "name": "Streaming services",
        "operator": REGEX,
        "pattern": r"netflix|spotify|hulu|disney",
        "category": mc.ENTERTAINMENT,
        "priority": 50,
    },
    {
        "name": "Grocery chains",
        "operator": REGEX,
        "pattern": r"whole ?f|trader joe|wegmans|aldi|kroger|safeway",
        "category": mc.GROCERIES,
        "priority": 50,
    },
    {
        "name": "Coffee shops",
        "operator": REGEX,
        "pattern": r"starbucks|dunkin",
        "category": mc.DINING,
        "priority": 50,
    },
    {
        # Below $15 a stop at the pump is usually a snack.
        "name": "Fuel stations",
        "operator": REGEX,
        "pattern": r"\b(shell|chevron|exxon|mobil|bp|sunoco|circle k)\b",
        "sign": OUT,
        "amount_min": Decimal("15.00"),
        "category": mc.TRANSPORTATION,
        "priority": 50,
    },
    {
        "name": "Person-to-person payments",
        "operator": REGEX,
        "pattern": r"zelle|venmo",
        "category": mc.TRANSFERS,
        "priority": 50,
    },
    {
        "name": "Anything with credit is income",
        "pattern": "credit",
        "category": mc.INCOME,
        "priority": 10,
    },
)

_CONDITION_KEYS = ("operator", "pattern", "sign", "amount_min")


def conditions(spec):
    return Conditions(
        field=DESCRIPTION, **{key: spec[key] for key in _CONDITION_KEYS if key in spec}
    )


def ranked():
    """(spec, matcher) pairs, the winner first: highest priority, then the
    later rule (created last, so with the higher id)."""
    order = sorted(
        range(len(DEMO_RULES)), key=lambda i: (-DEMO_RULES[i]["priority"], -i)
    )
    return [(DEMO_RULES[i], conditions(DEMO_RULES[i]).matcher()) for i in order]
