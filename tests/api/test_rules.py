"""/api/rules/ and /api/rule-runs/: editing, validation, figures, dry runs
and applying."""

from decimal import Decimal

import pytest

from labeling.labels import set_label
from labeling.models import Rule, RuleRun, TransactionLabel
from tests.api import client_for

pytestmark = pytest.mark.django_db

FUEL = {
    "name": "Fuel",
    "operator": "regex",
    "pattern": r"\bshell\b",
    "sign": "out",
    "amount_min": "15.00",
    "category": "Transportation",
}


@pytest.fixture
def analyst():
    client, _ = client_for("analyst")
    return client


@pytest.fixture
def fuel(make_txn):
    return [
        make_txn(description="SHELL OIL 5744 OAKLAND CA", amount=Decimal("-40.00"))
        for _ in range(3)
    ]


def test_create_a_rule(analyst):
    response = analyst.post("/api/rules/", FUEL, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["category"] == "Transportation"
    assert body["created_by"] is not None
    assert body["coverage"] == 0 and body["measured"] is False
    assert body["conditions"].startswith("description matches")


def test_an_invalid_regex_is_a_400_naming_the_position(analyst):
    response = analyst.post(
        "/api/rules/", {**FUEL, "pattern": "(shell|bp"}, format="json"
    )

    assert response.status_code == 400
    assert "position 0" in response.json()["pattern"][0]


def test_a_catastrophic_regex_is_refused(analyst):
    response = analyst.post(
        "/api/rules/", {**FUEL, "pattern": r"(\w+\s?)+$"}, format="json"
    )

    assert response.status_code == 400
    assert "exponential" in response.json()["pattern"][0]


def test_a_partial_update_is_checked_with_the_stored_values(analyst):
    rule = Rule.objects.create(
        name="Big", pattern="x", amount_min=Decimal("100"), category_id="Income"
    )

    response = analyst.patch(
        f"/api/rules/{rule.pk}/", {"amount_max": "5.00"}, format="json"
    )

    assert response.status_code == 400
    assert "amount_max" in response.json()


def test_dry_run_then_apply_then_read_the_precision(analyst, fuel):
    set_label(fuel[0].pk, "Food & Dining", "human")
    rule_id = analyst.post("/api/rules/", FUEL, format="json").json()["id"]

    dry = analyst.post(f"/api/rules/{rule_id}/dry-run/")

    assert dry.status_code == 200, dry.content
    assert dry.json()["dry_run"] is True
    assert dry.json()["labeled"] == 2
    assert dry.json()["skipped_higher_source"] == 1
    assert [c["txn"] for c in dry.json()["sample"]] == [t.pk for t in fuel[1:]]
    assert not TransactionLabel.objects.filter(rule_id=rule_id).exists()

    figures = analyst.get(f"/api/rules/{rule_id}/").json()
    assert (figures["coverage"], figures["human_labeled"], figures["agreed"]) == (
        3,
        1,
        0,
    )
    assert figures["precision"] == 0.0
    assert figures["below_precision_floor"] is True

    applied = analyst.post(f"/api/rules/{rule_id}/apply/")
    assert applied.status_code == 202
    assert applied["Location"].endswith(f"/api/rule-runs/{applied.json()['id']}/")
    assert applied.json()["status"] == "queued"
    run = analyst.get(f"/api/rule-runs/?rule={rule_id}&dry_run=false").json()
    assert [r["id"] for r in run["results"]] == [applied.json()["id"]]


def test_applying_a_disabled_rule_is_a_409(analyst):
    rule = Rule.objects.create(
        name="Off", pattern="x", category_id="Income", enabled=False
    )

    response = analyst.post(f"/api/rules/{rule.pk}/apply/")

    assert response.status_code == 409
    assert not RuleRun.objects.exists()


@pytest.mark.parametrize(
    ("method", "path", "role", "expected"),
    [
        ("get", "/api/rules/", "labeler", 200),
        ("post", "/api/rules/", "labeler", 403),
        ("post", "/api/rules/{rule}/dry-run/", "labeler", 403),
        ("post", "/api/rules/{rule}/apply/", "labeler", 403),
        ("get", "/api/rule-runs/", "labeler", 200),
        ("delete", "/api/rules/{rule}/", "analyst", 403),
        ("delete", "/api/rules/{rule}/", "superuser", 204),
        ("get", "/api/rules/", "anonymous", 401),
    ],
)
def test_roles(method, path, role, expected):
    rule = Rule.objects.create(name="Any", pattern="x", category_id="Income")
    client, _ = client_for(role)

    response = getattr(client, method)(path.format(rule=rule.pk), FUEL, format="json")

    assert response.status_code == expected, response.content


def test_a_category_name_with_a_nul_byte_is_unknown_not_a_crash(analyst):
    response = analyst.post(
        "/api/rules/", {**FUEL, "category": "Income\x00"}, format="json"
    )

    assert response.status_code == 400
    assert "category" in response.json()
