"""The admin's import and export pages, driven through the test client."""

import csv
import io
import os
import time
from datetime import date
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from labeling import import_views
from labeling.labels import set_label
from labeling.models import Transaction

pytestmark = pytest.mark.django_db

FILES = Path(__file__).parent / "files"
IMPORT_URL = reverse("admin:labeling_transaction_import")
EXPORT_URL = reverse("admin:labeling_transaction_export")
CHANGELIST_URL = reverse("admin:labeling_transaction_changelist")


@pytest.fixture(autouse=True)
def upload_dir(settings, tmp_path):
    settings.IMPORT_TEMP_DIR = str(tmp_path / "uploads")
    return tmp_path / "uploads"


def upload(client, path, **fields):
    with open(path, "rb") as handle:
        data = {
            "file": SimpleUploadedFile(path.name, handle.read()),
            "labels_as": "import",
            **fields,
        }
    return client.post(IMPORT_URL, data)


def token_of(response):
    return response.context["confirm_form"]["token"].value()


def staff_user(*permissions):
    user = get_user_model().objects.create_user(
        "clerk", password="not-a-real-password", is_staff=True
    )
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="labeling", codename__in=permissions
        )
    )
    return user


def test_changelist_shows_import_and_export_buttons(admin_client):
    response = admin_client.get(CHANGELIST_URL + "?account=Checking")

    page = response.content.decode()
    assert f'href="{IMPORT_URL}"' in page
    assert f'href="{EXPORT_URL}?account=Checking"' in page


def test_upload_preview_then_confirm_valid_rows_only(admin_client, upload_dir):
    preview = upload(admin_client, FILES / "bad_rows.csv")

    assert preview.status_code == 200
    page = preview.content.decode()
    # Every error with its line number, and nothing written yet.
    for line, text in [
        (3, "&#x27;2025-13-45&#x27; is not a date"),
        (4, "&#x27;twelve&#x27; is not an amount"),
        (5, "missing description"),
    ]:
        assert f"<td>{line}</td>" in page and text in page
    assert "Import only the 3 valid rows" in page
    assert Transaction.objects.count() == 0
    token = token_of(preview)
    assert (upload_dir / f"{token}.upload").exists()

    refused = admin_client.post(IMPORT_URL, {"token": token})
    assert refused.status_code == 200
    assert "Nothing was imported" in refused.content.decode()
    assert Transaction.objects.count() == 0

    done = admin_client.post(IMPORT_URL, {"token": token, "valid_only": "on"})

    assert done.status_code == 302 and done.url == CHANGELIST_URL
    assert sorted(Transaction.objects.values_list("description", flat=True)) == [
        "GOOD COFFEE",
        "GOOD LUNCH",
        "MULTI\nLINE DESCRIPTION",
    ]
    messages = [str(m) for m in done.wsgi_request._messages]
    assert messages[0].startswith("Imported 3 new transactions")
    assert not (upload_dir / f"{token}.upload").exists()
    # The token is spent.
    again = admin_client.post(IMPORT_URL, {"token": token, "valid_only": "on"})
    assert again.url == IMPORT_URL
    assert Transaction.objects.count() == 3


def test_clean_file_with_options_and_human_labels(admin_client, admin_user):
    preview = upload(
        admin_client,
        FILES / "card_signed.csv",
        account="Chase Sapphire",
        labels_as="human",
        create_categories="on",
    )
    page = preview.content.decode()
    assert "Food &amp; Drink" in page  # a category to create
    assert "SQ *BLUE BOTTLE COFFEE OAKLAND CA" in page  # the first rows

    admin_client.post(IMPORT_URL, {"token": token_of(preview)})

    txn = Transaction.objects.get(description="NETFLIX.COM")
    assert txn.account == "Chase Sapphire"
    assert (txn.label.label_id, txn.label.source, txn.label.labeled_by) == (
        "Streaming",
        "human",
        admin_user,
    )


def test_mapping_textarea(admin_client, tmp_path):
    path = tmp_path / "custom.csv"
    path.write_text("When,What,How much\n2025-12-01,BLUE BOTTLE,-4.50\n")

    preview = upload(
        admin_client,
        path,
        account="Cash",
        mapping="date=When\ndescription=What\namount=How much",
    )
    admin_client.post(IMPORT_URL, {"token": token_of(preview)})

    assert Transaction.objects.get().description == "BLUE BOTTLE"


def test_bad_mapping_is_a_form_error(admin_client):
    response = upload(admin_client, FILES / "bad_rows.csv", mapping="colour=Red")

    assert response.status_code == 200
    assert "&#x27;colour&#x27; is not a field" in response.content.decode()


def test_unusable_file_is_a_form_error_and_leaves_no_upload(
    admin_client, tmp_path, upload_dir
):
    path = tmp_path / "noheader.csv"
    path.write_text("2025-12-01,COFFEE,-3.50\n")

    response = upload(admin_client, path)

    assert "No header row found" in response.content.decode()
    assert list(upload_dir.glob("*.upload")) == []


