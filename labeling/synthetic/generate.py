"""Generate realistic, reproducible bank transactions in pure Python.

The population is a set of households. Each lives in a metro area, banks
with two to four accounts at different banks, and produces what a real
statement shows: biweekly or semimonthly paychecks, rent or a mortgage,
utility and insurance bills, card subscriptions on a stable day, transfers
between its own accounts (both sides), monthly card payments (both sides),
person-to-person payments, ATM cash, fees, interest, refunds, and a long
tail of discretionary purchases drawn from the merchant catalogue.

Every account belongs to a bank whose export style it copies: card-network
descriptors truncated to a fixed width with the city column glued to the
state, debit-card POS lines with card numbers and dates, padded columns,
ACH lines with company ids and trace numbers, title or lower case. The
same household therefore writes the same merchant several different ways.

Each row carries its true top-level category. A fraction of rows also gets
a golden label from one of three sources: humans (always right), the demo
keyword rules of ``labeling.synthetic.demo_rules`` (right except where a
keyword misleads them) and imports (a little noisy).

Output is a pure function of ``GenerationParams``: one ``random.Random``
per household, seeded from the run's seed, no global random state, no
``hash()`` of strings and no reading of the clock. The total row count is
exactly ``count``.
"""

import bisect
import itertools
import math
import random
import zlib
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import NamedTuple

from labeling.synthetic import demo_rules
from labeling.synthetic import merchants as mc

# A fixed default end date: with it, the same seed gives the same data no
# matter which day the generator runs.
DEFAULT_END = date(2026, 11, 30)

HUMAN = "human"
RULE = "rule"
IMPORT = "import"

# Share of each source among labeled rows, modelled on a product that has
# been used for a while: people have confirmed a little under half of the
# labels, keyword rules wrote about a third, and the rest arrived with
# imported history from another app. A row drawn for a rule label keeps it
# only where a demo rule matches it; a person labeled the others.
LABEL_SOURCE_SHARES = ((HUMAN, 0.45), (RULE, 0.30), (IMPORT, 0.25))

# Imported labels come from another app's taxonomy mapped onto ours; about
# one in eleven lands on a neighbouring category.
IMPORT_NOISE = 0.09

# Average transactions per household and month; each household draws its
# own activity level from this range.
ACTIVITY_RANGE = (80.0, 150.0)
MEAN_ACTIVITY = sum(ACTIVITY_RANGE) / 2

# Share of discretionary purchases that are later refunded.
REFUND_RATE = 0.012

# Share of gas-station visits that buy snacks rather than fuel, and the
# amount that separates the two.
FUEL_SNACK_SHARE = 0.15
FUEL_MIN_CENTS = 1500

CHECKING = "checking"
SAVINGS = "savings"
CREDIT = "credit"

# Row kinds, kept on every row so that tests and notebooks can slice by them.
PURCHASE = "purchase"
REFUND = "refund"
SUBSCRIPTION = "subscription"
BILL = "bill"
HOUSING = "housing"
LOAN = "loan"
PAYCHECK = "paycheck"
OTHER_INCOME = "income"
TRANSFER = "transfer"
CARD_PAYMENT = "card_payment"
PEER = "peer"
ATM = "atm"
FEE = "fee"
INTEREST = "interest"

# Which wrong category an import plausibly picks instead of the right one.
CONFUSABLE = {
    mc.INCOME: (mc.TRANSFERS,),
    mc.TRANSFERS: (mc.INCOME, mc.PAYMENTS),
    mc.PAYMENTS: (mc.TRANSFERS,),
    mc.HOUSING: (mc.PAYMENTS, mc.UTILITIES),
    mc.UTILITIES: (mc.SERVICES, mc.HOUSING),
    mc.GROCERIES: (mc.DINING, mc.HOUSEHOLD, mc.SHOPPING),
    mc.DINING: (mc.GROCERIES, mc.ENTERTAINMENT),
    mc.SHOPPING: (mc.HOUSEHOLD, mc.ELECTRONICS, mc.PERSONAL_CARE),
    mc.HOUSEHOLD: (mc.SHOPPING, mc.GROCERIES),
    mc.ELECTRONICS: (mc.SHOPPING,),
    mc.TRANSPORTATION: (mc.TRAVEL, mc.SERVICES),
    mc.TRAVEL: (mc.TRANSPORTATION, mc.ENTERTAINMENT),
    mc.ENTERTAINMENT: (mc.SERVICES, mc.SHOPPING),
    mc.HEALTH: (mc.PERSONAL_CARE, mc.INSURANCE),
    mc.PERSONAL_CARE: (mc.HEALTH, mc.SHOPPING),
    mc.SERVICES: (mc.UTILITIES, mc.SHOPPING),
    mc.INSURANCE: (mc.HEALTH, mc.SERVICES),
    mc.FEES: (mc.SERVICES, mc.PAYMENTS),
    mc.GIFTS: (mc.SHOPPING, mc.SERVICES),
}

_HOLDERS = (
    "JORDAN MARTINEZ",
    "ALEX KIM",
    "SAM PATEL",
    "TAYLOR NGUYEN",
    "CHRIS JOHNSON",
    "MORGAN LEE",
    "JAMIE GARCIA",
    "CASEY SMITH",
    "RILEY BROWN",
    "AVERY DAVIS",
    "PAT OBRIEN",
    "DANA WILSON",
    "JESSE LOPEZ",
    "ROBIN CLARK",
    "DREW HARRIS",
    "QUINN WALKER",
    "MARIA GONZALEZ",
    "DAVID CHEN",
    "SARAH MILLER",
    "JAMES ANDERSON",
    "PRIYA SHARMA",
    "MICHAEL THOMPSON",
    "EMILY WHITE",
    "KEVIN NGUYEN",
    "LAURA SCOTT",
    "BRIAN YOUNG",
    "NICOLE KING",
    "ERIC WRIGHT",
    "ANGELA HILL",
    "OMAR HASSAN",
)

_DIGITS_MOD = [10**n for n in range(25)]
_ALNUM = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"

# Posting lag of card purchases in days: most post the next day.
_CARD_LAGS = (0, 0, 0, 1, 1, 1, 1, 1, 1, 2, 2, 3)

# Discretionary spending by weekday (Monday first) and a December lift.
_WEEKDAY_WEIGHT = (0.9, 0.9, 0.95, 1.0, 1.2, 1.35, 1.05)
_DECEMBER_LIFT = 1.2

_SHOP_MERCHANTS = mc.of_kind(mc.SHOP)
_DEMO_RULES = demo_rules.ranked()
_LABEL_SOURCES = tuple(source for source, _ in LABEL_SOURCE_SHARES)
_LABEL_CUM = tuple(itertools.accumulate(share for _, share in LABEL_SOURCE_SHARES))


