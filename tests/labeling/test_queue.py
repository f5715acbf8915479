"""The keyboard labeling queue: ordering, labels, skip, undo, permissions."""

import json
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.urls import reverse

from labeling.labels import set_label
from labeling.models import LabelHistory, Rule, TransactionLabel
from mlcore.features.build import build_window

pytestmark = pytest.mark.django_db

COFFEE = "SQ *BLUE BOTTLE COFFEE OAKLAND CA"
GROCER = "TRADER JOE S #123 BERKELEY CA"
FUEL = "SHELL OIL 5744 OAKLAND CA"


@pytest.fixture
def labeler(db):
    user = User.objects.create_user("lab", password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name="labeler"))
    return user


@pytest.fixture
def client_of(client):
    def login(user):
        client.force_login(user)
        return client

    return login


@pytest.fixture
def lc(client_of, labeler):
    return client_of(labeler)


@pytest.fixture
def txns(make_txn):
    """Three fuel, two grocery and one coffee transaction, with features."""
    made = {"fuel": [], "grocer": [], "coffee": []}
    day = date(2025, 3, 1)
    for key, description, n in [("fuel", FUEL, 3), ("grocer", GROCER, 2)]:
        for i in range(n):
            made[key].append(
                make_txn(description=description, posted_on=day + timedelta(days=i))
            )
    made["coffee"].append(make_txn(description=COFFEE, amount=Decimal("12.00")))
    build_window()
    return made


def get_next(client):
    response = client.get(reverse("labeling_queue_next"))
    assert response.status_code == 200, response.content
    return response.json()


def post(client, name, body):
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post(reverse(name), data, content_type="application/json")


def label(client, txn_id, category="Groceries"):
    response = post(
        client, "labeling_queue_label", {"txn_id": txn_id, "category": category}
    )
    assert response.status_code == 200, response.content
    return response.json()


def test_most_frequent_unlabeled_merchant_first(lc, txns):
    shown = get_next(lc)["transaction"]
    assert shown["merchant"] == "shell"
    # Newest first within a merchant.
    assert shown["id"] == txns["fuel"][-1].pk
    assert shown["direction"] == "out"
    assert shown["description"] == FUEL

    order = []
    data = get_next(lc)
    while data["transaction"]:
        order.append(data["transaction"]["merchant"])
        data = label(lc, data["transaction"]["id"])
    assert order == ["shell"] * 3 + ["trader joes"] * 2 + ["blue bottle coffee"]
    assert data["left"] == 0


def test_labeled_merchants_count_less(lc, txns, labeler):
    # With two fuel transactions labeled elsewhere, groceries lead (2 > 1).
    for txn in txns["fuel"][:2]:
        set_label(txn.pk, "Transportation", "import")
    assert get_next(lc)["transaction"]["merchant"] == "trader joes"


def test_label_writes_a_human_label_with_actor_and_history(lc, labeler, txns):
    data = get_next(lc)
    txn_id = data["transaction"]["id"]
    assert data["suggestions"] == []
    assert len(data["choices"]) == 9

    answer = label(lc, txn_id, "Groceries")

    assert answer["saved"] == {"txn_id": txn_id}
    assert answer["transaction"]["id"] != txn_id
    row = TransactionLabel.objects.get(txn_id=txn_id)
    assert (row.label_id, row.source, row.labeled_by_id) == (
        "Groceries",
        "human",
        labeler.pk,
    )
    history = LabelHistory.objects.get(txn_id=txn_id)
    assert (history.operation, history.new_source, history.actor_id) == (
        "insert",
        "human",
        labeler.pk,
    )


def test_skip_comes_back_at_the_end(lc, txns):
    first = get_next(lc)["transaction"]["id"]
    data = post(lc, "labeling_queue_skip", {"txn_id": first}).json()
    seen = []
    while data["transaction"] and data["transaction"]["id"] != first:
        seen.append(data["transaction"]["id"])
        data = label(lc, data["transaction"]["id"])
    assert len(seen) == 5
    assert data["transaction"]["id"] == first
    assert not TransactionLabel.objects.filter(txn_id=first).exists()


