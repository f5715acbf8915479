"""Model registry: artifacts on disk, versions and aliases in the database.

A trained model is written once with joblib under
``settings.MODEL_STORAGE_DIR``; its SHA-256 is stored with the version and
checked on every load, so a swapped or truncated file is refused rather
than served. Two aliases, ``champion`` and ``challenger``, name the
versions that serve suggestions. Moving an alias is logged with who did it
and when; rolling back returns an alias to the version it had before.
"""

import hashlib
import threading
import time
from pathlib import Path

import joblib
from django.conf import settings
from django.db import transaction

from mlcore.models import Alias, ModelAlias, ModelAliasChange, ModelVersion


class ArtifactError(Exception):
    """A model file is missing or does not match its recorded hash."""


class RegistryError(Exception):
    """An alias change that cannot be made (nothing to roll back to...)."""


def save_artifact(model, name):
    """Write ``model`` to storage as ``name``; return (relative path, sha256)."""
    storage = Path(settings.MODEL_STORAGE_DIR)
    storage.mkdir(parents=True, exist_ok=True)
    path = storage / name
    partial = path.with_suffix(".partial")
    joblib.dump(model, partial, compress=3)
    digest = _sha256(partial)
    partial.replace(path)
    return name, digest


def register(training_run, model, artifact_name=None):
    """Store ``model`` and record it as a new version of ``training_run``."""
    name = artifact_name or f"model-run{training_run.pk}.joblib"
    path, digest = save_artifact(model, name)
    version = ModelVersion.objects.create(
        training_run=training_run,
        artifact_path=path,
        artifact_sha256=digest,
        classes=[str(c) for c in model.classes_],
    )
    training_run.artifact_path = path
    training_run.artifact_sha256 = digest
    training_run.save(update_fields=["artifact_path", "artifact_sha256"])
    return version


_cache = {}
_cache_lock = threading.Lock()


def load(version):
    """The model of ``version``, hash-checked; cached per process."""
    key = (version.pk, version.artifact_sha256)
    with _cache_lock:
        if key in _cache:
            return _cache[key]
    path = Path(settings.MODEL_STORAGE_DIR) / version.artifact_path
    if not path.is_file():
        raise ArtifactError(f"model v{version.pk}: artifact {path} is missing")
    digest = _sha256(path)
    if digest != version.artifact_sha256:
        raise ArtifactError(
            f"model v{version.pk}: artifact {path} has SHA-256 {digest}, "
            f"expected {version.artifact_sha256}"
        )
    model = joblib.load(path)
    with _cache_lock:
        _cache[key] = model
    return model


def aliases():
    """``{alias: ModelVersion}`` for the aliases that are set."""
    return {
        row.alias: row.model_version
        for row in ModelAlias.objects.select_related("model_version__training_run")
    }


_alias_snapshot = {"at": float("-inf"), "versions": {}}


def serving_versions():
    """The aliased versions, re-read at most every ``SUGGESTIONS_ALIAS_TTL`` s.

    Web processes answer many requests a second; a short-lived copy keeps
    that from being a query per request, and a promotion reaches every
    process within the TTL.
    """
    now = time.monotonic()
    if now - _alias_snapshot["at"] >= settings.SUGGESTIONS_ALIAS_TTL:
        _alias_snapshot["versions"] = aliases()
        _alias_snapshot["at"] = now
    return _alias_snapshot["versions"]


def forget_serving_versions():
    """Make the next ``serving_versions`` call read the aliases again."""
    _alias_snapshot["at"] = float("-inf")


@transaction.atomic
def promote(version, alias=Alias.CHAMPION, user=None, reason=""):
    """Point ``alias`` at ``version``, logging the change.

    Promoting the challenger to champion also removes the challenger alias,
    so one version never holds both.
    """
    alias = Alias(alias)
    current = _lock_alias(alias)
    previous = current.model_version if current else None
    if previous == version:
        return version
    if alias == Alias.CHALLENGER:
        champion = _lock_alias(Alias.CHAMPION)
        if champion and champion.model_version == version:
            raise RegistryError(
                f"v{version.pk} is the champion; a challenger must be another version"
            )
    ModelAlias.objects.update_or_create(
        alias=alias, defaults={"model_version": version, "updated_by": user}
    )
    ModelAliasChange.objects.create(
        alias=alias,
        action=ModelAliasChange.Action.PROMOTE,
        previous_version=previous,
        model_version=version,
        changed_by=user,
        reason=reason,
    )
    if alias == Alias.CHAMPION:
        challenger = _lock_alias(Alias.CHALLENGER)
        if challenger and challenger.model_version == version:
            _remove(challenger, user, "promoted to champion")
    forget_serving_versions()
    return version


@transaction.atomic
def rollback(alias=Alias.CHAMPION, user=None, reason=""):
    """Return ``alias`` to the version it had before the current one was
    promoted."""
    alias = Alias(alias)
    current = _lock_alias(alias)
    if current is None:
        raise RegistryError(f"{alias} is not set; there is nothing to roll back")
    # The promotion that put the current version in place says what was
    # there before; repeated rollbacks walk back through promotions.
    last = (
        ModelAliasChange.objects.filter(
            alias=alias,
            model_version=current.model_version,
            action=ModelAliasChange.Action.PROMOTE,
        )
        .order_by("-changed_at", "-id")
        .first()
    )
    target = last.previous_version if last else None
    if target is None:
        raise RegistryError(
            f"{alias} v{current.model_version_id} has no earlier version to roll "
            "back to"
        )
    ModelAlias.objects.filter(alias=alias).update(model_version=target, updated_by=user)
    ModelAliasChange.objects.create(
        alias=alias,
        action=ModelAliasChange.Action.ROLLBACK,
        previous_version=current.model_version,
        model_version=target,
        changed_by=user,
        reason=reason,
    )
    forget_serving_versions()
    return target


@transaction.atomic
def remove(alias, user=None, reason=""):
    """Unset ``alias`` (for instance, end an A/B test)."""
    current = _lock_alias(Alias(alias))
    if current is None:
        raise RegistryError(f"{alias} is not set")
    _remove(current, user, reason)
    forget_serving_versions()


def _remove(current, user, reason):
    ModelAliasChange.objects.create(
        alias=current.alias,
        action=ModelAliasChange.Action.REMOVE,
        previous_version=current.model_version,
        model_version=None,
        changed_by=user,
        reason=reason,
    )
    current.delete()


def _lock_alias(alias):
    return (
        ModelAlias.objects.select_for_update()
        .select_related("model_version")
        .filter(alias=alias)
        .first()
    )


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
