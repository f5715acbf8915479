"""Starting and following jobs from the admin."""

import pytest
from django.contrib.auth.models import Group, User

from mlcore.models import Job, JobStatus

pytestmark = pytest.mark.django_db

JOBS = "/admin/mlcore/job/"


def login_as(client, role):
    user = User.objects.create_user(f"{role}-1", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    client.force_login(user)
    return user


def test_analyst_starts_a_feature_build_and_is_told_where_it_is(
    client, django_capture_on_commit_callbacks
):
    analyst = login_as(client, "analyst")

    with django_capture_on_commit_callbacks(execute=False) as sent:
        response = client.post(f"{JOBS}start/feature_build/", follow=True)

    job = Job.objects.get()
    assert (job.kind, job.status, job.created_by) == (
        "feature_build",
        "queued",
        analyst,
    )
    assert len(sent) == 1  # the task goes to the broker once the job commits
    assert f"/admin/mlcore/job/{job.pk}/change/" in response.content.decode()


def test_a_second_start_is_refused_while_one_is_active(client):
    login_as(client, "analyst")
    running = Job.objects.create(kind=Job.Kind.DBT_RUN, status=JobStatus.RUNNING)

    response = client.post(f"{JOBS}start/dbt_run/", follow=True)

    assert "Not started" in response.content.decode()
    assert list(Job.objects.all()) == [running]


def test_labeler_sees_jobs_but_cannot_start_them(client):
    login_as(client, "labeler")

    page = client.get(JOBS)
    assert page.status_code == 200
    assert b"Build features" not in page.content
    assert client.post(f"{JOBS}start/feature_build/").status_code == 403


def test_unknown_job_kind_is_not_found(admin_client):
    assert admin_client.post(f"{JOBS}start/launch_rockets/").status_code == 404


def test_a_running_job_is_followed_without_reloading(admin_client):
    job = Job.objects.create(
        kind=Job.Kind.FEATURE_BUILD,
        status=JobStatus.RUNNING,
        progress_done=5,
        progress_total=10,
        log_tail="chunk 0: 5 transactions",
    )

    page = admin_client.get(f"{JOBS}{job.pk}/change/").content.decode()
    assert "mlcore/job_progress.js" in page
    assert f'data-job-id="{job.pk}" data-status="running"' in page

    Job.objects.filter(pk=job.pk).update(progress_done=10, status="succeeded")
    polled = admin_client.get(f"{JOBS}progress/?ids={job.pk}").json()[str(job.pk)]

    assert polled["status"] == "succeeded"
    assert "10 / 10 (100%)" in polled["progress"]
    assert polled["log_tail"] == "chunk 0: 5 transactions"


def test_progress_rejects_malformed_ids(admin_client):
    response = admin_client.get(f"{JOBS}progress/?ids=1,two")

    assert response.status_code == 400
    assert response.json() == {"error": "ids must be job numbers"}
