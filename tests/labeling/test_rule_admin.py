"""Rules in the admin, end to end on demo data: create, dry-run, apply, and
read the precision."""

from io import StringIO

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command

from labeling.models import Rule, RuleRun, TransactionLabel
from labeling.tasks import apply_rules_task

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/labeling/rule/"

NEW_RULE = {
    "name": "Wages",
    "category": "Income",
    "priority": "60",
    "enabled": "on",
    "field": "description",
    "operator": "regex",
    "pattern": r"wage pay|payroll",
    "sign": "in",
    "amount_min": "",
    "amount_max": "",
    "account": "",
    "day_from": "",
    "day_to": "",
}


@pytest.fixture
def analyst_client(client):
    user = User.objects.create_user("analyst-1", password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name="analyst"))
    client.force_login(user)
    return client


@pytest.fixture
def demo(db):
    call_command(
        "generate_transactions", count=2_000, months=6, seed=8, stdout=StringIO()
    )


def test_a_bad_regex_is_shown_with_its_position(analyst_client):
    response = analyst_client.post(
        f"{CHANGELIST}add/", {**NEW_RULE, "pattern": "wage (pay"}
    )

    assert response.status_code == 200
    assert "Invalid regular expression at position 5" in response.content.decode()
    assert not Rule.objects.filter(name="Wages").exists()


def test_create_dry_run_apply_and_read_the_precision(
    analyst_client, demo, django_capture_on_commit_callbacks
):
    response = analyst_client.post(f"{CHANGELIST}add/", NEW_RULE, follow=True)
    assert response.status_code == 200
    rule = Rule.objects.get(name="Wages")
    assert rule.created_by.username == "analyst-1"

    # The dry run: an intermediate page with what would change.
    selection = {"action": "dry_run_then_apply", "_selected_action": [rule.pk]}
    page = analyst_client.post(CHANGELIST, selection)
    html = page.content.decode()
    assert page.status_code == 200
    assert "Nothing was written" in html
    assert "would be labeled" in html
    assert 'name="apply"' in html
    dry = RuleRun.objects.get(rule=rule, dry_run=True)
    assert dry.labeled > 0 and len(dry.sample) > 0
    assert str(dry.sample[0]["txn"]) in html
    assert not TransactionLabel.objects.filter(rule_id=rule.pk).exists()

    # Apply: queued for a worker after the commit; run it as a worker would.
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = analyst_client.post(
            CHANGELIST, {**selection, "apply": "1"}, follow=True
        )
    assert "Queued 1 rule run" in response.content.decode()
    applied = RuleRun.objects.get(rule=rule, dry_run=False)
    assert applied.status == "queued"
    assert len(callbacks) == 1
    apply_rules_task.run([applied.pk])
    applied.refresh_from_db()
    assert applied.status == "succeeded"
    assert applied.labeled == dry.labeled
    assert TransactionLabel.objects.filter(rule_id=rule.pk).count() == (
        applied.labeled + applied.unchanged
    )

    # The list shows its figures: every paycheck a person labeled is income.
    listing = analyst_client.get(CHANGELIST).content.decode()
    assert "Wages" in listing
    assert "100.0%" in listing
    # The sloppy demo rule is flagged under the precision floor.
    assert "rule-below-floor" in listing


def test_rule_runs_are_read_only(analyst_client, demo):
    run = RuleRun.objects.first()

    page = analyst_client.get(f"/admin/labeling/rulerun/{run.pk}/change/")

    assert page.status_code == 200
    assert "sample of the changes" in page.content.decode().lower()
    assert analyst_client.get("/admin/labeling/rulerun/add/").status_code == 403
