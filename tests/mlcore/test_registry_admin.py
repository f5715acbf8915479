"""The model registry, suggestions and training in the admin."""

import re
import time
from io import StringIO

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command

from labeling.labels import bulk_set_labels
from labeling.models import LabelSource
from mlcore import registry
from mlcore.features import build
from mlcore.models import (
    Alias,
    Job,
    JobStatus,
    ModelAlias,
    ModelAliasChange,
    ModelVersion,
    Suggestion,
    TrainingRun,
)
from tests.api.test_registry import make_version
from tests.trained_model import remove_everything

pytestmark = pytest.mark.django_db

VERSIONS = "/admin/mlcore/modelversion/"
ALIASES = "/admin/mlcore/modelalias/"


def login_as(client, role):
    user = User.objects.create_user(f"{role}-1", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    client.force_login(user)
    return user


@pytest.fixture(autouse=True)
def fresh_aliases():
    registry.forget_serving_versions()
    yield
    registry.forget_serving_versions()


def messages_of(response):
    return [str(m) for m in response.context["messages"]]


def test_a_version_shows_its_figures_aliases_and_buttons(client):
    login_as(client, "analyst")
    version = make_version()
    registry.promote(version, Alias.CHAMPION)

    listed = client.get(VERSIONS).content.decode()
    page = client.get(f"{VERSIONS}{version.pk}/change/").content.decode()

    assert "91%" in listed and "0.850" in listed and "champion" in listed
    assert "70% (confidence ≥ 0.80)" in page
    assert "<td>≥ 0.50</td><td>95%</td><td>93%</td><td>190</td>" in page
    assert "Promote to champion" in page and "Make challenger" in page


def test_an_analyst_promotes_after_confirming_and_the_log_names_them(client):
    analyst = login_as(client, "analyst")
    version = make_version()
    url = f"{VERSIONS}{version.pk}/promote/challenger/"

    confirm = client.get(url)
    response = client.post(url, {"reason": "try it on 10%"}, follow=True)

    assert "Point challenger at model v" in confirm.content.decode()
    assert messages_of(response) == [f"{version} is now the challenger."]
    assert ModelAlias.objects.get(alias="challenger").model_version == version
    change = ModelAliasChange.objects.get()
    assert (change.action, change.changed_by, change.reason) == (
        "promote",
        analyst,
        "try it on 10%",
    )
    log = client.get("/admin/mlcore/modelaliaschange/").content.decode()
    assert analyst.username in log


def test_roll_back_and_remove_from_the_alias_list(client):
    analyst = login_as(client, "analyst")
    first, second = make_version(), make_version()
    registry.promote(first, Alias.CHAMPION)
    registry.promote(second, Alias.CHAMPION)
    registry.promote(first, Alias.CHALLENGER)

    listed = client.get(ALIASES).content.decode()
    rolled = client.post(f"{ALIASES}champion/rollback/", {"reason": "r"}, follow=True)
    removed = client.post(f"{ALIASES}challenger/remove/", follow=True)
    again = client.post(f"{ALIASES}champion/rollback/", follow=True)

    assert "Roll back" in listed and "Remove" in listed
    assert messages_of(rolled) == [f"champion is back at {first}."]
    assert messages_of(removed) == ["Removed challenger."]
    assert "has no earlier version" in messages_of(again)[0]
    assert dict(ModelAlias.objects.values_list("alias", "model_version")) == {
        "champion": first.pk
    }
    assert list(
        ModelAliasChange.objects.filter(changed_by=analyst).values_list(
            "action", flat=True
        )
    ) == ["remove", "rollback"]


def test_labelers_cannot_see_or_change_the_registry(client):
    login_as(client, "labeler")
    version = make_version()
    registry.promote(version, Alias.CHAMPION)

    assert client.get(VERSIONS).status_code == 403
    assert client.post(f"{VERSIONS}{version.pk}/promote/champion/").status_code == 403
    assert client.post(f"{ALIASES}champion/rollback/").status_code == 403
    assert client.post(f"{ALIASES}champion/remove/").status_code == 403
    assert ModelAliasChange.objects.count() == 1


def test_the_suggestion_list_shows_the_arms_side_by_side(client, make_txn):
    login_as(client, "analyst")
    champion, challenger = make_version(), make_version()
    txns = [make_txn() for _ in range(5)]
    for txn, (version, arm) in zip(
        txns,
        [(champion, "champion")] * 3 + [(challenger, "challenger")] * 2,
        strict=True,
    ):
        Suggestion.objects.create(
            txn=txn, model_version=version, arm=arm, label="Groceries", confidence=0.9
        )
    bulk_set_labels(
        {txns[0].pk: "Groceries", txns[1].pk: "Travel", txns[3].pk: "Groceries"},
        LabelSource.HUMAN,
    )

    page = client.get("/admin/mlcore/suggestion/").content.decode()
    filtered = client.get("/admin/mlcore/suggestion/", {"arm": "challenger"})

    assert arm_table(page) == [
        # model, arm, served, transactions, labeled by a person, correct,
        # accuracy, accepted, overridden
        [f"v{challenger.pk}", "challenger", "2", "2", "1", "1", "100%", "1", "0"],
        [f"v{champion.pk}", "champion", "3", "3", "2", "1", "50%", "1", "1"],
    ]
    assert len(filtered.context["cl"].result_list) == 2


def arm_table(page):
    table = page.split('id="arm-report"')[1].split("</table>")[0]
    body = table.split("<tbody>")[1]
    return [
        re.findall(r"<td>(.*?)</td>", tr)
        for tr in re.findall(r"<tr>(.*?)</tr>", body, re.S)
    ]


def test_the_train_button_is_there_for_analysts_only(client):
    login_as(client, "analyst")
    assert "Train model" in client.get("/admin/mlcore/job/").content.decode()

    response = client.post("/admin/mlcore/job/start/training/", follow=True)

    job = Job.objects.get()
    assert (job.kind, job.status) == (Job.Kind.TRAINING, JobStatus.QUEUED)
    assert "Queued" in messages_of(response)[0]
    login_as(client, "labeler")
    assert "Train model" not in client.get("/admin/mlcore/job/").content.decode()
    assert client.post("/admin/mlcore/job/start/training/").status_code == 403


@pytest.mark.slow
def test_training_started_from_the_admin_registers_a_champion(
    client, celery_worker, tmp_path, settings
):
    settings.MODEL_STORAGE_DIR = tmp_path
    call_command(
        "generate_transactions",
        count=2_000,
        months=6,
        seed=9,
        label_fraction=0.6,
        stdout=StringIO(),
    )
    build.build_window()
    analyst = login_as(client, "analyst")

    client.post("/admin/mlcore/job/start/training/")
    job = Job.objects.get(kind=Job.Kind.TRAINING)
    deadline = time.monotonic() + 180
    try:
        while job.status in (JobStatus.QUEUED, JobStatus.RUNNING):
            assert time.monotonic() < deadline, job.log_tail
            time.sleep(0.5)
            job.refresh_from_db()

        assert job.status == JobStatus.SUCCEEDED, job.error
        version = ModelVersion.objects.get(pk=job.result["model_version"])
        assert version.training_run.created_by == analyst
        assert TrainingRun.objects.get().job == job
        assert ModelAlias.objects.get(alias="champion").model_version == version
    finally:
        remove_everything()
