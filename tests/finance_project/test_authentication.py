"""Token authentication reads the user and their permissions in one query."""

import pytest
from django.contrib.auth.models import Group, Permission
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.api import make_user

pytestmark = pytest.mark.django_db

URL = "/api/categories/"


def token_client(user):
    client = APIClient()
    client.credentials(
        HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}"
    )
    return client


def test_group_permissions_arrive_with_the_user(django_assert_num_queries):
    client = token_client(make_user("labeler"))

    # One query authenticates and authorizes; the other reads the page.
    with django_assert_num_queries(2):
        assert client.get(URL).status_code == 200
    assert client.post(URL, {"name": "Pets"}, format="json").status_code == 403


def test_a_users_own_permission_counts():
    user = make_user("labeler")
    user.groups.clear()
    client = token_client(user)
    assert client.get(URL).status_code == 403

    user.user_permissions.add(Permission.objects.get(codename="view_category"))

    assert client.get(URL).status_code == 200


def test_losing_a_role_takes_effect_on_the_next_request():
    user = make_user("analyst")
    client = token_client(user)
    assert client.post(URL, {"name": "Pets"}, format="json").status_code == 201

    user.groups.remove(Group.objects.get(name="analyst"))

    assert client.post(URL, {"name": "Toys"}, format="json").status_code == 403


def test_a_superuser_may_do_anything():
    client = token_client(make_user("superuser"))
    assert client.post(URL, {"name": "Pets"}, format="json").status_code == 201


@pytest.mark.parametrize(
    ("header", "detail"),
    [
        ("Token not-a-real-token", "Invalid token."),
        ("Token", "Invalid token header. No credentials provided."),
    ],
)
def test_bad_tokens_are_refused(header, detail):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)

    response = client.get(URL)

    assert response.status_code == 401
    assert response.json()["detail"] == detail


def test_an_inactive_users_token_is_refused():
    user = make_user("analyst")
    client = token_client(user)
    user.is_active = False
    user.save()

    response = client.get(URL)

    assert response.status_code == 401
    assert response.json()["detail"] == "User inactive or deleted."


def test_the_request_knows_the_user_and_token():
    user = make_user("labeler")
    client = token_client(user)

    response = client.get("/api/")

    assert response.status_code == 200
    assert response.wsgi_request.user == user
    assert response.wsgi_request.auth.key == user.auth_token.key
