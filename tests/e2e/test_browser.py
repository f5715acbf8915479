"""End to end in headless Chromium: the labeling queue and the bulk action.

Drives the admin through Playwright against pytest-django's live server, so
the data must be committed (``committed_db``). The ORM is used only before
and after the browser runs: Playwright's sync API keeps an event loop in
this thread, where Django refuses database calls.
"""

import os
from contextlib import contextmanager
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User

from labeling.models import LabelHistory, Transaction, TransactionLabel
from mlcore.features.build import build_window

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "e2e"
PASSWORD = "correct horse battery staple"
DESCRIPTIONS = [
    "SHELL OIL 5744 OAKLAND CA",
    "TRADER JOE S #123 BERKELEY CA",
    "SQ *BLUE BOTTLE COFFEE OAKLAND CA",
    "NETFLIX.COM",
    "AMAZON MKTPLACE PMTS",
]

pytestmark = pytest.mark.slow


@pytest.fixture
def chromium_path():
    if not Path(CHROMIUM).exists():
        message = "Chromium not installed: apt-get install -y chromium"
        # CI must run this test, never quietly skip it.
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


@pytest.fixture
def labeler(committed_db):
    user = User.objects.create_user("e2e-labeler", password=PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name="labeler"))
    return user


@pytest.fixture
def transactions(committed_db):
    start = date(2025, 5, 1)
    made = [
        Transaction.objects.create(
            account="Checking 1234",
            external_id=f"e2e-{i}",
            posted_on=start + timedelta(days=i),
            description=DESCRIPTIONS[i % len(DESCRIPTIONS)],
            amount=Decimal("-12.34") if i % 7 else Decimal("250.00"),
        )
        for i in range(30)
    ]
    build_window()
    return made


@contextmanager
def chromium_page(chromium_path):
    """A page in a fresh headless Chromium; the ORM may not run inside."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
            ],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(15_000)
        try:
            yield page
        finally:
            browser.close()


def log_in(page, live_server):
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", "e2e-labeler")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#labeling-queue-link")


def press_and_wait(page, key, status):
    """Press ``key`` and wait until the page confirms with ``status``."""
    page.evaluate("document.getElementById('queue-status').textContent = ''")
    page.keyboard.press(key)
    page.wait_for_function(
        "(s) => document.getElementById('queue-status').textContent.startsWith(s)",
        arg=status,
    )
    assert page.locator("#queue-error").is_hidden()


def test_label_with_the_keyboard_in_the_queue(
    live_server, labeler, transactions, chromium_path
):
    with chromium_page(chromium_path) as page:
        labeled = label_five_and_undo_one(page, live_server)

    labels = TransactionLabel.objects.filter(labeled_by=labeler, source="human")
    assert sorted(labels.values_list("txn_id", flat=True)) == sorted(labeled[:4])
    assert not TransactionLabel.objects.filter(txn_id=labeled[-1]).exists()
    history = LabelHistory.objects.filter(actor_id=labeler.pk)
    assert history.filter(operation="insert", new_source="human").count() == 5
    assert history.filter(operation="delete", txn_id=labeled[-1]).count() == 1


def label_five_and_undo_one(page, live_server):
    """Label five transactions with the keys only, undo the last; their ids."""
    log_in(page, live_server)
    page.screenshot(path=ARTIFACTS / "01-index.png")
    page.click("#labeling-queue-link a")
    page.wait_for_selector("#queue-card:not([hidden])")
    page.wait_for_function("document.querySelectorAll('#queue-choices li').length")
    assert page.locator("#queue-left").inner_text() == "30"
    page.screenshot(path=ARTIFACTS / "02-queue.png")

    labeled = []
    for keys in (["1"], ["2"], ["Enter"], ["ArrowDown", "Enter"]):
        labeled.append(int(page.locator("#queue-card").get_attribute("data-txn-id")))
        for key in keys[:-1]:
            page.keyboard.press(key)
        press_and_wait(page, keys[-1], "saved")
    # The fifth one through the category search.
    labeled.append(int(page.locator("#queue-card").get_attribute("data-txn-id")))
    page.keyboard.press("/")
    page.keyboard.type("groc")
    page.wait_for_selector("#queue-matches li.highlight")
    page.screenshot(path=ARTIFACTS / "03-search.png")
    press_and_wait(page, "Enter", "saved: Groceries")
    assert page.locator("#queue-left").inner_text() == "25"
    assert page.locator("#queue-rate").inner_text() == "5"

    press_and_wait(page, "Backspace", "undone")
    shown = int(page.locator("#queue-card").get_attribute("data-txn-id"))
    assert shown == labeled[-1]
    assert page.locator("#queue-left").inner_text() == "26"
    page.screenshot(path=ARTIFACTS / "04-undone.png")
    return labeled


def test_bulk_set_category_in_the_browser(
    live_server, labeler, transactions, chromium_path
):
    """The changelist's "Set category…" action labels a selection (human)."""
    chosen = [t.pk for t in transactions[:3]]
    with chromium_page(chromium_path) as page:
        set_category(page, live_server, chosen, "Transportation")

    labels = TransactionLabel.objects.filter(txn_id__in=chosen)
    assert sorted(labels.values_list("txn_id", "label", "source", "labeled_by")) == [
        (pk, "Transportation", "human", labeler.pk) for pk in sorted(chosen)
    ]


def set_category(page, live_server, txn_ids, category):
    """Select rows on the changelist and run the "Set category…" action."""
    log_in(page, live_server)
    page.goto(f"{live_server.url}/admin/labeling/transaction/")
    for pk in txn_ids:
        page.check(f"input[name=_selected_action][value='{pk}']")
    page.select_option("select[name=action]", "set_category")
    page.click("button[name=index]")
    page.wait_for_selector("select[name=category]")
    page.select_option("select[name=category]", category)
    page.screenshot(path=ARTIFACTS / "05-set-category.png")
    page.click("button[type=submit][name=apply]")
    page.wait_for_selector("ul.messagelist li")
    page.screenshot(path=ARTIFACTS / "06-set-category-done.png")