def test_undo_without_previous_label_clears_it(lc, labeler, txns):
    txn_id = get_next(lc)["transaction"]["id"]
    left = label(lc, txn_id)["left"]

    data = post(lc, "labeling_queue_undo", {}).json()

    assert data["undone"] == {"txn_id": txn_id}
    assert data["transaction"]["id"] == txn_id
    assert data["left"] == left + 1
    assert not TransactionLabel.objects.filter(txn_id=txn_id).exists()
    delete = LabelHistory.objects.filter(txn_id=txn_id, operation="delete").get()
    assert delete.actor_id == labeler.pk
    assert not data["can_undo"]
    assert post(lc, "labeling_queue_undo", {}).status_code == 409


@pytest.mark.parametrize("source", ["rule", "human"])
def test_undo_restores_a_previous_label(lc, labeler, txns, source):
    other = User.objects.create_user("other")
    txn_id = get_next(lc)["transaction"]["id"]
    set_label(txn_id, "Transportation", source, actor=other)
    label(lc, txn_id, "Groceries")
    assert TransactionLabel.objects.get(txn_id=txn_id).source == "human"

    assert post(lc, "labeling_queue_undo", {}).status_code == 200

    row = TransactionLabel.objects.get(txn_id=txn_id)
    assert (row.label_id, row.source, row.labeled_by_id) == (
        "Transportation",
        source,
        other.pk,
    )
    steps = list(
        LabelHistory.objects.filter(txn_id=txn_id)
        .order_by("id")
        .values_list("operation", "new_label", "old_label")
    )
    assert steps == [
        ("insert", "Transportation", None),
        ("update", "Groceries", "Transportation"),
        ("delete", None, "Groceries"),
        ("insert", "Transportation", None),
    ]


def test_undo_refuses_when_relabeled_since(lc, txns):
    txn_id = get_next(lc)["transaction"]["id"]
    label(lc, txn_id, "Groceries")
    set_label(txn_id, "Shopping", "human")
    response = post(lc, "labeling_queue_undo", {})
    assert response.status_code == 409
    assert "relabeled" in response.json()["error"]
    assert TransactionLabel.objects.get(txn_id=txn_id).label_id == "Shopping"


def test_label_all_of_a_merchant(lc, labeler, txns, make_txn):
    fuel = [t.pk for t in txns["fuel"]]
    other = User.objects.create_user("other")
    set_label(fuel[0], "Shopping", "human", actor=other)
    shown = get_next(lc)["transaction"]["id"]
    assert shown == fuel[2]

    info = lc.get(reverse("labeling_queue_merchant"), {"txn_id": shown}).json()
    assert info == {"merchant": "shell", "others": 1}

    response = post(
        lc,
        "labeling_queue_label_merchant",
        {"txn_id": shown, "category": "Transportation"},
    )
    assert response.status_code == 200, response.content
    assert response.json()["saved"]["rule_labels"] == 1
    labels = {
        row.txn_id: (row.label_id, row.source)
        for row in TransactionLabel.objects.filter(txn_id__in=fuel)
    }
    assert labels == {
        fuel[0]: ("Shopping", "human"),  # someone else's human label stays
        fuel[1]: ("Transportation", "rule"),
        fuel[2]: ("Transportation", "human"),
    }
    assert response.json()["left"] == 3  # two groceries and the coffee
    assert response.json()["transaction"]["merchant"] == "trader joes"

    # Undo takes back the rule labels too.
    assert post(lc, "labeling_queue_undo", {}).status_code == 200
    assert set(
        TransactionLabel.objects.filter(txn_id__in=fuel).values_list(
            "txn_id", flat=True
        )
    ) == {fuel[0]}


