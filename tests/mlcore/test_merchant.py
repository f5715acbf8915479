"""Merchant keys and tokens from raw bank descriptions.

The descriptions imitate real exports: credit-card lines, debit POS lines
(Chase, Wells Fargo, Bank of America, PNC style), Amex padded columns, ACH
lines with DES:/INDN: fields, Zelle, Venmo and PayPal transfers, payroll,
utilities, subscriptions, travel, in upper, lower and title case. No database
is needed.
"""

import polars as pl
import pytest

from mlcore.features.merchant import (
    merchant_expr,
    normalize_merchant,
    tokenize,
    tokens_expr,
)

# (raw description, expected merchant key)
MERCHANT_CASES = [
    # Restaurants and cafes through Square and Toast.
    ("SQ *BLUE BOTTLE COFFEE #12 OAKLAND CA", "blue bottle coffee"),
    ("TST* SHAKE SHACK 1234 NEW YORK NY", "shake shack"),
    ("TST*JOE'S PIZZA 0042 BROOKLYN NY", "joes pizza"),
    ("SQ *TACOS EL GORDO Las Vegas NV", "tacos el gordo"),
    ("TOAST *PHO SAIGON SEATTLE WA", "pho saigon"),
    ("CKE*CAFE MOGADOR NEW YORK NY", "cafe mogador"),
    # Debit POS wrappers with dates, card masks and trailing reference numbers.
    ("POS DEBIT SHEETZ 0412 ALTOONA PA", "sheetz"),
    ("CHECKCARD 1203 CHEVRON 0091234 SAN DIEGO CA 24431065337000123456789", "chevron"),
    (
        "PURCHASE AUTHORIZED ON 12/03 PANERA BREAD #601234 BOSTON MA "
        "S465337123456789 CARD 4417",
        "panera bread",
    ),
    ("VISA CHECK CRD 4417 KROGER #743 COLUMBUS OH", "kroger"),
    ("DEBIT CARD PURCHASE XXXXX1234 SAFEWAY #1234 OAKLAND CA", "safeway"),
    ("Card Purchase With Pin 12/03 Wawa 8130 Philadelphia PA Card 1234", "wawa"),
    # Gas stations: brand numbers survive, store numbers do not.
    ("76 0212345 SAN JOSE CA", "76"),
    ("7-ELEVEN 34567 SPRINGFIELD VA", "7 eleven"),
    ("SHELL OIL 57444345 ANYTOWN TX", "shell"),
    ("EXXONMOBIL 4738 SPRINGFIELD IL", "exxonmobil"),
    ("CIRCLE K # 05432 PHOENIX AZ", "circle k"),
    ("COSTCO GAS #0123 SEATTLE WA", "costco gas"),
    # Pharmacies and groceries.
    ("CVS/PHARMACY #08123 BOSTON MA", "cvs"),
    ("RITE AID STORE - 1234 PHILADELPHIA PA", "rite aid"),
    ("TRADER JOE'S #123 QPS LOS ANGELES CA", "trader joes"),
    ("H-E-B #123 SAN ANTONIO TX", "heb"),
    ("COSTCO WHSE #0123 SEATTLE WA", "costco"),
    ("ALDI 72045 CHICAGO IL", "aldi"),
    # Names that contain state codes, city words or numbers.
    ("SQ *PAPA JOHNS PA", "papa johns"),
    ("SQ *CAFE CA", "cafe"),
    ("IN-N-OUT BURGER 123 IRVINE CA", "in n out"),
    ("CHICK-FIL-A #01234 ATLANTA GA", "chick fil a"),
    ("24 HOUR FITNESS USA 800-432-6348 CA", "24 hour fitness"),
    ("JACK IN THE BOX 1234 SAN DIEGO CA", "jack in the box"),
    ("CITY OF AUSTIN TX", "city of austin"),
    ("IKEA EAST PALO ALTO CA", "ikea"),
    ("PHILZ COFFEE SAN FRANCISC CA", "philz coffee"),
    ("THE HOME DEPOT #0654 BERKELEY CA", "home depot"),
    ("FOREVER 21 #1234 NEW YORK NY", "forever"),
    # Amex-style padded columns.
    ("APPLE.COM/BILL      866-712-7753        CA", "apple"),
    ("DELTA AIR LINES     ATLANTA", "delta air lines"),
    ("UBER EATS           help.uber.com       CA", "uber eats"),
    ("JOES DINER          SMALLVILLE          KS", "joes diner"),
    # Subscriptions and online services.
    ("NETFLIX.COM LOS GATOS CA", "netflix"),
    ("Spotify USA", "spotify"),
    ("HULU 877-8244858 CA", "hulu"),
    ("GOOGLE *YouTube TV g.co/helppay# CA", "youtube tv"),
    ("GOOGLE *Google One", "google one"),
    ("GOOGLE *SERVICES", "google services"),
    ("APL*ITUNES.COM/BILL 866-712-7753 CA", "apple"),
    ("AMAZON PRIME*M12AB3CD4 Amzn.com/bill WA", "amazon prime"),
    ("AMZN Fresh*2B4XY12K3 Amzn.com/bill WA", "amazon fresh"),
    ("PAYPAL *NETFLIX 4029357733 CA", "netflix"),
    # Utilities, phone, insurance, card and tax payments (ACH).
    ("COMCAST DES:CABLE ID:123456 INDN:JOHN DOE CO ID:0000123 WEB", "comcast"),
    ("XFINITY MOBILE 888-936-4968 PA", "comcast"),
    (
        "PGANDE DES:WEB ONLINE ID:1234567890 INDN:JOHN DOE CO ID:9000123456 WEB",
        "pgande",
    ),
    ("VZWRLSS*APOCC VISB", "verizon"),
    ("ATT*BILL PAYMENT 800-331-0500 TX", "at&t"),
    ("T-MOBILE*AUTO PAY 800-937-8997 WA", "t mobile"),
    ("GEICO *AUTO 800-841-3000 DC", "geico auto"),
    ("DISCOVER E-PAYMENT 1234 WEB ID: 2510020270", "discover"),
    ("IRS DES:USATAXPYMT ID:123456789 INDN:JOHN DOE CO ID:3387702000 CCD", "irs"),
    (
        "CAPITAL ONE DES:MOBILE PMT ID:1234567 INDN:JOHN DOE CO ID:9541719318 WEB",
        "capital one",
    ),
    ("ONLINE PMT DUKE ENERGY CONF# 8H2K3L9", "duke energy"),
    # Payroll and other deposits.
    ("GUSTO DES:PAY 123456 ID:7TY8ZX INDN:JOHN DOE CO ID:9138500001 PPD", "gusto"),
    ("VENMO CASHOUT PPD ID: 5264681992", "venmo cashout"),
    ("PAYPAL INST XFER 1234567 WEB ID: PAYPALSI77", "paypal"),
    # Person-to-person transfers keep the counterparty.
    ('Zelle payment from JANE SMITH for "rent"; Conf# t1x2y3z4', "zelle jane smith"),
    ("ZELLE TO DOE JOHN ON 12/03 REF # PP0ABC123", "zelle doe john"),
    ("VENMO *JOHN SMITH", "venmo john smith"),
    # Card payments, transfers, ATM, checks.
    ("AUTOPAY PAYMENT - THANK YOU", "thank you"),
    ("ONLINE PAYMENT, THANK YOU", "thank you"),
    ("ONLINE TRANSFER TO SAV XXXXXX1234 REF #IB0XYZ", "transfer"),
    ("Online Transfer from CHK ...5678 transaction#: 1234567890", "transfer"),
    ("NON-CHASE ATM WITHDRAW 1203 123 MAIN ST ANYTOWN NY", "atm"),
    ("CHECK # 1234", "check"),
    ("MOBILE DEPOSIT : REF NUMBER :123456789", "mobile deposit"),
    # Travel with ticket, booking and reservation codes.
    ("DELTA AIR LINES 0062345678901 ATLANTA GA", "delta air lines"),
    ("AMERICAN AIR0012345678901 FORT WORTH TX", "american airlines"),
    ("SOUTHWES 5261234567890 DALLAS TX", "southwest airlines"),
    ("HILTON GARDEN INN #1234 ORLANDO FL", "hilton garden inn"),
    ("AIRBNB * HMQ4ZXYW", "airbnb"),
    ("EXPEDIA 7234567890123 EXPEDIA.COM WA", "expedia"),
    ("MARRIOTT DOWNTOWN CONF#84720193 PHOENIX AZ", "marriott downtown"),
    # Rides and delivery.
    ("LYFT *RIDE SUN 8PM SAN FRANCISCO CA", "lyft"),
    ("UBER *TRIP 8H2K3 help.uber.com CA", "uber"),
    ("DD *DOORDASH CHIPOTLE", "chipotle"),
    ("DD *DOORDASH", "doordash"),
    # Lower, title and mixed case.
    ("sq *blue bottle coffee oakland ca", "blue bottle coffee"),
    ("Walgreens Store 12345 Chicago IL", "walgreens"),
    ("McDonald's F12345 Chicago IL", "mcdonalds"),
    ("T.J. MAXX #1234 BOSTON MA", "tj maxx"),
    ("Target.com", "target"),
    # Accents and symbols.
    ("CAFÉ RÉGINE NEW YORK NY", "cafe regine"),
    ("🍕 PIZZA 🍕", "pizza"),
    ("BED BATH & BEYOND #123 PARAMUS NJ", "bed bath and beyond"),
]

