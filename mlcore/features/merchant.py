"""Canonical merchant keys and word tokens from raw bank transaction descriptions.

Banks wrap the merchant descriptor sent by the card network in their own noise:
transaction-type words (``POS DEBIT``, ``PURCHASE AUTHORIZED ON 12/03``), card
masks, reference codes, store and terminal numbers, phone numbers, and the
merchant's city and state. Payment processors add prefixes (``SQ *``, ``TST*``,
``PAYPAL *``). The same coffee shop therefore shows up as
``SQ *BLUE BOTTLE COFFEE #12 OAKLAND CA`` at one bank and
``POS DEBIT SQ*BLUE BOTTLE COFFEE OAKLAND CA 12/03`` at another;
``merchant_expr`` reduces both to ``blue bottle coffee``.

How it runs
-----------
Everything is one straight chain of vectorised polars string operations (Rust
regex: no look-around, no back-references); there is no Python per row.
``normalize_merchant`` and ``tokenize`` run the very same expressions on a
one-row frame, so batch features and single transactions cannot disagree.

The chain never branches on an intermediate result: an eager ``select`` or
``with_columns`` does not share common sub-expressions, so a ``when`` or
``coalesce`` over the chain would compute it twice. A step therefore removes
what it matches even when nothing would be left, and a description whose every
word is noise gets a fallback key computed from the raw text in parallel.
Replacements that write back capture groups are several times slower than
plain removals, so they are kept to patterns that rarely match, and unrelated
removals share one pass.

Merchant key, in order
----------------------
1. Fold, in one literal pass after upper-casing: common accented capitals to
   plain letters (``CAFÉ`` -> ``CAFE``); apostrophes vanish (``MCDONALD'S`` ->
   ``MCDONALDS``); ``&amp;`` is decoded and a free-standing ``&`` reads as
   ``AND``; ``_`` is a space; URL schemes and ``WWW.`` go; ``AMZN`` becomes
   ``AMAZON``, ``ITUNES.COM`` ``APPLE.COM`` and ``UBEREATS`` ``UBER EATS``;
   ``SQ *X`` and ``UBER   *TRIP`` get a bare ``*``.
2. ACH fields: the originator (after ``ORIG CO NAME:``, or before ``DES:``) is
   kept; the first ``DES:``/``ID:``/``INDN:``/``CO ID:``/``PPD ID:``... field
   and everything after it go.
3. Google's own products keep the brand (``GOOGLE *SERVICES`` ->
   ``google services``). Then leading bank wrappers (``POS DEBIT``,
   ``CHECKCARD 1203``, ``PURCHASE AUTHORIZED ON 12/03``, ``ACH DEBIT``...) and
   processor prefixes (``SQ*``, ``TST*``, ``PAYPAL*``, ``DD*DOORDASH``...) go.
4. Whole-description forms: card payments (``... THANK YOU`` -> ``thank you``),
   ATM, own-account transfers, and Zelle, which keeps the counterparty
   (``zelle john doe``).
5. In one pass: a leading domain becomes its name (``NETFLIX.COM`` ->
   ``NETFLIX``), and for padded columns (Amex-style exports) everything from
   the first run of 2+ spaces goes when the line ends in a state code or a
   known city.
6. In one pass: later domains (``HELP.UBER.COM``), phone numbers, card masks,
   reference/confirmation codes, dates and times go, and dots vanish
   (``J.CREW`` -> ``JCREW``).
7. A store or terminal number (``#4411``, ``STORE 0412``, ``T-1234``, a bare
   number of 3+ digits) goes with everything after it, when that tail ends in
   a state code (also glued: ``SAN FRANCISCOCA``) or only in more numbers.
8. Every other symbol, hyphens included, becomes a space (``7-ELEVEN`` ->
   ``7 ELEVEN``, ``IN-N-OUT`` -> ``IN N OUT``); ``&`` stays (``AT&T``).
9. Words: a leading ``THE`` goes; two or three initials join (``H-E-B`` ->
   ``HEB``, ``T J MAXX`` -> ``TJ MAXX``); a stray ``S`` left by an apostrophe
   exported as a space is glued back (``TRADER JOE S`` -> ``TRADER JOES``);
   digits glued to a word go (``AIR0012345678901`` -> ``AIR``); reference-like
   words go (letters with 2+ digits, as ``2K4X81``, or letters around digits,
   as ``HMQ4ZXYW``); numbers go, except a leading number of 1-3 digits, which
   is the brand (``76`` gas stations, ``7 ELEVEN``, ``24 HOUR FITNESS``). Other
   numbers are store numbers, so ``FOREVER 21`` becomes ``forever``.
10. Brands, in one literal pass: a key that starts with a known national brand
    becomes that brand, in one spelling whatever the bank wrote
    (``WAL MART``/``WM SUPERCENTER`` -> ``walmart``, ``ATT`` -> ``at&t``,
    ``WHOLEFDS MKT`` -> ``whole foods``, ``CVS PHARMACY`` -> ``cvs``,
    ``UBER TRIP`` -> ``uber``, ``UBER EATS`` -> ``uber eats``,
    ``AMAZON MKTP US`` -> ``amazon``, ``AMAZON PRIME`` -> ``amazon prime``).
11. In one pass, at the end: what follows a brand of step 10; or payment-type
    and legal-form words (``PAYMENT``, ``PAYROLL``, ``AUTOPAY``, ``INC``,
    ``LLC``...) followed by a gazetteer city with its state (spaced or glued),
    a bare state code, ``USA``, or a multi-word city without a state. No
    location is stripped right after a function word (``CITY OF AUSTIN TX``
    keeps ``city of austin``): step 10 glues those words to the next one.
12. Lower case. If nothing is left although the description has letters, the
    key is its first (up to three) words that contain letters, lower-cased
    (``POS DEBIT`` -> ``pos debit``).

A description without letters (empty, blank, punctuation, only a number) gives
``""``; a null gives null (``normalize_merchant(None)`` gives ``""``).

Tokens
------
``tokens_expr`` gives the lower-case words of the description after the folding
of step 1 and the noise removal of step 6 (dates, card masks, reference codes,
phone numbers), without ACH field labels and without the account holder's own
``INDN:`` name. Processor prefixes (``sq``, ``tst``), wrapper words
(``pos``, ``debit``, ``ach``), domain parts (``com``) and places are kept:
they are informative model inputs. Words of one character, numbers,
reference-like words and ``www``/``http(s)`` are dropped; a gazetteer city
glued to its state is split (``SAN FRANCISCOCA`` -> ``san``, ``francisco``,
``ca``). Order is kept and repeats are dropped (the first occurrence stays), so
``NETFLIX.COM NETFLIX.COM CA`` gives ``["netflix", "com", "ca"]``. A null
description gives a null list (``tokenize(None)`` gives ``[]``).
"""

