"""The transaction changelist, change page and bulk actions in the admin."""

from datetime import date
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from labeling.labels import set_label
from labeling.models import LabelHistory, LabelSource, TransactionLabel
from mlcore.features import build
from mlcore.models import Job

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/labeling/transaction/"


def staff_in(group_name):
    user = User.objects.create_user(f"{group_name}-1", password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name=group_name))
    return user


@pytest.fixture
def labeler_client(client):
    client.force_login(staff_in("labeler"))
    return client


@pytest.fixture
def some_transactions(make_txn):
    txns = [
        make_txn(
            description=f"SQ *BLUE BOTTLE COFFEE #{n} OAKLAND CA",
            posted_on=date(2025, 3, 1 + n),
            amount=Decimal("-4.50") if n % 2 else Decimal("12.00"),
        )
        for n in range(6)
    ]
    build.build_window()
    return txns


def post_action(client, action, txns, **extra):
    return client.post(
        CHANGELIST,
        {
            "action": action,
            "_selected_action": [t.pk for t in txns],
            "index": "0",
            **extra,
        },
        follow=True,
    )


def test_changelist_shows_merchant_amount_and_label_source(
    admin_client, some_transactions
):
    set_label(some_transactions[0].pk, "Food & Dining", LabelSource.RULE)

    page = admin_client.get(CHANGELIST).content.decode()

    assert "blue bottle coffee" in page
    assert "amount-out" in page and "amount-in" in page
    assert "label-source-rule" in page


def test_changelist_query_count_does_not_grow_with_rows(admin_client, make_txn):
    def queries_for_page():
        with CaptureQueriesContext(connection) as queries:
            assert admin_client.get(CHANGELIST).status_code == 200
        return len(queries)

    for n in range(3):
        set_label(make_txn(posted_on=date(2025, 1, 1 + n)).pk, "Groceries", "human")
    build.build_window()
    few = queries_for_page()

    for n in range(30):
        set_label(make_txn(posted_on=date(2025, 2, 1 + n % 28)).pk, "Shopping", "rule")
    build.build_window()

    assert queries_for_page() == few


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("labeled=no", 5),
        ("labeled=yes", 1),
        ("label__source__exact=human", 1),
        ("category=Food+%26+Dining", 1),
        ("month=2025-03", 6),
        ("month=2025-04", 0),
        ("month=not-a-month", 0),
    ],
)
def test_label_filters(admin_client, some_transactions, query, expected):
    set_label(some_transactions[0].pk, "Food & Dining", LabelSource.HUMAN)

    response = admin_client.get(f"{CHANGELIST}?{query}")

    assert len(response.context["cl"].result_list) == expected


def test_search_finds_the_canonical_merchant(admin_client, some_transactions):
    response = admin_client.get(f"{CHANGELIST}?q=blue+bottle+coffee")

    assert len(response.context["cl"].result_list) == len(some_transactions)


def test_set_category_asks_then_writes_human_labels(labeler_client, some_transactions):
    chosen = some_transactions[:3]
    set_label(chosen[0].pk, "Groceries", LabelSource.IMPORT)

    page = post_action(labeler_client, "set_category", chosen)
    assert b'name="category"' in page.content

    done = labeler_client.post(
        CHANGELIST,
        {
            "action": "set_category",
            "_selected_action": [t.pk for t in chosen],
            "category": "Food & Dining",
            "apply": "1",
        },
        follow=True,
    )

    labels = TransactionLabel.objects.filter(txn__in=chosen)
    assert {(label.label_id, label.source) for label in labels} == {
        ("Food & Dining", "human")
    }
    assert {label.labeled_by.username for label in labels} == {"labeler-1"}
    assert "Set Food &amp; Dining on 3 transactions" in done.content.decode()


def test_clear_label_keeps_the_history(labeler_client, some_transactions):
    txn = some_transactions[0]
    set_label(txn.pk, "Food & Dining", LabelSource.HUMAN)

    post_action(labeler_client, "clear_label", [txn])

    assert not TransactionLabel.objects.filter(txn=txn).exists()
    deleted = LabelHistory.objects.get(txn_id=txn.pk, operation="delete")
    assert deleted.actor.username == "labeler-1"


def test_build_features_for_selected_queues_a_job(
    client, some_transactions, django_capture_on_commit_callbacks
):
    client.force_login(staff_in("analyst"))

    with django_capture_on_commit_callbacks(execute=False) as sent:
        page = post_action(client, "build_features", some_transactions[:2])

    job = Job.objects.get()
    assert job.params == {"txn_ids": sorted(t.pk for t in some_transactions[:2])}
    assert len(sent) == 1
    assert f"/admin/mlcore/job/{job.pk}/change/" in page.content.decode()


def test_change_page_shows_features_history_and_same_merchant(
    admin_client, some_transactions
):
    txn = some_transactions[0]
    set_label(txn.pk, "Food & Dining", LabelSource.HUMAN)

    page = admin_client.get(f"{CHANGELIST}{txn.pk}/change/").content.decode()

    assert "is_subscription" in page
    assert "insert" in page
    assert some_transactions[1].description in page


SUGGESTION_ACTIONS = {"accept_suggestion", "suggest_categories"}


@pytest.mark.parametrize(
    ("role", "actions"),
    [
        ("labeler", {"set_category", "clear_label", *SUGGESTION_ACTIONS}),
        (
            "analyst",
            {"set_category", "clear_label", "build_features", *SUGGESTION_ACTIONS},
        ),
    ],
)
def test_actions_follow_the_role(client, role, actions):
    client.force_login(staff_in(role))

    response = client.get(CHANGELIST)

    offered = {
        name for name, _ in response.context["action_form"].fields["action"].choices
    }
    assert offered - {""} == actions


def test_labeler_cannot_delete_or_import(client):
    client.force_login(staff_in("labeler"))

    assert client.get(f"{CHANGELIST}import/").status_code == 403
    assert client.get(f"{CHANGELIST}add/").status_code == 403
