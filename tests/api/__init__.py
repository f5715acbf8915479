"""Tests of the REST API; helpers shared by its modules."""

import itertools

from django.contrib.auth.models import Group, User
from rest_framework.test import APIClient

ROLES = ("anonymous", "labeler", "analyst", "superuser")

_names = itertools.count(1)


def make_user(role):
    """A user in one of the roles the migrations create (or a superuser)."""
    if role == "anonymous":
        return None
    name = f"{role}-{next(_names)}"
    if role == "superuser":
        return User.objects.create_superuser(name, password="unused-pass-1")
    user = User.objects.create_user(name, password="unused-pass-1")
    user.groups.add(Group.objects.get(name=role))
    return user


def client_for(role):
    """An API client logged in as a new user of ``role``; and the user."""
    client = APIClient()
    user = make_user(role)
    if user is not None:
        client.force_authenticate(user)
    return client, user