import polars as pl

from mlcore.features.places import CITIES, STATE_CODES

# Processors cut the city field, most often to 13 characters, some to 11 or
# 12; accept those cut spellings of longer gazetteer names too ("SALT LAKE CIT",
# "SAN FRANCISC", "PHILADELPHI").
_CITY_NAMES = CITIES | {
    city[:width].rstrip()
    for city in CITIES
    for width in (11, 12, 13)
    if len(city) > width
}


def _alternation(words) -> str:
    """Longest first, so an alternative never stops at a shorter prefix."""
    return "|".join(sorted(set(words), key=lambda word: (-len(word), word)))


_STATES = _alternation(STATE_CODES)
_CITIES = _alternation(_CITY_NAMES)
# Step 10 glues function words to the next word with "_" ("SAN_JOSE"), so the
# cities of step 11 match either form; a compass word may precede the city
# ("EAST PALO ALTO", "N HOLLYWOOD").
_GLUED_CITIES = (
    r"(?:(?:NORTH|SOUTH|EAST|WEST|N|S|E|W)[ _])?(?:"
    + _alternation(city.replace(" ", "[ _]") for city in _CITY_NAMES)
    + ")"
)
_GLUED_MULTIWORD_CITIES = _alternation(
    city.replace(" ", "[ _]") for city in _CITY_NAMES if " " in city
)
_TLDS = "COM|NET|ORG|IO|CO|US|TV|APP|ME|LY|AI|BIZ|INFO|GOV|EDU"
# A word of letters and digits, and one with letters plus 2+ digits or letters
# around a digit run: the shape of reference, order and reservation codes.
_WORD = r"[\p{L}\p{N}]"
_CODE_WORD = (
    rf"{_WORD}*(?:\p{{L}}{_WORD}*\p{{N}}{_WORD}*\p{{N}}|\p{{N}}{_WORD}*\p{{L}}{_WORD}*"
    rf"\p{{N}}|\p{{N}}{_WORD}*\p{{N}}{_WORD}*\p{{L}}|\p{{L}}\p{{N}}+\p{{L}}){_WORD}*"
)

