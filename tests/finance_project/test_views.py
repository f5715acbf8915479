import pytest

pytestmark = pytest.mark.django_db


def test_health_check_reports_a_live_database(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_home_leads_to_the_admin(client):
    response = client.get("/")

    assert response.status_code == 302
    assert response["Location"] == "/admin/"


def test_admin_pages_render_for_a_superuser(admin_client, make_txn):
    make_txn()

    for url in (
        "/admin/",
        "/admin/labeling/transaction/",
        "/admin/labeling/category/",
        "/admin/labeling/labelhistory/",
        "/admin/mlcore/job/",
        "/admin/mlcore/trainingrun/",
        "/admin/mlcore/featurevector/",
    ):
        assert admin_client.get(url).status_code == 200, url
