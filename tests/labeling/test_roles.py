"""The labeler and analyst groups grant what their names promise."""

import pytest
from django.contrib.auth.models import Group, User

pytestmark = pytest.mark.django_db


def member_of(group_name):
    user = User.objects.create_user(f"{group_name}-user", is_staff=True)
    user.groups.add(Group.objects.get(name=group_name))
    return User.objects.get(pk=user.pk)  # fresh permission cache


@pytest.mark.parametrize(
    ("permission", "labeler", "analyst"),
    [
        ("labeling.view_transaction", True, True),
        ("labeling.change_transactionlabel", True, True),
        ("labeling.delete_transactionlabel", True, True),
        ("labeling.view_labelhistory", True, True),
        ("mlcore.view_job", True, True),
        ("labeling.add_transaction", False, True),
        ("labeling.change_category", False, True),
        ("mlcore.run_feature_build", False, True),
        ("mlcore.run_dbt", False, True),
        ("mlcore.run_training", False, True),
        ("labeling.delete_transaction", False, False),
        ("labeling.change_transaction", False, False),
        ("mlcore.change_trainingrun", False, False),
        ("auth.change_user", False, False),
    ],
)
def test_role_permissions(permission, labeler, analyst):
    assert member_of("labeler").has_perm(permission) is labeler
    assert member_of("analyst").has_perm(permission) is analyst