# ---------------------------------------------------------------------------
# 1. Folding
# ---------------------------------------------------------------------------
# Plain letters and the accented capitals that fold to them.
_ACCENTS = {
    "A": "ÀÁÂÃÄÅĀĂĄ",
    "AE": "Æ",
    "C": "ÇĆČ",
    "D": "ĎĐ",
    "E": "ÈÉÊËĒĖĘĚ",
    "G": "Ğ",
    "I": "ÌÍÎÏĪİ",
    "L": "Ł",
    "N": "ÑŃŇ",
    "O": "ÒÓÔÕÖØŌŐ",
    "OE": "Œ",
    "R": "Ř",
    "S": "ŚŞŠ",
    "T": "Ť",
    "U": "ÙÚÛÜŪŮŰ",
    "Y": "ÝŸ",
    "Z": "ŹŻŽ",
}
# Literal replacements after upper-casing, in one Aho-Corasick pass.
FOLD_TABLE = {
    **{accented: plain for plain, chars in _ACCENTS.items() for accented in chars},
    "&AMP;": "&",
    " & ": " AND ",
    "_": " ",
    "'": "",
    "\u2019": "",
    "\u2018": "",
    "`": "",
    "\u00b4": "",
    "HTTPS://": "",
    "HTTP://": "",
    "WWW.": "",
    # Amazon, Apple and Uber Eats name themselves several ways.
    "AMZN": "AMAZON",
    "ITUNES.COM": "APPLE.COM",
    "UBEREATS": "UBER EATS",
    # Spaces around "*" ("SQ *X", "UBER   *TRIP"): all become a bare "*". The
    # pass is leftmost-first, so the longest run is listed first.
    **{
        " " * before + "*" + " " * after: "*"
        for before, after in sorted(
            ((before, after) for before in range(4) for after in range(3)),
            key=lambda spaces: -sum(spaces),
        )
        if before or after
    },
}

# ---------------------------------------------------------------------------
# 2. ACH fields
# ---------------------------------------------------------------------------
# Chase-style ACH lines start with labels up to the originator's name; after
# the company name, the first field label and everything after it go.
ACH_FIELDS = (
    r"^.*?\bORIG CO NAME\s*:\s*|\s*\b(?:(?:PPD|CCD|WEB|TEL|CTX|IAT|ARC|BOC|POP)\s+)?"
    r"(?:DES|INDN|IND NAME|IND ID|ORIG ID|CO ID|CO ENTRY DESCR|ENTRY DESCR|"
    r"DESC DATE|SEC|TRN|EED|ID)\s*:.*$"
)