def test_left_and_labels_per_hour(lc, labeler, txns):
    data = get_next(lc)
    assert data["left"] == 6
    assert data["labels_last_hour"] == 0
    set_label(txns["coffee"][0].pk, "Coffee Shops", "human", actor=labeler)
    set_label(txns["grocer"][0].pk, "Groceries", "rule", actor=labeler)
    data = label(lc, data["transaction"]["id"])
    # The session counter counts the queue's own label; the page recounts.
    assert data["left"] == 5
    assert data["labels_last_hour"] == 2
    lc.get(reverse("labeling_queue"))
    assert get_next(lc)["left"] == 3


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"txn_id": 1, "category": "No Such Thing"}, 404, "does not exist"),
        ("{not json", 400, "not valid JSON"),
        ("[1, 2]", 400, "JSON object"),
        ({"category": "Groceries"}, 400, "txn_id"),
        ({"txn_id": "abc", "category": "Groceries"}, 400, "txn_id"),
        ({"txn_id": True, "category": "Groceries"}, 400, "txn_id"),
        ({"txn_id": 10**30, "category": "Groceries"}, 404, "does not exist"),
        ({"txn_id": 987654321, "category": "Groceries"}, 404, "does not exist"),
    ],
)
def test_bad_input_is_a_clear_4xx(lc, txns, body, status, message):
    response = post(lc, "labeling_queue_label", body)
    assert response.status_code == status
    assert message in response.json()["error"]


def test_unknown_category_is_refused(lc, txns):
    txn_id = get_next(lc)["transaction"]["id"]
    for category in ["No Such Thing", "", 7]:
        response = post(
            lc, "labeling_queue_label", {"txn_id": txn_id, "category": category}
        )
        assert response.status_code == 400
        assert "category" in response.json()["error"]
    assert not TransactionLabel.objects.filter(txn_id=txn_id).exists()


def test_merchant_needs_features(lc, make_txn):
    txn = make_txn()
    response = lc.get(reverse("labeling_queue_merchant"), {"txn_id": txn.pk})
    assert response.status_code == 400
    assert "no merchant" in response.json()["error"]
    assert lc.get(reverse("labeling_queue_merchant")).status_code == 400


def test_anonymous_is_sent_to_the_login(client):
    for name in ["labeling_queue", "labeling_queue_next"]:
        response = client.get(reverse(name))
        assert response.status_code == 302
        assert reverse("admin:login") in response["Location"]


def test_staff_without_permission_gets_403(client_of, txns):
    user = User.objects.create_user("viewer", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_transaction"))
    client = client_of(user)
    assert client.get(reverse("labeling_queue")).status_code == 403
    assert client.get(reverse("labeling_queue_next")).status_code == 403
    response = post(client, "labeling_queue_label", {"txn_id": 1, "category": "x"})
    assert response.status_code == 403
    assert "error" in response.json()
    index = client.get(reverse("admin:index"))
    assert b"Labeling queue" not in index.content


def test_labeler_sees_the_page_and_the_index_link(lc, txns):
    page = lc.get(reverse("labeling_queue"))
    assert page.status_code == 200
    assert b"labeling/queue.js" in page.content
    assert b'id="queue-categories"' in page.content
    index = lc.get(reverse("admin:index"))
    assert reverse("labeling_queue").encode() in index.content


def test_superuser_may_use_the_queue(client_of, txns):
    admin = User.objects.create_superuser("root", password="pw")
    assert get_next(client_of(admin))["transaction"]["merchant"] == "shell"


def test_label_all_of_a_merchant_makes_a_rule_its_labels_carry(lc, txns):
    fuel = [t.pk for t in txns["fuel"]]
    shown = get_next(lc)["transaction"]["id"]

    response = post(
        lc,
        "labeling_queue_label_merchant",
        {"txn_id": shown, "category": "Transportation"},
    )

    rule = Rule.objects.get()
    assert response.json()["saved"]["rule"] == rule.pk
    assert (rule.field, rule.operator, rule.pattern) == ("merchant", "equals", "shell")
    assert rule.category_id == "Transportation"
    assert rule.created_by.username == "lab"
    others = TransactionLabel.objects.filter(txn_id__in=fuel, source="rule")
    assert {label.rule_id for label in others} == {rule.pk}
    assert LabelHistory.objects.filter(rule_id=rule.pk).count() == len(others)

    # Undo takes the new rule away with its labels.
    assert post(lc, "labeling_queue_undo", {}).status_code == 200
    assert not Rule.objects.exists()
