"""The default taxonomy seeded by migration."""

import pytest

from labeling.models import Category

pytestmark = pytest.mark.django_db


def test_default_taxonomy_has_15_to_20_top_level_categories():
    top_level = Category.objects.filter(parent__isnull=True, is_active=True)

    assert 15 <= top_level.count() <= 20
    assert {"Income", "Groceries", "Transfers", "Rent & Mortgage"} <= set(
        top_level.values_list("name", flat=True)
    )


def test_children_hang_under_top_level_parents():
    children = Category.objects.filter(parent__isnull=False).select_related("parent")

    assert children.exists()
    assert all(child.parent.parent_id is None for child in children)