# ---------------------------------------------------------------------------
# 3. Bank wrappers and processor prefixes
# ---------------------------------------------------------------------------
_WRAPPER_PHRASES = (
    r"POS (?:DEBIT|PURCHASE|WITHDRAWAL|TRANSACTION)",
    r"POINT OF SALE(?: DEBIT| PURCHASE)?",
    r"DEBIT CARD(?: PURCHASE| DEBIT| TRANSACTION)?",
    r"DEBIT (?:PURCHASE|POS)",
    r"DBT CRD",
    r"DDA (?:PURCHASE|PUR|POS|DEBIT)",
    r"RECURRING(?: PAYMENT| PMT| CARD PURCHASE| DEBIT CARD| PURCHASE| CHARGE)?",
    r"CARD PURCHASE(?: WITH PIN)?",
    r"PURCHASE(?: RETURN)?",
    r"AUTHORIZED(?: ON)?",
    r"VISA CHECK ?(?:CRD|CARD)",
    r"CHECK ?(?:CRD|CARD)(?: PURCHASE)?",
    r"VISA(?: DEBIT)?",
    r"MASTERCARD DEBIT",
    r"ACH(?: DEBIT| CREDIT| WITHDRAWAL| DEPOSIT| PMT| PAYMENT)?",
    r"ELECTRONIC (?:PAYMENT|PMT|WITHDRAWAL|DEPOSIT|DEBIT)",
    r"EXTERNAL (?:WITHDRAWAL|DEPOSIT)",
    r"PRE ?AUTH(?:ORIZED)?(?: ACH)?(?: DEBIT| CREDIT)?",
    r"ONLINE (?:PMT|PAYMENT|PURCHASE|BILL PAY(?:MENT)?)",
    r"WEB (?:PMT|PAYMENT|AUTHORIZED PMT)",
    r"BILL ?PAY(?:MENT)?",
    r"MOBILE PURCHASE",
    r"CONTACTLESS(?: PURCHASE)?",
    r"APL ?PAY",
    r"DIRECT (?:DEBIT|DEPOSIT|DEP)",
    r"DIR DEP",
    r"POS",
    r"DEBIT",
    r"WITHDRAWAL",
    r"DEPOSIT",
    r"PENDING",
)
# One wrapper with an optional posting date ("ON 12/03", "1203") and separators.
_WRAPPER = (
    r"(?:" + "|".join(_WRAPPER_PHRASES) + r")\b"
    r"(?:\s+(?:ON\s+)?(?:\d{1,2}/\d{1,2}(?:/\d{2,4})?|\d{4})\b)?[\s:,\-]*"
)
# Square, Toast, PayPal, Shopify, Google, FastSpring, Intuit, Braintree, WePay,
# Eventbrite, Clover, SpotOn, Apple, DoorDash and Grubhub in front of the
# actual merchant.
_PREFIX = (
    r"(?:DD\*(?:DOORDASH\s+)?|(?:SQ|SQU|SQUARE|TST|TOAST|PAYPAL|PP|SP|SHOPIFY|"
    r"GOOGLE|GOOG|FS|IC|PY|CKE|DOORDASH|GRUBHUB|BT|WPY|IN|EB|CLV|SPO|APL)\*)\s*"
)
# Wrappers, then prefixes, at the start ("POS DEBIT SQ*BLUE BOTTLE").
WRAPPERS_AND_PREFIXES = rf"^(?:(?:{_WRAPPER})+(?:{_PREFIX})*|(?:{_PREFIX})+)"
# Google's own products keep the brand ("GOOGLE *GOOGLE ONE" -> google one).
GOOGLE_PRODUCT = (
    r"^GOOG(?:LE)?\*(?:GOOGLE\s*)?(SERVICES|SVCS|STORAGE|CLOUD|ONE|PLAY|FI|ADS|"
    r"DOMAINS|WORKSPACE|GSUITE|STORE|MUSIC|PIXEL|NEST)\b.*$"
)

# ---------------------------------------------------------------------------
# 4. Whole-description forms
# ---------------------------------------------------------------------------
# Alternatives whose key is taken from the text itself, written back through
# named groups: card-payment credits ("AUTOPAY PAYMENT - THANK YOU" -> THANK
# YOU), ATM withdrawals and deposits, own-account transfers, and Zelle with its
# counterparty ("Zelle payment to John Doe Conf# 1a2b" -> ZELLE JOHN DOE).
# Brands such as Amazon, Apple or Uber are handled in step 10 instead.
WHOLE_FORMS = (
    r"^.*\b(?P<thanks>THANK ?YOU)\b.*$"
    r"|^(?:NON[ -]?\S+\s+)?(?P<atm>ATM)\b.*$"
    r"|^(?:(?:ONLINE|MOBILE|INTERNET|EXTERNAL|INTERNAL|FUNDS|BANKING|ACCOUNT|"
    r"TELEPHONE)\s+)*(?P<transfer>TRANSFER)\b.*$"
    r"|^(?P<zelle>ZELLE)(?:\s+(?:PAYMENT|PMT|TRANSFER|SENT|RECEIVED|INSTANT))*"
    r"\s+(?:TO|FROM)(?P<gap>\s)\s*(?P<payee>[^;]*?)"
    r"(?:\s+(?:FOR|ON|REF|CONF)\b.*|;.*)?$"
)
WHOLE_FORMS_OUT = "${thanks}${atm}${transfer}${zelle}${gap}${payee}"

# ---------------------------------------------------------------------------
# 5. Leading domain and padded columns
# ---------------------------------------------------------------------------
# A leading domain is the merchant: "NETFLIX.COM", "HELP.UBER.COM/X" -> name.
LEADING_DOMAIN = r"^(?:[A-Z0-9-]+\.)*?([A-Z0-9-]+)\.(?:" + _TLDS + r")\b\S*"
# "BLUE BOTTLE COFFEE     OAKLAND     CA": from the first run of 2+ spaces on,
# when the line ends in a state code or known city (optionally ZIP, country).
COLUMN_LOCATION = (
    r"\s{2,}(?:.*\s)?(?:" + _STATES + "|" + _CITIES + r")"
    r"(?:\s+\d{5}(?:-\d{4})?)?(?:\s+USA?)?$"
)
# Both in one pass: the domain name is written back, the columns vanish.
DOMAIN_OR_COLUMNS = LEADING_DOMAIN + "|" + COLUMN_LOCATION