# One merchant, written the ways different banks and cards write it.
SAME_MERCHANT = {
    "blue bottle coffee": [
        "SQ *BLUE BOTTLE COFFEE #12 OAKLAND CA",
        "SQ*BLUE BOTTLE COFFEE Oakland CA",
        "POS DEBIT SQ *BLUE BOTTLE COFFEE OAKLAND CA 12/03",
        "BLUE BOTTLE COFFEE       OAKLAND              CA",
        "CHECKCARD 1203 SQ *BLUE BOTTLE COFFEE OAKLAND CA 24431065337000123456789",
    ],
    "sheetz": [
        "SHEETZ 0412 ALTOONA PA",
        "PURCHASE AUTHORIZED ON 12/03 SHEETZ 0412 ALTOONA PA S585337751234567 "
        "CARD 1234",
        "DEBIT CARD PURCHASE - SHEETZ 0412 ALTOONA PA",
        "SHEETZ #0412          ALTOONA      PA",
        "POS PURCHASE SHEETZ 0412 ALTOONA PA XXXX1234",
        "VISA DDA PUR 443106 SHEETZ 0412 ALTOONA * PA",
    ],
    "amazon": [
        "AMZN Mktp US*2K4X81",
        "AMAZON.COM*1A2B3C AMZN.COM/BILL WA",
        "AMZN Mktp US",
        "Amazon.com",
        "AMAZON MARKETPLACE NA PA AMZN.COM/BILL WA",
    ],
    "apple": [
        "APPLE.COM/BILL 866-712-7753 CA",
        "APL*ITUNES.COM/BILL 866-712-7753 CA",
        "APPLE.COM/BILL      ONE APPLE PARK WAY  CA",
        "RECURRING PAYMENT AUTHORIZED ON 11/28 APPLE.COM/BILL 866-712-7753 CA "
        "S385332118422150 CARD 4417",
    ],
    "target": [
        "TARGET T-1234 SAN FRANCISCOCA",
        "TARGET        00012345 MINNEAPOLIS MN",
        "Target.com",
        "POS PURCHASE TARGET 00012345 MINNEAPOLIS MN",
    ],
    "netflix": [
        "NETFLIX.COM         NETFLIX.COM         CA",
        "NETFLIX.COM LOS GATOS CA",
        "RECURRING PAYMENT AUTHORIZED ON 12/01 NETFLIX.COM NETFLIX.COM CA "
        "S385336123456789 CARD 1234",
        "PAYPAL *NETFLIX 4029357733 CA",
        "Netflix.com",
    ],
    "walmart": [
        "WAL-MART #1234 BENTONVILLE AR",
        "WM SUPERCENTER #1234",
        "Walmart Grocery 800-966-6546 AR",
        "WALMART.COM 8009256278 AR",
        "POS DEBIT WAL-MART SUPER CENTER 1234 DALLAS TX",
    ],
    "uber": [
        "UBER   *TRIP HELP.UBER.COM CA",
        "UBER *TRIP 8H2K3 help.uber.com CA",
        "Uber Trip",
        "UBER* PENDING",
    ],
    "uber eats": [
        "UBER *EATS PENDING",
        "UBER EATS           help.uber.com       CA",
        "UBEREATS 8005928996 CA",
        "Uber Eats",
    ],
    "acme": [
        "ORIG CO NAME:ACME CORP ORIG ID:1234567890 DESC DATE:120325 CO ENTRY "
        "DESCR:PAYROLL SEC:PPD TRACE#:021000021234567 EED:251203 IND ID:123 "
        "IND NAME:JOHN DOE TRN: 1234567890TC",
        "ACH CREDIT ACME CORP PAYROLL PPD ID: 1234567890",
        "DIRECT DEP ACME CORP",
        "ACME CORP DES:PAYROLL ID:XXXXX12345 INDN:DOE,JOHN CO ID:XXXXX67890 PPD",
    ],
    "zelle john doe": [
        "Zelle payment to John Doe Conf# abc123",
        "ZELLE TO JOHN DOE ON 12/03 REF # PP0ABC123",
        "Zelle Payment To John Doe JPM99AB1CD2E",
        "ZELLE PAYMENT FROM JOHN DOE WFCT0ABCD12",
    ],
    "venmo": [
        "VENMO PAYMENT 1023456789 WEB ID: 3264681992",
        "VENMO DES:PAYMENT ID:1023456789 INDN:JOHN DOE CO ID:3264681992 WEB",
        "ACH DEBIT VENMO PAYMENT",
        "Venmo",
    ],
    "whole foods": [
        "WHOLEFDS MKT 10234 AUSTIN TX",
        "WHOLE FOODS MARKET #10234 AUSTIN TX",
        "WFM 10234 AUSTIN TX",
        "Whole Foods Market Austin TX",
    ],
    "starbucks": [
        "STARBUCKS STORE 12345 SEATTLE WA",
        "Starbucks 800-782-7282 WA",
        "SQ *STARBUCKS",
        "STARBUCKS #12345 SEATTLE WA",
        "POS PURCHASE STARBUCKS CARD RELOAD",
        "AplPay STARBUCKS     SEATTLE     WA",
    ],
    "comcast": [
        "COMCAST DES:CABLE ID:123456 INDN:JOHN DOE CO ID:0000123 WEB",
        "COMCAST CABLE COMM 800-266-2278 PA",
        "XFINITY MOBILE 888-936-4968 PA",
        "WEB PMT COMCAST",
    ],
    "in n out": [
        "IN-N-OUT BURGER 123 IRVINE CA",
        "IN N OUT BURGER #123",
        "In-N-Out Burger Irvine CA",
        "INNOUT BURGER 123",
    ],
    "cvs": [
        "CVS/PHARMACY #08123 BOSTON MA",
        "CVS PHARMACY 8123",
        "CVS/PHARM 08123--BOSTON MA",
        "cvs/pharmacy #08123",
    ],
}

