"""The model registry through the API: versions, aliases and their log.

Alias changes need no model file, so versions here are rows only.
"""

import pytest

from mlcore import registry
from mlcore.models import (
    Alias,
    Job,
    ModelAlias,
    ModelAliasChange,
    ModelVersion,
    TrainingRun,
)
from tests.api import client_for

pytestmark = pytest.mark.django_db

METRICS = {
    "n": 200,
    "accuracy": 0.91,
    "macro_f1": 0.85,
    "calibration_error": 0.04,
    "coverage_at_precision": {
        "0.95": {"coverage": 0.7, "threshold": 0.8, "precision": 0.96}
    },
    "thresholds": [
        {"threshold": 0.5, "coverage": 0.95, "precision": 0.93, "count": 190}
    ],
    "per_category": {},
}


def make_version(**metrics):
    run = TrainingRun.objects.create(status="succeeded", metrics={**METRICS, **metrics})
    return ModelVersion.objects.create(
        training_run=run,
        artifact_path=f"model-run{run.pk}.joblib",
        artifact_sha256="0" * 64,
        classes=["Groceries", "Travel"],
    )


@pytest.fixture(autouse=True)
def fresh_aliases():
    registry.forget_serving_versions()
    yield
    registry.forget_serving_versions()


@pytest.fixture
def analyst(db):
    return client_for("analyst")


def test_versions_list_their_figures_and_aliases(analyst):
    client, _ = analyst
    old, new = make_version(), make_version(accuracy=0.95)
    registry.promote(old, Alias.CHAMPION)
    registry.promote(new, Alias.CHALLENGER)

    listed = client.get("/api/model-versions/").json()["results"]
    detail = client.get(f"/api/model-versions/{old.pk}/").json()

    assert [(v["id"], v["aliases"]) for v in listed] == [
        (new.pk, ["challenger"]),
        (old.pk, ["champion"]),
    ]
    assert listed[0]["metrics"]["accuracy"] == 0.95
    assert detail["metrics"]["coverage_at_precision"]["0.95"]["coverage"] == 0.7
    assert detail["metrics"]["thresholds"][0]["count"] == 190
    assert detail["training_run"] == old.training_run_id
    assert "per_category" not in detail["metrics"]


def test_promote_rollback_and_remove_are_logged_with_the_user(analyst):
    client, user = analyst
    first, second, third = make_version(), make_version(), make_version()
    registry.promote(first, Alias.CHAMPION)

    promoted = client.post(
        f"/api/model-versions/{second.pk}/promote/",
        {"alias": "champion", "reason": "better macro-F1"},
        format="json",
    )
    challenger = client.post(
        f"/api/model-versions/{third.pk}/promote/",
        {"alias": "challenger"},
        format="json",
    )
    rolled = client.post(
        "/api/model-aliases/champion/rollback/", {"reason": "worse live"}, format="json"
    )
    removed = client.delete("/api/model-aliases/challenger/?reason=ab%20test%20over")

    assert promoted.status_code == challenger.status_code == rolled.status_code == 200
    assert promoted.json()["model_version"] == second.pk
    assert rolled.json() == {
        "alias": "champion",
        "model_version": first.pk,
        "updated_by": user.pk,
        "updated_at": rolled.json()["updated_at"],
    }
    assert removed.status_code == 204
    assert dict(ModelAlias.objects.values_list("alias", "model_version")) == {
        "champion": first.pk
    }
    log = client.get("/api/model-alias-changes/").json()["results"]
    assert [
        (c["alias"], c["action"], c["previous_version"], c["model_version"])
        for c in log
    ] == [
        ("challenger", "remove", third.pk, None),
        ("champion", "rollback", second.pk, first.pk),
        ("challenger", "promote", None, third.pk),
        ("champion", "promote", first.pk, second.pk),
        ("champion", "promote", None, first.pk),
    ]
    assert [c["changed_by"] for c in log[:4]] == [user.pk] * 4
    assert [c["reason"] for c in log[:4]] == [
        "ab test over",
        "worse live",
        "",
        "better macro-F1",
    ]
    only_removals = client.get("/api/model-alias-changes/", {"action": "remove"})
    assert len(only_removals.json()["results"]) == 1


def test_promoting_the_challenger_to_champion_ends_the_test(analyst):
    client, _ = analyst
    champion, challenger = make_version(), make_version()
    registry.promote(champion, Alias.CHAMPION)
    registry.promote(challenger, Alias.CHALLENGER)

    client.post(
        f"/api/model-versions/{challenger.pk}/promote/",
        {"alias": "champion"},
        format="json",
    )

    aliases = client.get("/api/model-aliases/").json()["results"]
    assert [(a["alias"], a["model_version"]) for a in aliases] == [
        ("champion", challenger.pk)
    ]


def test_a_rollback_with_nothing_earlier_is_409_saying_why(analyst):
    client, _ = analyst
    registry.promote(make_version(), Alias.CHAMPION)

    response = client.post("/api/model-aliases/champion/rollback/", {}, format="json")

    assert response.status_code == 409
    assert "no earlier version" in response.json()["detail"]


def test_an_alias_that_is_not_set_is_404(analyst):
    client, _ = analyst

    assert client.delete("/api/model-aliases/challenger/").status_code == 404
    assert client.post("/api/model-aliases/champion/rollback/").status_code == 404


def test_bad_promotions_are_400(analyst):
    client, _ = analyst
    version = make_version()
    url = f"/api/model-versions/{version.pk}/promote/"

    assert client.post(url, {"alias": "king"}, format="json").status_code == 400
    assert client.post(url, {}, format="json").status_code == 400
    long = {"alias": "champion", "reason": "x" * 300}
    assert client.post(url, long, format="json").status_code == 400
    assert not ModelAlias.objects.exists()


def test_labelers_may_not_change_aliases(db):
    client, _ = client_for("labeler")
    version = make_version()
    registry.promote(version, Alias.CHAMPION)

    promote = client.post(
        f"/api/model-versions/{version.pk}/promote/",
        {"alias": "challenger"},
        format="json",
    )

    assert promote.status_code == 403
    assert client.post("/api/model-aliases/champion/rollback/").status_code == 403
    assert client.delete("/api/model-aliases/champion/").status_code == 403
    assert ModelAliasChange.objects.count() == 1


def test_start_training_is_202_then_409(analyst):
    client, user = analyst

    first = client.post(
        "/api/jobs/trainings/",
        {"cutoff": "2026-10", "promote_if_better": False},
        format="json",
    )
    second = client.post("/api/jobs/trainings/", {}, format="json")

    assert first.status_code == 202
    assert first["Location"] == first.json()["url"]
    job = Job.objects.get(pk=first.json()["id"])
    assert (job.kind, job.created_by, job.params) == (
        Job.Kind.TRAINING,
        user,
        {"cutoff": "2026-10-01", "promote_if_better": False},
    )
    assert second.status_code == 409
    assert second.json()["url"] == first.json()["url"]


@pytest.mark.parametrize(
    "body", [{"cutoff": "2026-13"}, {"cutoff": "Oct 2026"}, {"promote_if_better": 3}]
)
def test_bad_training_input_is_400(analyst, body):
    client, _ = analyst

    assert client.post("/api/jobs/trainings/", body, format="json").status_code == 400
    assert not Job.objects.exists()