# ---------------------------------------------------------------------------
# 6. Noise anywhere
# ---------------------------------------------------------------------------
# Later domains are support or billing URLs ("HELP.UBER.COM", "AMZN.COM/BILL").
OTHER_DOMAIN = r"\s\S*\.(?:" + _TLDS + r")\b\S*"
# "800-555-1234", "(800) 555-1234", "1-877-8244858", "8005551234".
PHONE = r"(?:\b1[-. ]?)?(?:\(\d{3}\)\s?|\b\d{3}[-. ]?)\d{3}[-. ]?\d{4}\b"
# "XXXX1234", "****1234", "*1234", "...1234", "CARD 1234", "ACCT ENDING IN 1234".
CARD_MASK = (
    r"X{2,}\d{2,4}\b|\*+\d{4}\b|\.{3}\d{4}\b|"
    r"\b(?:CARD|CRD|ACCT|ACCOUNT)\s*(?:#|NO\b\.?|NUMBER|ENDING(?:\s+IN)?)?"
    r"\s*[X*.]*\d{4}\b"
)
# "REF#8H2K3L", "CONF# ABC123", "ORDER 12345", "TICKET 0062345678901".
REFERENCE = (
    r"\b(?:REF|REFERENCE|CONF|CONFIRMATION|TRACE|AUTH|APPROVAL|TRANSACTION|"
    r"TRANS|TXN|ORDER|INV|INVOICE|RECEIPT|TICKET|PNR|BOOKING|RES|RESERVATION)\b"
    r"\s*(?:NO\b\.?|NUM\b|NUMBER)?"
    r"(?:\s*[#:]\s*[A-Z0-9][A-Z0-9-]*|\s*[A-Z]*\d[A-Z0-9-]*)"
)
_MONTH = (
    r"(?:JAN(?:UARY)?|FEB(?:RUARY)?|MAR(?:CH)?|APR(?:IL)?|MAY|JUNE?|JULY?|"
    r"AUG(?:UST)?|SEP(?:T(?:EMBER)?)?|OCT(?:OBER)?|NOV(?:EMBER)?|DEC(?:EMBER)?)"
)
# "2025-12-03", "12/03", "12/03/25", "12-03", "DEC 03", "DEC 3, 2025", with an
# optional leading "ON".
DATE = (
    r"(?:\bON\s+)?(?:\b\d{4}-\d{2}-\d{2}\b|\b\d{1,2}/\d{1,2}(?:/\d{2,4})?\b|"
    r"\b\d{2}-\d{2}(?:-\d{2,4})?\b|\b" + _MONTH + r"\.?\s?\d{1,2}\b(?:,?\s?\d{4}\b)?)"
)
# "8PM", "SUN 8PM", "14:05", "2:30 PM".
TIME = (
    r"\b(?:(?:MON|TUE|TUES|WED|THU|THUR|THURS|FRI|SAT|SUN)\s+)?"
    r"(?:\d{1,2}:\d{2}(?::\d{2})?(?:\s?[AP]M)?|\d{1,2}\s?[AP]M)\b"
)
# Noise that goes wherever it is; phones first so their digit groups are not
# read as dates.
NOISE = "|".join((PHONE, CARD_MASK, REFERENCE, DATE, TIME))
# Later domains, noise, and dots ("J.CREW", "U.S. BANK"), in one pass.
NOISE_AND_DOTS = "|".join((OTHER_DOMAIN, NOISE, r"\."))

# ---------------------------------------------------------------------------
# 7. Store number and location tail
# ---------------------------------------------------------------------------
# " #4411 ...", " STORE 0412 ...", " T-1234 ...", " 0412 ALTOONA PA": the number
# and the rest when the rest ends in a state code (glued or not) or in numbers.
STORE_TAIL = (
    r"\s(?:#\s*\d+|(?:STORE|STR|STE|UNIT|NO|NUM)\.?\s*[#-]?\s*\d+|T-?\d{3,}|\d{3,})"
    r"\b(?:.*(?:" + _STATES + r"))?(?:\s+\S*\d\S*)*$"
)