# Descriptions without letters, or only noise: an empty key and no tokens.
EMPTY_CASES = ["", "   ", "\t\n", "!!!", "*** --- ***", "#1234", "12/03", "🍕🍕"]

# Descriptions whose every word is noise still get a key from their first words.
NOISE_ONLY_CASES = [
    ("POS DEBIT", "pos debit"),
    ("ORDER #12345", "order"),
    ("REF#8H2K3L", "ref"),
    ("PAYPAL *", "paypal"),
    ("DEBIT CARD PURCHASE", "debit card purchase"),
]

TOKEN_CASES = [
    (
        "SQ *BLUE BOTTLE COFFEE #12 OAKLAND CA",
        ["sq", "blue", "bottle", "coffee", "oakland", "ca"],
    ),
    (
        "PURCHASE AUTHORIZED ON 12/03 SHEETZ 0412 ALTOONA PA S585337751234567 "
        "CARD 1234",
        ["purchase", "authorized", "sheetz", "altoona", "pa"],
    ),
    ("NETFLIX.COM         NETFLIX.COM         CA", ["netflix", "com", "ca"]),
    (
        "COMCAST DES:CABLE ID:123456 INDN:JOHN DOE CO ID:0000123 WEB",
        ["comcast", "cable", "web"],
    ),
    ("TARGET T-1234 SAN FRANCISCOCA", ["target", "san", "francisco", "ca"]),
    ("AMZN Mktp US*2K4X81", ["amazon", "mktp", "us"]),
    (
        "Zelle payment to John Doe Conf# abc123",
        ["zelle", "payment", "to", "john", "doe"],
    ),
    ("McDonald's F12345 Chicago IL", ["mcdonalds", "chicago", "il"]),
    ("CAFÉ 😀 BONJOUR 800-555-1234", ["cafe", "bonjour"]),
]