def test_file_over_the_limit_is_a_form_error(admin_client, settings):
    settings.IMPORT_MAX_BYTES = 100

    response = upload(admin_client, FILES / "bad_rows.csv")

    assert "the limit is 0.0 MB" in response.content.decode()


def test_cancel_deletes_the_upload(admin_client, upload_dir):
    preview = upload(admin_client, FILES / "transactions.json")
    token = token_of(preview)

    response = admin_client.post(IMPORT_URL, {"token": token, "cancel": "Cancel"})

    assert response.url == IMPORT_URL
    assert not (upload_dir / f"{token}.upload").exists()
    assert Transaction.objects.count() == 0


def test_a_token_from_another_session_is_not_honoured(admin_client, client, admin_user):
    preview = upload(admin_client, FILES / "transactions.json")
    client.force_login(admin_user)  # same user, another session

    response = client.post(IMPORT_URL, {"token": token_of(preview)})

    assert response.url == IMPORT_URL
    assert Transaction.objects.count() == 0


@pytest.mark.parametrize("token", ["../../etc/passwd", "0" * 32])
def test_forged_tokens_are_refused(admin_client, token):
    response = admin_client.post(IMPORT_URL, {"token": token, "valid_only": "on"})

    assert response.url == IMPORT_URL


def test_abandoned_uploads_are_swept(upload_dir):
    upload_dir.mkdir()
    old = upload_dir / ("a" * 32 + ".upload")
    fresh = upload_dir / ("b" * 32 + ".upload")
    old.write_bytes(b"x")
    fresh.write_bytes(b"x")
    long_ago = time.time() - import_views.UPLOAD_MAX_AGE - 60
    os.utime(old, (long_ago, long_ago))

    assert import_views.sweep_old_uploads() == 1
    assert not old.exists() and fresh.exists()


def test_import_needs_the_add_permission(client):
    client.force_login(staff_user("view_transaction"))

    assert client.get(IMPORT_URL).status_code == 403
    with open(FILES / "transactions.json", "rb") as handle:
        response = client.post(IMPORT_URL, {"file": handle, "labels_as": "import"})
    assert response.status_code == 403
    assert Transaction.objects.count() == 0
    changelist = client.get(CHANGELIST_URL).content.decode()
    assert f'href="{IMPORT_URL}"' not in changelist


def test_import_with_the_add_permission(client):
    client.force_login(staff_user("view_transaction", "add_transaction"))

    assert client.get(IMPORT_URL).status_code == 200


def test_pages_need_a_staff_login(client):
    assert client.get(IMPORT_URL).status_code == 302
    assert client.get(EXPORT_URL).status_code == 302


def export(client, query=""):
    response = client.get(EXPORT_URL + query)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith("attachment; filename=")
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


def test_export_streams_the_changelist_rows(admin_client, admin_user, make_txn):
    labeled = make_txn(description="SQ *BLUE BOTTLE", posted_on=date(2025, 3, 1))
    set_label(labeled.pk, "Coffee Shops", "human", actor=admin_user)
    make_txn(description="PAYROLL", account="Savings", posted_on=date(2025, 3, 2))

    exported = export(admin_client)

    # The changelist's ordering: newest first.
    assert [row["description"] for row in exported] == ["PAYROLL", "SQ *BLUE BOTTLE"]
    assert exported[1] == {
        "date": "2025-03-01",
        "description": "SQ *BLUE BOTTLE",
        "amount": "-4.50",
        "currency": "USD",
        "account": "Checking 1234",
        "external_id": labeled.external_id,
        "label": "Coffee Shops",
        "label_source": "human",
        "labeled_by": admin_user.username,
    }


def test_export_respects_filters_and_search(admin_client, make_txn):
    make_txn(description="NETFLIX.COM", account="Visa")
    make_txn(description="SPOTIFY", account="Visa")
    make_txn(description="NETFLIX.COM", account="Checking")
    make_txn(description="NETFLIX.COM", account="Visa", posted_on=date(2024, 1, 1))

    by_account = export(admin_client, "?account=Visa")
    searched = export(admin_client, "?account=Visa&q=netflix&posted_on__year=2025")

    assert len(by_account) == 3 and {row["account"] for row in by_account} == {"Visa"}
    assert [(row["description"], row["date"]) for row in searched] == [
        ("NETFLIX.COM", "2025-03-14")
    ]


def test_export_with_bad_filters_redirects(admin_client):
    response = admin_client.get(EXPORT_URL + "?posted_on__nonsense=1")

    assert response.status_code == 302


def test_export_needs_view_permission(client):
    client.force_login(staff_user())

    assert client.get(EXPORT_URL).status_code == 403
