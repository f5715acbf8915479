"""Seed the default two-level category taxonomy.

Top-level categories follow the primary categories of the large
personal-finance aggregators; children refine a few of them. Existing rows
with the same names are left alone, so the migration is safe on a database
that already has categories.
"""

from django.db import migrations

TAXONOMY = {
    "Income": ["Paycheck", "Interest & Dividends", "Refunds"],
    "Transfers": [],
    "Loan & Card Payments": [],
    "Rent & Mortgage": [],
    "Utilities": ["Phone", "Internet & Cable", "Electricity & Gas", "Water"],
    "Groceries": [],
    "Food & Dining": ["Restaurants", "Coffee Shops", "Fast Food", "Bars"],
    "Shopping": ["Clothing", "Books", "Online Marketplaces"],
    "Household": [],
    "Electronics": [],
    "Transportation": [
        "Gas & Fuel",
        "Rideshare & Taxi",
        "Public Transit",
        "Parking & Tolls",
    ],
    "Travel": ["Airlines", "Hotels", "Car Rental"],
    "Entertainment": ["Streaming", "Music", "Games", "Events"],
    "Health & Medical": ["Pharmacy", "Doctor", "Dentist"],
    "Personal Care": ["Fitness", "Hair & Beauty"],
    "Services": ["Software", "Shipping & Postage"],
    "Insurance": [],
    "Fees & Charges": [],
    "Gifts & Donations": [],
}


def seed(apps, schema_editor):
    Category = apps.get_model("labeling", "Category")
    for parent_name, children in TAXONOMY.items():
        parent, _ = Category.objects.get_or_create(name=parent_name)
        for child in children:
            Category.objects.get_or_create(name=child, defaults={"parent": parent})


def unseed(apps, schema_editor):
    Category = apps.get_model("labeling", "Category")
    child_names = [child for children in TAXONOMY.values() for child in children]
    Category.objects.filter(name__in=child_names, labels__isnull=True).delete()
    Category.objects.filter(
        name__in=list(TAXONOMY), labels__isnull=True, children__isnull=True
    ).delete()


class Migration(migrations.Migration):
    dependencies = [("labeling", "0002_label_rules")]

    operations = [migrations.RunPython(seed, unseed)]