class SyntheticTxn(NamedTuple):
    """One generated row; the first eight fields are what the loader stores."""

    account: str
    external_id: str
    posted_on: date
    description: str
    amount: str  # signed decimal string, negative is money out
    label: str | None  # golden label, or None when unlabeled
    source: str | None  # human, rule or import; None when unlabeled
    rule: str | None  # name of the demo rule behind a rule label
    category: str  # the true category, whether labeled or not
    merchant: str  # catalogue key of the counterparty
    kind: str  # what produced the row: purchase, paycheck, transfer...


@dataclass(frozen=True)
class GenerationParams:
    count: int
    months: int = 12
    seed: int = 1
    label_fraction: float = 0.3
    end: date = DEFAULT_END

    def __post_init__(self):
        if self.count < 0:
            raise ValueError("count must not be negative")
        if not 1 <= self.months <= 120:
            raise ValueError("months must be between 1 and 120")
        if not 0.0 <= self.label_fraction <= 1.0:
            raise ValueError("label_fraction must be between 0 and 1")


def household_count(params):
    """How many households share ``params.count`` rows."""
    return max(1, round(params.count / (MEAN_ACTIVITY * params.months)))


def generate(params):
    """Yield exactly ``params.count`` rows, household by household."""
    calendar = Calendar(params.end, params.months)
    for number, seed, quota in _household_plan(params):
        yield from _Household(number, seed, quota, calendar, params).rows()


def _household_plan(params):
    """(number, seed, quota) per household; quotas sum to ``params.count``."""
    master = random.Random(params.seed)
    households = household_count(params)
    seeds = [master.getrandbits(64) for _ in range(households)]
    activity = [master.uniform(*ACTIVITY_RANGE) for _ in range(households)]
    total = sum(activity)
    exact = [params.count * a / total for a in activity]
    quotas = [math.floor(x) for x in exact]
    # Largest remainders get the rows that flooring lost; ties go to the
    # lower household number so the split is deterministic.
    missing = params.count - sum(quotas)
    by_remainder = sorted(range(households), key=lambda i: (quotas[i] - exact[i], i))
    for i in by_remainder[:missing]:
        quotas[i] += 1
    return [(i + 1, seeds[i], quotas[i]) for i in range(households)]


def _shift_months(day, months):
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    return date(year, month, min(day.day, _month_length(year, month)))


