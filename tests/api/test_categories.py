"""Categories: everyone with a role reads them; analysts edit them."""

import pytest

from labeling.models import Category
from tests.api import client_for

URL = "/api/categories/"


@pytest.fixture
def analyst(db):
    return client_for("analyst")


def test_list_is_one_page(analyst, django_assert_max_num_queries):
    client, _ = analyst
    with django_assert_max_num_queries(3):
        response = client.get(URL)
    names = [row["name"] for row in response.json()]
    assert "Groceries" in names
    assert len(names) == Category.objects.count()


def test_create_and_update(analyst):
    client, _ = analyst
    created = client.post(URL, {"name": "Pets", "parent": None}, format="json")
    assert created.status_code == 201, created.json()
    pk = created.json()["id"]
    child = client.post(URL, {"name": "Vet", "parent": "Pets"}, format="json")
    assert child.json()["parent"] == "Pets"
    response = client.patch(f"{URL}{pk}/", {"is_active": False}, format="json")
    assert response.status_code == 200
    assert Category.objects.get(pk=pk).is_active is False


@pytest.mark.parametrize(
    "body",
    [
        {"name": "Groceries"},  # exists
        {"name": ""},
        {"name": "x" * 65},
        {"name": "Kibble", "parent": "No such"},
    ],
)
def test_create_invalid_is_400(analyst, body):
    client, _ = analyst
    assert client.post(URL, body, format="json").status_code == 400


def test_only_two_levels(analyst):
    client, _ = analyst
    client.post(URL, {"name": "Pets"}, format="json")
    client.post(URL, {"name": "Vet", "parent": "Pets"}, format="json")
    response = client.post(URL, {"name": "Surgery", "parent": "Vet"}, format="json")
    assert response.status_code == 400
    pets = Category.objects.get(name="Pets")
    response = client.patch(f"{URL}{pets.pk}/", {"parent": "Pets"}, format="json")
    assert response.status_code == 400


def test_rename_in_use_follows_labels(analyst, make_txn):
    from labeling.labels import set_label
    from labeling.models import TransactionLabel

    client, _ = analyst
    txn = make_txn()
    set_label(txn.pk, "Books", "human")
    books = Category.objects.get(name="Books")
    response = client.patch(f"{URL}{books.pk}/", {"name": "Reading"}, format="json")
    assert response.status_code == 200
    assert TransactionLabel.objects.get(txn=txn).label_id == "Reading"


def test_unknown_category_is_404(analyst):
    client, _ = analyst
    assert client.get(f"{URL}999999/").status_code == 404
    assert client.patch(f"{URL}abc/", {}, format="json").status_code == 404