ALL_DESCRIPTIONS = (
    [description for description, _ in MERCHANT_CASES]
    + [description for group in SAME_MERCHANT.values() for description in group]
    + EMPTY_CASES
    + [description for description, _ in NOISE_ONLY_CASES]
    + [description for description, _ in TOKEN_CASES]
)


def _batch(descriptions):
    frame = pl.DataFrame(
        {"description": descriptions}, schema={"description": pl.String}
    )
    return frame.select(
        merchant=merchant_expr(pl.col("description")),
        tokens=tokens_expr(pl.col("description")),
    )


@pytest.mark.parametrize(("description", "expected"), MERCHANT_CASES)
def test_merchant_key(description, expected):
    assert normalize_merchant(description) == expected


@pytest.mark.parametrize(("expected", "descriptions"), SAME_MERCHANT.items())
def test_one_merchant_written_many_ways_gets_one_key(expected, descriptions):
    keys = {text: normalize_merchant(text) for text in descriptions}
    assert set(keys.values()) == {expected}, keys


def test_table_is_large_and_varied():
    assert len(MERCHANT_CASES) >= 60
    assert len({expected for _, expected in MERCHANT_CASES}) >= 50
    assert all(len(group) >= 4 for group in SAME_MERCHANT.values())


def test_batch_and_single_results_agree():
    batch = _batch(ALL_DESCRIPTIONS)
    for description, key, tokens in zip(
        ALL_DESCRIPTIONS, batch["merchant"], batch["tokens"], strict=True
    ):
        assert normalize_merchant(description) == key, description
        assert tokenize(description) == list(tokens), description


