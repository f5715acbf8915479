"""Token authentication for the REST API.

It lives apart from ``finance_project.api`` because DRF reads the
authentication classes while its views module is imported, which that
module itself imports.
"""

import functools

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions

from finance_project.db import prepared_cursor


class TokenAuthentication(authentication.TokenAuthentication):
    """DRF's token authentication, reading the token, its user and the
    user's permissions with one prepared query.

    Every API request checks permissions, for which Django's model backend
    would read the user's own and their groups' permissions with a query
    each; here they arrive with the user and fill the backend's per-user
    caches. Superusers hold every permission without a lookup.
    """

    def authenticate_credentials(self, key):
        user_model = get_user_model()
        with prepared_cursor() as cursor:
            cursor.execute(_token_user_sql(), [key])
            row = cursor.fetchone()
            alias = cursor.db.alias
        if row is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))

        created, user_perms, group_perms, *values = row
        fields = [field.attname for field in user_model._meta.concrete_fields]
        user = user_model.from_db(alias, fields, values)
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        if not user.is_superuser:
            # The attributes ``ModelBackend`` caches a user's permissions in.
            user._user_perm_cache = set(user_perms)
            user._group_perm_cache = set(group_perms)
            user._perm_cache = user._user_perm_cache | user._group_perm_cache

        token_model = self.get_model()
        token = token_model.from_db(
            alias, ["key", "user_id", "created"], [key, user.pk, created]
        )
        token.user = user
        return user, token


@functools.cache
def _token_user_sql():
    """The token's creation time, the user's own and group permissions as
    ``app_label.codename`` arrays, then the user's columns."""
    user_model = get_user_model()
    token_table = TokenAuthentication().get_model()._meta.db_table
    user = user_model._meta
    pk = user.pk.column
    permission = (
        f"SELECT ct.app_label || '.' || p.codename FROM {Permission._meta.db_table} p"
        f" JOIN {ContentType._meta.db_table} ct ON ct.id = p.content_type_id"
    )
    own = user_model.user_permissions.through._meta.db_table
    membership = user_model.groups.through._meta.db_table
    group_permissions = Group.permissions.through._meta.db_table
    columns = ", ".join(f"u.{field.column}" for field in user.concrete_fields)
    return (
        f"SELECT tk.created,"
        f" ARRAY({permission} JOIN {own} up ON up.permission_id = p.id"
        f" WHERE up.user_id = u.{pk}),"
        f" ARRAY({permission} JOIN {group_permissions} gp ON gp.permission_id = p.id"
        f" JOIN {membership} ug ON ug.group_id = gp.group_id"
        f" WHERE ug.user_id = u.{pk}),"
        f" {columns}"
        f" FROM {token_table} tk JOIN {user.db_table} u ON u.{pk} = tk.user_id"
        " WHERE tk.key = %s::text"
    )