# ---------------------------------------------------------------------------
# 8./9. Symbols and words
# ---------------------------------------------------------------------------
# Runs of anything but letters, digits, "&" and the "_" of shielded keys.
SYMBOLS = r"[^\p{L}\p{N}&_]+"
# Rare rewrites on single-spaced words, written back through groups: the word
# after a leading "THE" (1); two or three initials joined, as "H E B" from
# "H-E-B" or "T J MAXX" from "T.J. MAXX" (2-4); a word and its split-off
# possessive "S" (5, 6); the letters of a word with a glued number (7).
WORD_REWRITES = (
    r"^THE (\S)"
    r"|\b(\p{L}) (\p{L})(?: (\p{L}))?\b"
    r"|(\p{L}{2,}) (S)\b"
    r"|\b(\p{L}{3,})\p{N}{6,}\b"
)
# Numbers other than a leading 1-3 digit one, and reference-like words.
WORD_DROPS = rf"\s\p{{N}}+\b|^\p{{N}}{{4,}}\b|\s?\b{_CODE_WORD}\b"

# ---------------------------------------------------------------------------
# 10. Brands
# ---------------------------------------------------------------------------
# Brand key -> spellings seen across banks, at the start of the key. A key that
# starts with one of them becomes the brand alone: the rest of a brand's
# descriptor is noise ("CVS PHARMACY", "SHELL OIL", "STARBUCKS STORE",
# "UBER TRIP", "AMAZON MKTP US").
BRANDS = {
    "WALMART": ("WALMART", "WAL MART", "WM SUPERCENTER", "WM SUPER CENTER"),
    "7 ELEVEN": ("7 ELEVEN", "7ELEVEN", "SEVEN ELEVEN"),
    "WHOLE FOODS": ("WHOLE FOODS", "WHOLEFDS", "WFM"),
    "TRADER JOES": ("TRADER JOES", "TRADER JOE"),
    "SAMS CLUB": ("SAMS CLUB", "SAMSCLUB"),
    # Not plain COSTCO: "COSTCO GAS" is a merchant of its own.
    "COSTCO": ("COSTCO WHSE", "COSTCO WHOLESALE"),
    "MCDONALDS": ("MCDONALDS", "MC DONALDS", "MCDONALD"),
    "CHICK FIL A": ("CHICK FIL A", "CHICKFILA"),
    "IN N OUT": ("IN N OUT", "INNOUT"),
    "DUNKIN": ("DUNKIN",),
    "STARBUCKS": ("STARBUCKS",),
    "CHIPOTLE": ("CHIPOTLE",),
    "CVS": ("CVS",),
    "WALGREENS": ("WALGREENS",),
    "SHELL": ("SHELL",),
    "CHEVRON": ("CHEVRON",),
    "EXXONMOBIL": ("EXXONMOBIL", "EXXON MOBIL", "EXXON"),
    "HOME DEPOT": ("HOME DEPOT", "HOMEDEPOT"),
    "BEST BUY": ("BEST BUY", "BESTBUY"),
    "AMAZON PRIME": ("AMAZON PRIME",),
    "AMAZON FRESH": ("AMAZON FRESH",),
    "AMAZON": ("AMAZON",),
    "APPLE": ("APPLE COM BILL",),
    "MICROSOFT": ("MICROSOFT", "MSFT"),
    "NETFLIX": ("NETFLIX",),
    "SPOTIFY": ("SPOTIFY",),
    "HULU": ("HULU", "HLU HULU"),
    "AT&T": ("AT&T", "ATT", "AT AND T"),
    "T MOBILE": ("T MOBILE", "TMOBILE"),
    "VERIZON": ("VERIZON", "VZWRLSS", "VZ WIRELESS", "VZW"),
    "COMCAST": ("COMCAST", "XFINITY"),
    "UBER EATS": ("UBER EATS",),
    "UBER": ("UBER",),
    "LYFT": ("LYFT",),
    "DOORDASH": ("DOORDASH",),
    "AIRBNB": ("AIRBNB",),
    "PAYPAL": ("PAYPAL",),
    "DELTA AIR LINES": ("DELTA AIR LINES", "DELTA AIRLINES", "DELTA AIR"),
    "UNITED AIRLINES": ("UNITED AIRLINES", "UNITED AIR"),
    "AMERICAN AIRLINES": ("AMERICAN AIRLINES", "AMERICAN AIR"),
    "SOUTHWEST AIRLINES": ("SOUTHWEST AIRLINES", "SOUTHWEST AIR", "SOUTHWES"),
    "ALASKA AIRLINES": ("ALASKA AIRLINES", "ALASKA AIR"),
    "JETBLUE": ("JETBLUE", "JET BLUE"),
}
# Step 10 frames the key as START + key + END so that literal patterns can tell
# a whole key and a key's first words apart; a brand hit puts CUT after the
# brand, and step 11 drops everything from CUT on. Brand keys use "_" for
# spaces, which shields them from the word-based patterns of step 11.
START, END, CUT = "\x02", "\x03", "\x04"
# Function words are glued to the next word so that no location match can
# start right after them: "CITY OF AUSTIN TX" keeps "AUSTIN". State codes that
# double as words (IN, DE, LA...) are left alone so that a trailing state goes.
FUNCTION_WORDS = (
    *("OF", "THE", "AT", "AND", "FOR", "BY", "ON", "TO"),
    *("DEL", "EL", "LOS", "LAS", "SAN", "SANTA", "ST"),
)
# One Aho-Corasick pass for brands and glue. A leftmost-first search prefers
# the pattern listed first, so longer spellings come first ("UBER EATS" before
# "UBER").
_BRAND_ENTRIES = {
    f"{START}{spelling}{tail}": f"{START}{brand.replace(' ', '_')}{after}"
    for brand, spellings in BRANDS.items()
    for spelling in spellings
    # The whole key, or its first words (the rest is then cut).
    for tail, after in ((END, END), (" ", CUT))
}
BRAND_AND_GLUE_TABLE = {
    **dict(sorted(_BRAND_ENTRIES.items(), key=lambda item: -len(item[0]))),
    **{f" {word} ": f" {word}_" for word in FUNCTION_WORDS},
}

