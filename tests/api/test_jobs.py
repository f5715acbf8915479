"""Jobs: following them, and starting feature builds and dbt runs."""

import pytest

from mlcore.models import Job, JobStatus
from tests.api import client_for

URL = "/api/jobs/"


@pytest.fixture
def analyst(db):
    return client_for("analyst")


def test_start_feature_build_is_202_with_location(analyst):
    client, user = analyst
    response = client.post(
        f"{URL}feature-builds/",
        {"since": "2025-01-01", "until": "2025-03-31", "batch_size": 5000},
        format="json",
    )
    assert response.status_code == 202
    body = response.json()
    assert response["Location"] == body["url"]
    assert body["url"].endswith(f"{URL}{body['id']}/")
    job = Job.objects.get(pk=body["id"])
    assert (job.kind, job.status, job.created_by) == (
        Job.Kind.FEATURE_BUILD,
        JobStatus.QUEUED,
        user,
    )
    assert job.params == {
        "since": "2025-01-01",
        "until": "2025-03-31",
        "batch_size": 5000,
    }


def test_second_build_is_409_pointing_at_the_first(analyst):
    client, _ = analyst
    first = client.post(f"{URL}feature-builds/", {}, format="json").json()
    response = client.post(f"{URL}feature-builds/", {}, format="json")
    assert response.status_code == 409
    assert response.json()["url"] == first["url"]
    assert response["Location"] == first["url"]
    assert "already queued" in response.json()["detail"]


def test_dbt_run_202_then_409(analyst):
    client, _ = analyst
    body = {"select": "fct_training_view", "full_refresh": True}
    first = client.post(f"{URL}dbt-runs/", body, format="json")
    assert first.status_code == 202
    assert Job.objects.get(pk=first.json()["id"]).params == {
        "select": "fct_training_view",
        "full_refresh": True,
    }
    assert client.post(f"{URL}dbt-runs/", {}, format="json").status_code == 409


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("feature-builds/", {"since": "2025-05-01", "until": "2025-01-01"}),
        ("feature-builds/", {"since": "soon"}),
        ("feature-builds/", {"batch_size": 10}),
        ("dbt-runs/", {"select": "x; rm -rf /"}),
        ("dbt-runs/", {"full_refresh": "perhaps"}),
    ],
)
def test_bad_job_input_is_400(analyst, path, body):
    client, _ = analyst
    assert client.post(f"{URL}{path}", body, format="json").status_code == 400
    assert not Job.objects.exists()


def test_list_and_retrieve_with_progress(analyst, django_assert_max_num_queries):
    client, _ = analyst
    done = Job.objects.create(
        kind=Job.Kind.FEATURE_BUILD,
        status=JobStatus.SUCCEEDED,
        progress_done=50,
        progress_total=200,
    )
    Job.objects.create(kind=Job.Kind.DBT_RUN)
    with django_assert_max_num_queries(3):
        response = client.get(URL)
    assert [row["kind"] for row in response.json()["results"]] == [
        "dbt_run",
        "feature_build",
    ]
    body = client.get(f"{URL}{done.pk}/").json()
    assert body["progress_percent"] == 25.0
    assert client.get(f"{URL}?status=succeeded").json()["results"][0]["id"] == done.pk
    assert client.get(f"{URL}?kind=nope").status_code == 400
    assert client.get(f"{URL}999999/").status_code == 404


def test_job_starts_are_throttled(analyst, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"writes": "100/min", "jobs": "2/min"},
    }
    client, _ = analyst
    codes = [
        client.post(f"{URL}dbt-runs/", {}, format="json").status_code for _ in range(3)
    ]
    assert codes == [202, 409, 429]