def test_batch_results_do_not_depend_on_row_order():
    forward = _batch(ALL_DESCRIPTIONS)
    backward = _batch(ALL_DESCRIPTIONS[::-1])
    assert forward["merchant"].to_list() == backward["merchant"].to_list()[::-1]
    assert forward["tokens"].to_list() == backward["tokens"].to_list()[::-1]


def test_merchant_expr_keeps_nulls():
    out = pl.Series("d", ["SQ *BLUE BOTTLE COFFEE", None], dtype=pl.String).to_frame()
    out = out.select(merchant_expr(pl.col("d")), tokens=tokens_expr(pl.col("d")))
    assert out["d"].to_list() == ["blue bottle coffee", None]
    assert out["tokens"].to_list() == [["sq", "blue", "bottle", "coffee"], None]
    assert out.schema == {"d": pl.String, "tokens": pl.List(pl.String)}


def test_none_gives_empty_results():
    assert normalize_merchant(None) == ""
    assert tokenize(None) == []


@pytest.mark.parametrize("description", EMPTY_CASES)
def test_descriptions_without_letters_give_empty_results(description):
    assert normalize_merchant(description) == ""
    assert tokenize(description) == []


@pytest.mark.parametrize(("description", "expected"), NOISE_ONLY_CASES)
def test_noise_only_description_falls_back_to_its_first_words(description, expected):
    assert normalize_merchant(description) == expected


@pytest.mark.parametrize("description", ALL_DESCRIPTIONS)
def test_key_is_clean_and_never_empty_when_there_are_letters(description):
    key = normalize_merchant(description)
    assert key == key.lower() == key.strip()
    assert "  " not in key
    if any(character.isalpha() for character in description):
        assert key


@pytest.mark.parametrize(
    "description",
    ["CAFÉ", "Ünïcödé Bäckerei München", "寿司 NEW YORK NY", "☕️ ☕️", "\u200b", "ß"],
)
def test_non_ascii_input_does_not_crash(description):
    assert isinstance(normalize_merchant(description), str)
    assert isinstance(tokenize(description), list)


def test_accents_fold_to_plain_letters():
    assert normalize_merchant("CAFÉ RÉGINE NEW YORK NY") == normalize_merchant(
        "CAFE REGINE NEW YORK NY"
    )
    assert tokenize("Crème Brûlée Café") == ["creme", "brulee", "cafe"]


@pytest.mark.parametrize(("description", "expected"), TOKEN_CASES)
def test_tokens(description, expected):
    assert tokenize(description) == expected


@pytest.mark.parametrize("description", ALL_DESCRIPTIONS)
def test_tokens_are_lower_case_words_without_numbers_or_repeats(description):
    tokens = tokenize(description)
    assert len(tokens) == len(set(tokens))
    for token in tokens:
        assert token == token.lower()
        assert len(token) >= 2
        assert not token.isdigit()
        assert " " not in token