# ---------------------------------------------------------------------------
# 11. Trailing type words and location
# ---------------------------------------------------------------------------
_TYPE_WORDS = (
    r"PAYMENTS?|PMTS?|PYMT|AUTO ?PAY|AUTO P(?:YM|M)T|BILL ?PAY(?:MENT)?|"
    r"ONLINE (?:PMT|PAYMENT)|WEB PMT|E ?(?:PAY(?:MENT)?|PMT)|RECURRING|PURCHASE|"
    r"POS|PPD|CCD|WEB|TEL|ACH|DEBIT|PAYROLL|DIR ?DEP|DIRECT DEP(?:OSIT)?|SALARY|"
    r"INST XFER|XFER|PENDING|COM|INC|INCORPORATED|LLC|L L C|LTD|CORP|CORPORATION|"
    r"PLLC|LLP"
)
# Before END: payment-type and legal-form words ("ACME CORP PAYROLL"), then
# optionally a city with its state ("OAKLAND CA", "SAN_FRANCISCOCA"), a bare
# state, "USA", or a multi-word city without a state ("LOS_ANGELES"). Or,
# after a brand, everything from CUT on.
TRAILING_TYPE_AND_LOCATION = (
    rf"{CUT}.*"
    rf"|(?:\s(?:{_TYPE_WORDS}))*(?:\s(?:USA|US))?"
    rf"(?:\s(?:{_GLUED_CITIES}\s?)?(?:{_STATES})(?:\s(?:USA|US))?"
    rf"|\s(?:USA|US|UNITED STATES)|\s(?:{_GLUED_MULTIWORD_CITIES})){END}"
    rf"|(?:\s(?:{_TYPE_WORDS}))+{END}"
)

# ---------------------------------------------------------------------------
# 12. Fallback
# ---------------------------------------------------------------------------
# The first word with a letter and up to two more such words right after it.
FIRST_WORDS = r"\p{L}[\p{L}\p{N}]*(?:[^\p{L}\p{N}]+\p{L}[\p{L}\p{N}]*){0,2}"
# What separates those words; it becomes one space.
NON_WORD = r"[^\p{L}\p{N}]+"