def _month_length(year, month):
    following = date(year + month // 12, month % 12 + 1, 1)
    return (following - date(year, month, 1)).days


class Calendar:
    """The window of ``months`` months ending on ``end``, as day indexes.

    Everything inside the generator works on integer day indexes; the text
    forms banks print are precomputed here once.
    """

    def __init__(self, end, months):
        self.end = end
        self.start = _shift_months(end, -months) + timedelta(days=1)
        self.size = (end - self.start).days + 1
        self.days = [self.start + timedelta(days=i) for i in range(self.size)]
        self.weekday = [d.weekday() for d in self.days]
        self.mmdd = [f"{d.month:02d}/{d.day:02d}" for d in self.days]
        self.mmdd4 = [f"{d.month:02d}{d.day:02d}" for d in self.days]
        self.mmddyy = [
            f"{d.month:02d}/{d.day:02d}/{d.year % 100:02d}" for d in self.days
        ]
        self.yymmdd = [f"{d.year % 100:02d}{d.month:02d}{d.day:02d}" for d in self.days]
        # (first day index of the month, possibly negative; month length)
        self.months = []
        month = date(self.start.year, self.start.month, 1)
        while month <= end:
            length = _month_length(month.year, month.month)
            self.months.append(((month - self.start).days, length, month.month))
            month = month + timedelta(days=length)
        self.month_of_day = [0] * self.size
        for m, (first, length, _) in enumerate(self.months):
            for i in range(max(first, 0), min(first + length, self.size)):
                self.month_of_day[i] = m
        weights = [
            _WEEKDAY_WEIGHT[d.weekday()] * (_DECEMBER_LIFT if d.month == 12 else 1.0)
            for d in self.days
        ]
        self.day_cum = list(itertools.accumulate(weights))

    def monthly(self, day_of_month):
        """Index of ``day_of_month`` (clamped) in each month, within the window."""
        out = []
        for first, length, _ in self.months:
            i = first + min(day_of_month, length) - 1
            if 0 <= i < self.size:
                out.append(i)
        return out

    def business(self, i):
        """Move a weekend day to Monday, or back to Friday at the window's end."""
        weekday = self.weekday[i]
        if weekday < 5:
            return i
        forward = i + 7 - weekday
        if forward < self.size:
            return forward
        return i - (weekday - 4)

    def clamp(self, i):
        return min(max(i, 0), self.size - 1)


def _digits(rng, n):
    return str(rng.getrandbits(4 * n) % _DIGITS_MOD[n]).zfill(n)


def _code(rng, n):
    return "".join(rng.choices(_ALNUM, k=n))


_COMPANY_IDS = {}


def _company_id(name):
    """A stable ten-digit ACH company id for an originator name."""
    cid = _COMPANY_IDS.get(name)
    if cid is None:
        cid = _COMPANY_IDS[name] = f"{zlib.crc32(name.encode()):010d}"
    return cid


def _network(name, city, state, width):
    """The card-network layout: name field, 13-character city, state.

    When the city fills its column there is no separator left, which is
    where statements get ``SAN FRANCISCOCA``.
    """
    city = city[:13]
    if len(city) == 13:
        return f"{name[:width]} {city}{state}"
    return f"{name[:width]} {city} {state}"


class _Account:
    """A bank account and the way its bank writes each kind of line."""

    kind = CHECKING
    short = "CHK"
    fees = {}

    def __init__(self, household, bank, product, last4):
        self.household = household
        self.rng = household.rng
        self.calendar = household.calendar
        self.bank = bank
        self.product = product
        self.last4 = last4
        self.name = f"HH{household.number:05d} {bank} {product} ••{last4}"
        self.holder = household.holder

    # Card lines -----------------------------------------------------------
    def purchase(self, name, city, state, day, recurring):
        raise NotImplementedError

    def refund(self, name, city, state, day):
        return self.purchase(name, city, state, day, False)

    # Bank lines -----------------------------------------------------------
    def ach(self, originator, entry, incoming, day):
        raise NotImplementedError

    def transfer(self, other, incoming, day):
        if other.bank == self.bank:
            return self.internal_transfer(other, incoming, day)
        if incoming:
            return self.ach(other.bank.upper(), "TRANSFER", True, day)
        return self.ach(other.bank.upper(), "EXT TRNSFR", False, day)

    def internal_transfer(self, other, incoming, day):
        direction = "FROM" if incoming else "TO"
        return f"ONLINE TRANSFER {direction} {other.short} XXXXXX{other.last4}"

    def card_payment(self, card, day):
        originator, entry = card.payment_ach
        return self.ach(originator, entry, False, day)

    def atm(self, city, state, day):
        return f"ATM WITHDRAWAL {city} {state}"

    def fee(self, merchant, day):
        return self.fees.get(merchant.key, merchant.descriptor)

    def interest(self, day):
        return "INTEREST PAYMENT"


class _ChaseStyle(_Account):
    fees = {
        "monthly_service_fee": "MONTHLY SERVICE FEE",
        "atm_fee": "NON-CHASE ATM FEE-WITH",
        "overdraft_fee": "INSUFFICIENT FUNDS FEE",
    }

    def purchase(self, name, city, state, day, recurring):
        line = _network(name.upper(), city, state, 22)
        mmdd = self.calendar.mmdd[day]
        if recurring:
            return f"RECURRING CARD PURCHASE {mmdd} {line} CARD {self.last4}"
        if self.rng.random() < 0.15:
            return f"CARD PURCHASE WITH PIN {mmdd} {line} CARD {self.last4}"
        return f"CARD PURCHASE {mmdd} {line} CARD {self.last4}"

    def refund(self, name, city, state, day):
        line = _network(name.upper(), city, state, 22)
        return f"CARD RETURN {self.calendar.mmdd[day]} {line} CARD {self.last4}"

    def ach(self, originator, entry, incoming, day):
        sec = "PPD" if incoming else "WEB"
        return f"{originator} {entry} {sec} ID: {_company_id(originator)}"

    def internal_transfer(self, other, incoming, day):
        number = _digits(self.rng, 11)
        if incoming:
            return (
                f"Online Transfer from {other.short} ...{other.last4} "
                f"transaction#: {number}"
            )
        return (
            f"Online Transfer to {other.short} ...{other.last4} "
            f"transaction#: {number} {self.calendar.mmdd[day]}"
        )

    def card_payment(self, card, day):
        if card.bank == self.bank:
            return (
                f"Payment to Chase card ending in {card.last4} "
                f"{self.calendar.mmdd[day]}"
            )
        return super().card_payment(card, day)

    def atm(self, city, state, day):
        return (
            f"ATM WITHDRAWAL {_digits(self.rng, 6)} {self.calendar.mmdd[day]}"
            f"{city[:13]} {state}"
        )


class _WellsStyle(_Account):
    fees = {
        "monthly_service_fee": "MONTHLY SERVICE FEE",
        "atm_fee": "NON-WELLS FARGO ATM TRANSACTION FEE",
    }

    def purchase(self, name, city, state, day, recurring):
        verb = "RECURRING PAYMENT" if recurring else "PURCHASE"
        return (
            f"{verb} AUTHORIZED ON {self.calendar.mmdd[day]} {name[:25].upper()} "
            f"{city[:13]} {state} S{_digits(self.rng, 15)} CARD {self.last4}"
        )

    def refund(self, name, city, state, day):
        return (
            f"PURCHASE RETURN AUTHORIZED ON {self.calendar.mmdd[day]} "
            f"{name[:25].upper()} {city[:13]} {state} S{_digits(self.rng, 15)} "
            f"CARD {self.last4}"
        )

    def ach(self, originator, entry, incoming, day):
        return (
            f"{originator} {entry} {self.calendar.yymmdd[day]} "
            f"{_digits(self.rng, 10)} {self.holder}"
        )

    def internal_transfer(self, other, incoming, day):
        direction = "FROM" if incoming else "TO"
        return (
            f"ONLINE TRANSFER {direction} {self.holder} {other.product.upper()} "
            f"XXXXXX{other.last4} REF #IB0{_code(self.rng, 7)} "
            f"ON {self.calendar.mmddyy[day]}"
        )

    def atm(self, city, state, day):
        return (
            f"ATM WITHDRAWAL AUTHORIZED ON {self.calendar.mmdd[day]} {city[:13]} "
            f"{state} {_digits(self.rng, 13)} ATM ID {_code(self.rng, 4)} "
            f"CARD {self.last4}"
        )

    def fee(self, merchant, day):
        if merchant.key == "overdraft_fee":
            return (
                f"OVERDRAFT FEE FOR A TRANSACTION POSTED ON {self.calendar.mmdd[day]}"
            )
        return super().fee(merchant, day)


class _BofAStyle(_Account):
    fees = {
        "monthly_service_fee": "MONTHLY MAINTENANCE FEE",
        "atm_fee": "NON-BANK OF AMERICA ATM FEE",
        "overdraft_fee": "OVERDRAFT ITEM FEE",
    }

    def purchase(self, name, city, state, day, recurring):
        line = _network(name.upper(), city, state, 25)
        tail = " RECURRING" if recurring else ""
        return (
            f"CHECKCARD {self.calendar.mmdd4[day]} {line} {_digits(self.rng, 23)}{tail}"
        )

    def refund(self, name, city, state, day):
        line = _network(name.upper(), city, state, 25)
        return f"CHECKCARD REFUND {self.calendar.mmdd4[day]} {line}"

    def ach(self, originator, entry, incoming, day):
        sec = "PPD" if incoming else "WEB"
        return (
            f"{originator} DES:{entry} ID:{_digits(self.rng, 9)} "
            f"INDN:{self.holder} CO ID:{_company_id(originator)} {sec}"
        )

    def internal_transfer(self, other, incoming, day):
        direction = "from" if incoming else "to"
        return (
            f"Online Banking transfer {direction} {other.short} {other.last4} "
            f"Confirmation# {_digits(self.rng, 10)}"
        )

    def card_payment(self, card, day):
        if card.bank == self.bank:
            return (
                f"Online Banking payment to CRD {card.last4} "
                f"Confirmation# {_digits(self.rng, 10)}"
            )
        return super().card_payment(card, day)

    def atm(self, city, state, day):
        return (
            f"BKOFAMERICA ATM {self.calendar.mmdd[day]} #{_digits(self.rng, 6)} "
            f"WITHDRWL {city[:13]} {state}"
        )

    def interest(self, day):
        return "Interest Earned"


class _USBankStyle(_Account):
    fees = {
        "monthly_service_fee": "MONTHLY MAINTENANCE FEE",
        "atm_fee": "NON-NETWORK ATM FEE",
        "overdraft_fee": "OVERDRAFT PAID FEE",
    }

    def purchase(self, name, city, state, day, recurring):
        if self.rng.random() < 0.3:
            # The older export pads fields with two spaces.
            return f"DEBIT PURCHASE -VISA {name[:23].upper()}  {city[:13]}  {state}"
        return (
            f"POS DEBIT VISA CHECK CRD {self.last4} {name[:23].upper()} "
            f"{city[:13]} {state}"
        )

    def refund(self, name, city, state, day):
        return f"POS CREDIT VISA RETURN {name[:23].upper()} {city[:13]} {state}"

    def ach(self, originator, entry, incoming, day):
        verb = "ACH CREDIT" if incoming else "ACH DEBIT"
        return f"{verb} {originator} {entry} REF#{_code(self.rng, 12)}"

    def internal_transfer(self, other, incoming, day):
        if incoming:
            return f"ELECTRONIC DEPOSIT FROM {other.short} XXXXXX{other.last4}"
        return f"ELECTRONIC WITHDRAWAL TO {other.short} XXXXXX{other.last4}"

    def atm(self, city, state, day):
        return f"ATM WITHDRAWAL {city[:13]} {state} XXXX{self.last4}"

    def interest(self, day):
        return "INTEREST PAID"


class _CreditUnionStyle(_Account):
    fees = {
        "monthly_service_fee": "Monthly Account Fee",
        "atm_fee": "ATM Surcharge Fee",
        "overdraft_fee": "Courtesy Pay Fee",
    }

    def purchase(self, name, city, state, day, recurring):
        if self.rng.random() < 0.25:
            # Older core system: everything in lower case.
            return f"pos purchase {name.lower()} {city.lower()} {state.lower()}"
        return f"Debit Card Purchase - {name.title()} {city.title()} {state}"

    def refund(self, name, city, state, day):
        return f"Debit Card Credit - {name.title()} {city.title()} {state}"

    def ach(self, originator, entry, incoming, day):
        verb = "ACH Deposit" if incoming else "ACH Withdrawal"
        return f"{verb} {originator.title()} {entry.title()}"

    def internal_transfer(self, other, incoming, day):
        direction = "From" if incoming else "To"
        return f"Online Transfer {direction} {other.short.title()} ****{other.last4}"

    def atm(self, city, state, day):
        return f"ATM Withdrawal {city.title()} {state} Card *{self.last4}"

    def interest(self, day):
        return "Dividend Deposit"


class _OnlineSavingsStyle(_Account):
    kind = SAVINGS
    short = "SAV"

    def transfer(self, other, incoming, day):
        if incoming:
            return f"Deposit from {other.bank.upper()} XXXXXX{other.last4}"
        return f"Withdrawal to {other.bank.upper()} XXXXXX{other.last4}"

    def ach(self, originator, entry, incoming, day):
        return f"{originator} {entry}"

    def interest(self, day):
        return "Interest Paid"


class _Card(_Account):
    """A credit card that prints the card-network name/city/state layout."""

    kind = CREDIT
    short = "CRD"
    width = 25
    upper = False
    payments_received = ("PAYMENT THANK YOU",)
    payment_ach = ("CREDIT CARD", "PAYMENT")
    fees = {
        "annual_card_fee": "ANNUAL MEMBERSHIP FEE",
        "interest_charge": "PURCHASE INTEREST CHARGE",
        "late_payment_fee": "LATE FEE",
        "foreign_transaction_fee": "FOREIGN TRANSACTION FEE",
    }

    def purchase(self, name, city, state, day, recurring):
        if self.upper:
            name = name.upper()
        return _network(name, city, state, self.width)

    def payment_received(self, day):
        return self.rng.choice(self.payments_received)


class _ChaseCard(_Card):
    payments_received = ("Payment Thank You-Mobile", "AUTOMATIC PAYMENT - THANK YOU")
    payment_ach = ("CHASE CREDIT CRD", "AUTOPAY")


class _CitiCard(_Card):
    width = 22
    upper = True
    payments_received = ("ONLINE PAYMENT, THANK YOU", "AUTOPAY AUTO-PMT")
    payment_ach = ("CITI CARD ONLINE", "PAYMENT")


class _BofACard(_Card):
    payments_received = ("BA ELECTRONIC PAYMENT", "PAYMENT - THANK YOU")
    payment_ach = ("BANK OF AMERICA", "ONLINE PMT")


class _CapitalOneCard(_Card):
    width = 22
    upper = True
    payment_ach = ("CAPITAL ONE", "CRCARDPMT")

    def payment_received(self, day):
        return f"CAPITAL ONE MOBILE PYMT AuthDate {self.calendar.mmdd[day]}"


class _DiscoverCard(_Card):
    width = 23
    upper = True
    payments_received = ("INTERNET PAYMENT - THANK YOU", "DIRECTPAY FULL BALANCE")
    payment_ach = ("DISCOVER", "E-PAYMENT")


class _AmexCard(_Card):
    payments_received = ("AUTOPAY PAYMENT - THANK YOU", "ONLINE PAYMENT - THANK YOU")
    payment_ach = ("AMEX EPAYMENT", "ACH PMT")
    fees = {
        **_Card.fees,
        "interest_charge": "INTEREST CHARGE ON PAY OVER TIME PURCHASES",
    }

    def purchase(self, name, city, state, day, recurring):
        # Fixed columns, padding kept: name 22, city 16, then the state.
        return f"{name[:21].upper():<22}{city[:15]:<16}{state}"


class _AppleCard(_Card):
    payment_ach = ("APPLECARD GSBANK", "PAYMENT")

    def purchase(self, name, city, state, day, recurring):
        return f"{name.title()} {city.title()} {state} USA"

    def payment_received(self, day):
        last4 = self.household.checking.last4
        return f"ACH Deposit Internet Transfer From Account Ending In {last4}"


# (bank, product, export style, relative popularity)
_CHECKING_PRODUCTS = (
    ("Chase", "Total Checking", _ChaseStyle, 5),
    ("Wells Fargo", "Everyday Checking", _WellsStyle, 4),
    ("Bank of America", "Adv Plus Banking", _BofAStyle, 4),
    ("US Bank", "Smartly Checking", _USBankStyle, 2),
    ("PNC", "Virtual Wallet", _USBankStyle, 1.5),
    ("Alliant CU", "High-Rate Checking", _CreditUnionStyle, 1),
    ("Navy Federal CU", "Free Active Duty Checking", _CreditUnionStyle, 1),
)
_SAME_BANK_SAVINGS = {
    "Chase": "Savings",
    "Wells Fargo": "Way2Save Savings",
    "Bank of America": "Advantage Savings",
    "US Bank": "Standard Savings",
    "PNC": "Growth Savings",
    "Alliant CU": "High-Rate Savings",
    "Navy Federal CU": "Share Savings",
}
_ONLINE_SAVINGS = (
    ("Ally", "Online Savings"),
    ("Marcus", "Online Savings"),
    ("Capital One", "360 Performance Savings"),
)
# (bank, product, export style, annual fee in dollars, relative popularity)
_CARD_PRODUCTS = (
    ("Chase", "Sapphire Preferred", _ChaseCard, 95, 3),
    ("Chase", "Freedom Unlimited", _ChaseCard, 0, 4),
    ("Citi", "Double Cash", _CitiCard, 0, 3),
    ("Bank of America", "Customized Cash", _BofACard, 0, 2),
    ("Capital One", "Quicksilver", _CapitalOneCard, 0, 3),
    ("Discover", "it Card", _DiscoverCard, 0, 2),
    ("American Express", "Gold Card", _AmexCard, 325, 1.5),
    ("American Express", "Blue Cash Everyday", _AmexCard, 0, 2),
    ("Apple", "Card", _AppleCard, 0, 2),
)
_CHECKING_CUM = list(itertools.accumulate(p[3] for p in _CHECKING_PRODUCTS))
_CARD_CUM = list(itertools.accumulate(p[4] for p in _CARD_PRODUCTS))
_METRO_CUM = list(itertools.accumulate(m[2] for m in mc.METROS))

# Account layouts and how common they are.
_LAYOUTS = (
    ((CHECKING, SAVINGS), 0.20),
    ((CHECKING, CREDIT), 0.30),
    ((CHECKING, CREDIT, SAVINGS), 0.30),
    ((CHECKING, CREDIT, CREDIT), 0.10),
    ((CHECKING, CREDIT, CREDIT, SAVINGS), 0.10),
)
_LAYOUT_CUM = list(itertools.accumulate(share for _, share in _LAYOUTS))

_BY = mc.BY_KEY
_EMPLOYERS = tuple(m for m in mc.of_kind(mc.EMPLOYER) if not m.tags)
_TAX_REFUNDS = mc.tagged("tax_refund")
_SIDE_INCOME = mc.tagged("side_income")


def _pick(rng, cum, items):
    return items[bisect.bisect(cum, rng.random() * cum[-1])]


def _weighted_sample(rng, items, k):
    """``k`` distinct items, each drawn with probability by ``weight``."""
    pool = list(items)
    chosen = []
    for _ in range(min(k, len(pool))):
        cum = list(itertools.accumulate(m.weight for m in pool))
        chosen.append(pool.pop(bisect.bisect(cum, rng.random() * cum[-1])))
    return chosen


def _cents(rng, median, sigma):
    if sigma <= 0:
        return round(median * 100)
    return round(rng.lognormvariate(math.log(median), sigma) * 100)


class _Household:
    """One household: its accounts, habits and a year of statements."""

    def __init__(self, number, seed, quota, calendar, params):
        self.number = number
        self.quota = quota
        self.calendar = calendar
        self.params = params
        self.rng = rng = random.Random(seed)
        # Labels draw from their own stream, a fixed number of draws per
        # row: the transactions do not change with the label fraction, and
        # the rows labeled at a lower fraction stay labeled at a higher one.
        self.label_rng = random.Random(rng.getrandbits(64))
        metro = _pick(rng, _METRO_CUM, mc.METROS)
        self.state = metro[0]
        self.towns = metro[1]
        self.holder = rng.choice(_HOLDERS)
        self.events = []
        self._open_accounts()
        self._shopping_habits()

    # Set-up ------------------------------------------------------------------
    def _open_accounts(self):
        rng = self.rng
        layout = _pick(rng, _LAYOUT_CUM, [layout for layout, _ in _LAYOUTS])
        last4s = rng.sample(range(1000, 10000), len(layout))
        bank, product, style, _ = _pick(rng, _CHECKING_CUM, _CHECKING_PRODUCTS)
        self.checking = style(self, bank, product, str(last4s[0]))
        self.savings = None
        self.cards = []
        for kind, last4 in zip(layout[1:], last4s[1:], strict=True):
            if kind == SAVINGS:
                if rng.random() < 0.5:
                    account = style(self, bank, _SAME_BANK_SAVINGS[bank], str(last4))
                    account.kind = SAVINGS
                    account.short = "SAV"
                else:
                    name, product = rng.choice(_ONLINE_SAVINGS)
                    account = _OnlineSavingsStyle(self, name, product, str(last4))
                self.savings = account
            else:
                bank_name, product, card_style, annual_fee, _ = _pick(
                    rng, _CARD_CUM, _CARD_PRODUCTS
                )
                card = card_style(self, bank_name, product, str(last4))
                card.annual_fee = annual_fee
                self.cards.append(card)
        # Where discretionary spending goes: mostly the first card.
        spend = [self.checking, *self.cards]
        weights = [0.2, 0.6] + [0.2] * (len(self.cards) - 1) if self.cards else [1.0]
        self.spend_accounts = spend
        self.spend_cum = list(itertools.accumulate(weights))

    def _shopping_habits(self):
        rng = self.rng
        weights = []
        for merchant in _SHOP_MERCHANTS:
            if merchant.regions is not None and self.state not in merchant.regions:
                weights.append(0.0)
                continue
            factor = rng.lognormvariate(0.0, 0.8)
            if rng.random() < 0.35:
                factor *= 0.05  # a store this household rarely visits
            weights.append(merchant.weight * factor)
        self.merchant_cum = list(itertools.accumulate(weights))
        self.locations = {}
        # Trips: days on which local shopping happens in another metro.
        self.away = {}
        for _ in range(
            rng.choice((0, 1, 1, 2, 2, 3)) * max(1, self.params.months // 12)
        ):
            metro = _pick(rng, _METRO_CUM, mc.METROS)
            if metro[1] is self.towns:
                continue
            first = rng.randrange(self.calendar.size)
            for day in range(first, min(first + rng.randint(2, 7), self.calendar.size)):
                self.away[day] = metro[1]

    def _location(self, index, merchant, day):
        """(name field, city, state) of a purchase, minus per-purchase codes."""
        towns = self.away.get(day)
        if towns is not None and merchant.location is None:
            return self._new_location(merchant, towns)
        options = self.locations.get(index)
        if options is None:
            # One usual store, sometimes a second one near work.
            options = [self._new_location(merchant, self.towns)]
            if merchant.location is None and self.rng.random() < 0.4:
                options.append(self._new_location(merchant, self.towns))
            self.locations[index] = options
        if len(options) > 1 and self.rng.random() < 0.3:
            return options[1]
        return options[0]

    def _new_location(self, merchant, towns):
        rng = self.rng
        name = merchant.descriptor
        if merchant.store:
            name += merchant.store.format(rng.randint(*merchant.store_range))
        if merchant.location:
            city, state = merchant.location
        else:
            city, state = rng.choice(towns)
        return name, city, state

    # Events ------------------------------------------------------------------
    def _add(self, day, account, text, cents, category, merchant, kind):
        self.events.append((day, account, text, cents, category, merchant.key, kind))

    def _card_line(self, account, merchant, day, cents, kind, recurring=True):
        """A card charge for a non-discretionary merchant (subscription, bill)."""
        name, city, state = self._location(-1 - _merchant_index(merchant), merchant, -1)
        if merchant.code:
            name += _code(self.rng, merchant.code)
        lag = self.rng.choice(_CARD_LAGS)
        text = account.purchase(name, city, state, day, recurring)
        self._add(
            self.calendar.clamp(day + lag),
            account,
            text,
            -cents,
            merchant.category,
            merchant,
            kind,
        )

    def _ach(self, day, account, merchant, cents, kind, incoming=False):
        originator, entry = merchant.ach
        text = account.ach(originator, entry, incoming, day)
        self._add(day, account, text, cents, merchant.category, merchant, kind)

    def _schedule_income(self):
        rng, cal = self.rng, self.calendar
        earners = 1 if rng.random() < 0.55 else 2
        for earner, employer in enumerate(rng.sample(_EMPLOYERS, earners)):
            net = _cents(rng, employer.median, 0.25)
            if earner == 0 or rng.random() < 0.7:
                # Biweekly on Fridays, starting at one of the first two.
                fridays = [i for i in range(min(14, cal.size)) if cal.weekday[i] == 4]
                if not fridays:
                    continue
                days = range(rng.choice(fridays), cal.size, 14)
            else:
                days = []
                for first, length, _ in cal.months:
                    for dom in (15, length):
                        i = first + dom - 1
                        if 0 <= i < cal.size:
                            weekday = cal.weekday[i]
                            days.append(max(0, i - (weekday - 4)) if weekday > 4 else i)
            for day in days:
                cents = net
                if rng.random() < 0.12:
                    cents = round(net * rng.uniform(0.92, 1.25))  # overtime, bonus
                self._ach(day, self.checking, employer, cents, PAYCHECK, incoming=True)
        for refund in _TAX_REFUNDS:
            if rng.random() < (0.6 if refund.key == "irs_tax_refund" else 0.3):
                for first, _, month in cal.months:
                    if month != 3:
                        continue
                    # Refunds arrive between early March and mid-April.
                    day = first + rng.randint(0, 45)
                    if 0 <= day < cal.size:
                        cents = _cents(rng, refund.median, refund.sigma)
                        self._ach(
                            cal.business(day),
                            self.checking,
                            refund,
                            cents,
                            OTHER_INCOME,
                            incoming=True,
                        )
        if rng.random() < 0.15:
            gig = rng.choice(_SIDE_INCOME)
            for _ in range(cal.size // 12):
                day = cal.business(rng.randrange(cal.size))
                cents = _cents(rng, gig.median, gig.sigma)
                self._ach(day, self.checking, gig, cents, OTHER_INCOME, True)

    def _monthly(self, merchant, day_of_month, cents_for, kind, account=None):
        """Charge ``merchant`` every month; ``account`` None means ACH."""
        cal = self.calendar
        for day in cal.monthly(day_of_month):
            cents = cents_for(day)
            if account is None:
                self._ach(cal.business(day), self.checking, merchant, -cents, kind)
            else:
                self._card_line(account, merchant, day, cents, kind)

    def _bill_account(self, card_share):
        if self.cards and self.rng.random() < card_share:
            return self.rng.choice(self.cards)
        return None

    def _schedule_bills(self):
        rng, cal = self.rng, self.calendar
        housing = mc.tagged("rent") if rng.random() < 0.6 else mc.tagged("mortgage")
        home = rng.choice(housing)
        rent = round(_cents(rng, home.median, home.sigma), -2)
        self._monthly(home, rng.choice((1, 1, 1, 2, 3, 5)), lambda d: rent, HOUSING)
        if "mortgage" in home.tags and rng.random() < 0.3:
            hoa = _BY["hoa_dues"]
            dues = round(_cents(rng, hoa.median, hoa.sigma), -2)
            self._monthly(hoa, rng.randint(1, 10), lambda d: dues, HOUSING)

        regional = [m for m in mc.tagged("power") if self.state in m.regions]
        chosen = [rng.choice(regional)] if regional else []
        for tag, share in (
            ("water", 0.5),
            ("internet", 0.9),
            ("phone", 0.95),
            ("auto_insurance", 0.75),
            ("home_insurance", 0.6),
            ("life_insurance", 0.2),
        ):
            if rng.random() < share:
                chosen.append(rng.choice(mc.tagged(tag)))
        for bill in chosen:
            account = self._bill_account(0.4)
            if "power" in bill.tags:
                base = _cents(rng, bill.median, 0.25)

                def seasonal(day, base=base):
                    # Peaks in mid-winter and mid-summer.
                    month = cal.days[day].month
                    swing = 1 + 0.25 * math.cos(4 * math.pi * (month - 1) / 12)
                    return max(1500, round(base * swing * rng.lognormvariate(0, 0.1)))

                self._monthly(bill, rng.randint(3, 27), seasonal, BILL, account)
            else:
                fixed = _cents(rng, bill.median, bill.sigma)
                self._monthly(
                    bill, rng.randint(1, 28), lambda d, c=fixed: c, BILL, account
                )

        for loan, share in (("nelnet", 0.1), ("navient", 0.08), ("mohela", 0.07)):
            if rng.random() < share:
                merchant = _BY[loan]
                amount = _cents(rng, merchant.median, merchant.sigma)
                self._monthly(merchant, rng.randint(1, 28), lambda d, c=amount: c, LOAN)
        if rng.random() < 0.3:
            merchant = rng.choice(
                (_BY["toyota_financial"], _BY["ally_auto"], _BY["honda_financial"])
            )
            amount = _cents(rng, merchant.median, merchant.sigma)
            self._monthly(merchant, rng.randint(1, 28), lambda d, c=amount: c, LOAN)

    def _schedule_subscriptions(self):
        rng, cal = self.rng, self.calendar
        for plan in _weighted_sample(rng, mc.of_kind(mc.MONTHLY), rng.randint(1, 7)):
            price = round(rng.choice(plan.prices) * 100)
            account = rng.choice(self.cards) if self.cards else self.checking
            for day in cal.monthly(rng.randint(1, 28)):
                self._card_line(account, plan, day, price, SUBSCRIPTION)
        for plan in _weighted_sample(rng, mc.of_kind(mc.ANNUAL), rng.randint(0, 3)):
            price = round(rng.choice(plan.prices) * 100)
            account = rng.choice(self.cards) if self.cards else self.checking
            renewal = rng.randrange(365)
            for day in range(renewal, cal.size, 365):
                self._card_line(account, plan, day, price, SUBSCRIPTION)

    def _schedule_money_movement(self):
        rng, cal = self.rng, self.calendar
        if self.savings:
            saving = rng.choice((100, 150, 200, 250, 300, 500, 750, 1000, 1500)) * 100
            for day in cal.monthly(rng.randint(1, 28)):
                self._transfer(cal.business(day), self.checking, self.savings, saving)
            for _ in range(rng.choice((0, 1, 2, 3)) * max(1, cal.size // 365)):
                back = rng.choice((200, 300, 500, 1000, 2000)) * 100
                day = cal.business(rng.randrange(cal.size))
                self._transfer(day, self.savings, self.checking, back)
            interest = rng.lognormvariate(math.log(12), 1.0)
            for day in cal.monthly(31):
                interest *= 1.01
                cents = max(1, round(interest * 100))
                text = self.savings.interest(day)
                self._add(
                    day,
                    self.savings,
                    text,
                    cents,
                    mc.INCOME,
                    _BY["interest_paid"],
                    INTEREST,
                )

        peers = (_BY["venmo"], _BY["zelle"], _BY["cash_app"])
        habit = rng.choice((0, 0.5, 1, 2, 4))
        for _ in range(round(habit * len(cal.months))):
            peer = rng.choice(peers)
            day = rng.randrange(cal.size)
            self._ach(
                day, self.checking, peer, -_cents(rng, peer.median, peer.sigma), PEER
            )
        if habit and rng.random() < 0.5:
            cashout = _BY["venmo_cashout"]
            for _ in range(len(cal.months) // 2):
                day = rng.randrange(cal.size)
                cents = _cents(rng, cashout.median, cashout.sigma)
                self._ach(day, self.checking, cashout, cents, PEER, incoming=True)

        if rng.random() < 0.4:
            atm, atm_fee = _BY["atm_withdrawal"], _BY["atm_fee"]
            fee_cents = rng.choice((250, 300, 350))
            for _ in range(rng.randint(1, 3) * len(cal.months) // 2):
                day = rng.randrange(cal.size)
                city, state = rng.choice(self.towns)
                cents = rng.choice((20, 40, 60, 80, 100, 200, 300)) * 100
                self._add(
                    day,
                    self.checking,
                    self.checking.atm(city, state, day),
                    -cents,
                    mc.TRANSFERS,
                    atm,
                    ATM,
                )
                if rng.random() < 0.4:
                    self._add(
                        day,
                        self.checking,
                        self.checking.fee(atm_fee, day),
                        -fee_cents,
                        mc.FEES,
                        atm_fee,
                        FEE,
                    )

    def _transfer(self, day, source, target, cents):
        merchant = _BY["account_transfer"]
        self._add(
            day,
            source,
            source.transfer(target, False, day),
            -cents,
            mc.TRANSFERS,
            merchant,
            TRANSFER,
        )
        self._add(
            day,
            target,
            target.transfer(source, True, day),
            cents,
            mc.TRANSFERS,
            merchant,
            TRANSFER,
        )

    def _schedule_fees(self):
        rng, cal = self.rng, self.calendar
        if rng.random() < 0.15:
            fee = _BY["monthly_service_fee"]
            amount = rng.choice((500, 1200, 1500))
            for day in cal.monthly(31):
                if rng.random() < 0.75:
                    self._add(
                        day,
                        self.checking,
                        self.checking.fee(fee, day),
                        -amount,
                        mc.FEES,
                        fee,
                        FEE,
                    )
        if rng.random() < 0.08:
            fee = _BY["overdraft_fee"]
            for _ in range(rng.randint(1, 4)):
                day = cal.business(rng.randrange(cal.size))
                self._add(
                    day,
                    self.checking,
                    self.checking.fee(fee, day),
                    -3500,
                    mc.FEES,
                    fee,
                    FEE,
                )
        for card in self.cards:
            if card.annual_fee:
                fee = _BY["annual_card_fee"]
                for day in range(rng.randrange(365), cal.size, 365):
                    self._add(
                        day,
                        card,
                        card.fee(fee, day),
                        -card.annual_fee * 100,
                        mc.FEES,
                        fee,
                        FEE,
                    )
            if rng.random() < 0.2:
                fee = _BY["interest_charge"]
                level = rng.lognormvariate(math.log(30), 0.6)
                for day in cal.monthly(rng.randint(1, 28)):
                    cents = round(level * rng.uniform(0.7, 1.3) * 100)
                    self._add(day, card, card.fee(fee, day), -cents, mc.FEES, fee, FEE)
            if rng.random() < 0.04:
                fee = _BY["late_payment_fee"]
                day = rng.randrange(cal.size)
                self._add(
                    day,
                    card,
                    card.fee(fee, day),
                    -rng.choice((2900, 4000)),
                    mc.FEES,
                    fee,
                    FEE,
                )
            if rng.random() < 0.06:
                fee = _BY["foreign_transaction_fee"]
                for _ in range(rng.randint(1, 4)):
                    day = rng.randrange(cal.size)
                    cents = _cents(rng, 3.5, 0.8)
                    self._add(
                        day, card, card.fee(fee, day), -max(cents, 5), mc.FEES, fee, FEE
                    )

    def _plan_card_payments(self):
        """(card, statement month, payment day) for every payment in the window."""
        plans = []
        for card in self.cards:
            due = self.rng.randint(3, 25)
            for m, (first, length, _) in enumerate(self.calendar.months[1:], start=1):
                day = first + min(due, length) - 1
                if 0 <= day < self.calendar.size:
                    plans.append((card, m - 1, self.calendar.business(day)))
        return plans

    def _pay_cards(self, plans):
        month_of_day = self.calendar.month_of_day
        spent = {}
        for day, account, _, cents, _, _, kind in self.events:
            if account.kind == CREDIT and kind != CARD_PAYMENT:
                slot = (account, month_of_day[day])
                spent[slot] = spent.get(slot, 0) - cents
        merchant = _BY["card_payment"]
        for card, month, day in plans:
            # Autopay of the statement balance; a quiet month still pays the
            # minimum.
            cents = max(spent.get((card, month), 0), 2500)
            self._add(
                day,
                self.checking,
                self.checking.card_payment(card, day),
                -cents,
                mc.PAYMENTS,
                merchant,
                CARD_PAYMENT,
            )
            self._add(
                day,
                card,
                card.payment_received(day),
                cents,
                mc.PAYMENTS,
                merchant,
                CARD_PAYMENT,
            )

    def _shop(self, count):
        """``count`` discretionary purchases, about 1 % of them later refunded."""
        rng, cal = self.rng, self.calendar
        refunds = round(count * REFUND_RATE)
        purchases = count - refunds
        merchant_cum, total_weight = self.merchant_cum, self.merchant_cum[-1]
        day_cum, day_total = cal.day_cum, cal.day_cum[-1]
        spend_cum, spend_total = self.spend_cum, self.spend_cum[-1]
        spend_accounts = self.spend_accounts
        last_day = cal.size - 1
        lags = _CARD_LAGS
        events = self.events
        refundable = []
        lognorm, rand = rng.lognormvariate, rng.random
        for _ in range(purchases):
            index = bisect.bisect(merchant_cum, rand() * total_weight)
            merchant = _SHOP_MERCHANTS[index]
            day = bisect.bisect(day_cum, rand() * day_total)
            account = spend_accounts[bisect.bisect(spend_cum, rand() * spend_total)]
            category = merchant.category
            rule = merchant.rule
            if rule is None:
                cents = round(lognorm(_LOG_MEDIAN[index], merchant.sigma) * 100)
                cents = min(max(cents, _LOW[index]), _HIGH[index])
            elif rule == mc.FUEL:
                if rand() < FUEL_SNACK_SHARE:
                    cents = min(max(round(lognorm(1.87, 0.45) * 100), 150), 1499)
                    category = mc.DINING
                else:
                    cents = round(lognorm(_LOG_MEDIAN[index], merchant.sigma) * 100)
                    cents = min(max(cents, FUEL_MIN_CENTS), 15000)
            else:
                cents = round(lognorm(_LOG_MEDIAN[index], merchant.sigma) * 100)
                cents = min(max(cents, _LOW[index]), _HIGH[index])
                small, large = _THRESHOLDS[index]
                if rule == mc.MARKETPLACE:
                    if cents >= small:
                        category = mc.ELECTRONICS
                elif cents < small:
                    category = mc.HOUSEHOLD
                elif large and cents >= large:
                    category = mc.ELECTRONICS
                elif account.kind != CHECKING and not _CLUB[index]:
                    category = mc.SHOPPING
            name, city, state = self._location(index, merchant, day)
            if merchant.code:
                name += _code(rng, merchant.code)
            elif merchant.variants:
                name += rng.choice(merchant.variants)
            text = account.purchase(name, city, state, day, False)
            posted = day + lags[int(rand() * 12)]
            if posted > last_day:
                posted = last_day
            events.append(
                (posted, account, text, -cents, category, merchant.key, PURCHASE)
            )
            if merchant.refundable:
                refundable.append(
                    (day, account, name, city, state, cents, category, merchant)
                )
        for _ in range(refunds):
            if not refundable:
                self._shop_fallback()
                continue
            day, account, name, city, state, cents, category, merchant = rng.choice(
                refundable
            )
            day = min(day + rng.randint(3, 25), last_day)
            if rand() < 0.3:
                cents = max(100, round(cents * rng.uniform(0.2, 0.8)))
            text = account.refund(name, city, state, day)
            events.append((day, account, text, cents, category, merchant.key, REFUND))

    def _shop_fallback(self):
        """A purchase standing in for a refund when nothing was refundable."""
        merchant = _BY["starbucks"]
        day = self.rng.randrange(self.calendar.size)
        name, city, state = self._location(_SHOP_INDEX[merchant.key], merchant, day)
        text = self.checking.purchase(name, city, state, day, False)
        self._add(
            day,
            self.checking,
            text,
            -_cents(self.rng, 7, 0.3),
            merchant.category,
            merchant,
            PURCHASE,
        )

    # Output ------------------------------------------------------------------
    def rows(self):
        self._schedule_income()
        self._schedule_bills()
        self._schedule_subscriptions()
        self._schedule_money_movement()
        self._schedule_fees()
        payments = self._plan_card_payments()
        fixed = len(self.events) + 2 * len(payments)
        self._shop(max(0, self.quota - fixed))
        self._pay_cards(payments)

        events = self.events
        rng = self.rng
        if len(events) > self.quota:
            keep = sorted(rng.sample(range(len(events)), self.quota))
            events = [events[i] for i in keep]
        events.sort(key=_by_day)

        days = self.calendar.days
        fraction = self.params.label_fraction
        getrandbits = rng.getrandbits
        draw = self.label_rng.random
        out = []
        for day, account, text, cents, category, key, kind in events:
            label = source = rule = None
            labeled, which, noise, pick = draw(), draw(), draw(), draw()
            if labeled < fraction:
                source = _LABEL_SOURCES[bisect.bisect(_LABEL_CUM, which)]
                if source == RULE:
                    spec = _demo_rule(text, cents, account.name, days[day].day)
                    if spec is None:
                        source = HUMAN  # no rule matches: a person labeled it
                    else:
                        label, rule = spec["category"], spec["name"]
                if source == HUMAN:
                    label = category
                elif source == IMPORT:
                    if noise < IMPORT_NOISE:
                        wrong = CONFUSABLE[category]
                        label = wrong[int(pick * len(wrong))]
                    else:
                        label = category
            out.append(
                SyntheticTxn(
                    account.name,
                    f"{getrandbits(64):016x}",
                    days[day],
                    text,
                    f"{cents / 100:.2f}",
                    label,
                    source,
                    rule,
                    category,
                    key,
                    kind,
                )
            )
        return out


def _demo_rule(text, cents, account, day):
    """The demo rule a rule run would label this row with, or None."""
    amount = Decimal(cents) / 100
    for spec, matches in _DEMO_RULES:
        if matches(text, None, amount, account, day):
            return spec
    return None


def _by_day(event):
    return event[0]


_MERCHANT_INDEX = {m.key: i for i, m in enumerate(mc.MERCHANTS)}
_SHOP_INDEX = {m.key: i for i, m in enumerate(_SHOP_MERCHANTS)}


def _merchant_index(merchant):
    return _MERCHANT_INDEX[merchant.key]


# Per-merchant amount parameters, precomputed for the purchase loop.
_LOG_MEDIAN = [math.log(m.median) if m.median else 0.0 for m in _SHOP_MERCHANTS]
_LOW = [round(m.low * 100) for m in _SHOP_MERCHANTS]
_HIGH = [round(m.high * 100) for m in _SHOP_MERCHANTS]
_CLUB = ["club" in m.tags for m in _SHOP_MERCHANTS]
_THRESHOLDS = [
    (round(m.thresholds[0] * 100), round(m.thresholds[1] * 100))
    for m in _SHOP_MERCHANTS
]