# ---------------------------------------------------------------------------
# Tokens
# ---------------------------------------------------------------------------
# The account holder's own name in ACH lines, with the label that ends it
# ("INDN:JOHN DOE CO ID:").
ACH_HOLDER_NAME = (
    r"\b(?:INDN|IND NAME)\s*:.*?(?:\s(?:CO ID|IND ID|ORIG ID|TRN|SEC)\s*:|$)"
)
# ACH field labels; their values stay and are filtered like any word.
ACH_LABELS = (
    r"\b(?:ORIG CO NAME|ORIG ID|DESC DATE|CO ENTRY DESCR|ENTRY DESCR|CO ID|IND ID|"
    r"DES|SEC|TRACE|EED|TRN|ID)\s*[:#]"
)
TOKEN_NOISE = "|".join((ACH_HOLDER_NAME, ACH_LABELS, NOISE))
# Runs of symbols and of words that are no tokens (one character, numbers,
# reference-like words, URL parts) collapse to one space.
TOKEN_SEPARATORS = (
    rf"(?:\b(?:{_WORD}|\p{{N}}+|WWW|HTTPS?|{_CODE_WORD})\b|[^\p{{L}}\p{{N}}])+"
)
# A gazetteer city glued to its state at the end ("SAN FRANCISCOCA").
GLUED_CITY_STATE = r"\s(" + _CITIES + r")(" + _STATES + r")$"


def _fold(description: pl.Expr) -> pl.Expr:
    """Step 1: case, accents, apostrophes, ampersands, URL prefixes."""
    return description.str.to_uppercase().str.replace_many(FOLD_TABLE, leftmost=True)


def merchant_expr(description: pl.Expr) -> pl.Expr:
    """Canonical lower-case merchant key of a raw description (Utf8 -> Utf8)."""
    text = _fold(description).str.strip_chars()
    # 2. ACH company name.
    text = text.str.replace_all(ACH_FIELDS, "")
    # 3. Google products; bank wrappers and processor prefixes.
    text = text.str.replace(GOOGLE_PRODUCT, "GOOGLE_${1}")
    text = text.str.replace(WRAPPERS_AND_PREFIXES, "")
    # 4. Whole-description forms.
    text = text.str.replace(WHOLE_FORMS, WHOLE_FORMS_OUT)
    # 5.-7. Leading domain and columns; noise and dots; store number and tail.
    text = text.str.replace_all(DOMAIN_OR_COLUMNS, "${1}")
    text = text.str.replace_all(NOISE_AND_DOTS, "")
    text = text.str.replace(STORE_TAIL, "")
    # 8. Symbols. 9. Words.
    text = text.str.replace_all(SYMBOLS, " ").str.strip_chars()
    text = text.str.replace_all(WORD_REWRITES, "${1}${2}${3}${4}${5}${6}${7}")
    text = text.str.replace_all(WORD_DROPS, "").str.strip_chars()
    # 10. Brands, and function words glued for step 11.
    framed = pl.concat_str(pl.lit(START), text, pl.lit(END))
    text = framed.str.replace_many(BRAND_AND_GLUE_TABLE, leftmost=True)
    # 11. Brand tails, type words and location.
    text = text.str.replace(TRAILING_TYPE_AND_LOCATION, "")
    # 12. Finish; an empty key falls back to the first words of the description,
    # computed from the raw text alongside the chain.
    key = text.str.replace_all("_", " ", literal=True)
    key = key.str.strip_chars(f"{START}{END}{CUT} ")
    fallback = description.str.extract(FIRST_WORDS, 0).str.replace_all(NON_WORD, " ")
    # "" for a description without letters, null for a null one.
    nothing = description.str.slice(0, 0)
    key = pl.coalesce(key.replace("", None), fallback, nothing).str.to_lowercase()
    # The framing in step 10 renamed the column; give back the input's name.
    return key.name.keep()


def tokens_expr(description: pl.Expr) -> pl.Expr:
    """Lower-case word tokens of a raw description (Utf8 -> List(Utf8))."""
    text = _fold(description).str.replace_all(TOKEN_NOISE, " ")
    text = text.str.replace_all(TOKEN_SEPARATORS, " ").str.strip_chars()
    text = text.str.replace(GLUED_CITY_STATE, " ${1} ${2}").str.to_lowercase()
    return (
        text.str.split(" ")
        .list.filter(pl.element() != "")
        .list.unique(maintain_order=True)
    )


def _run_one(expression, description: str | None) -> pl.Series:
    frame = pl.DataFrame(
        {"description": [description]}, schema={"description": pl.String}
    )
    return frame.select(expression(pl.col("description"))).to_series()


def normalize_merchant(description: str) -> str:
    """``merchant_expr`` on a single description; ``None`` gives ``""``."""
    value = _run_one(merchant_expr, description)[0]
    return "" if value is None else value


def tokenize(description: str) -> list[str]:
    """``tokens_expr`` on a single description; ``None`` gives ``[]``."""
    value = _run_one(tokens_expr, description)[0]
    return [] if value is None else list(value)
