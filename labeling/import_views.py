"""Admin pages to import transactions from a file and export them as CSV.

``TransactionAdmin.get_urls`` adds them under the transaction changelist:
``import/`` and ``export/``.

Import takes two requests. The upload is checked with a dry run and shown as
a preview (counts, the first rows, every error with its row number); a
confirm button then imports it, all rows or, when some are bad and the user
says so, only the valid ones. Between the two requests the file stays on the
server: it is written to ``IMPORT_TEMP_DIR`` (by default ``finance-imports``
in the system's temporary directory) under a random token, and the token,
the original file name and the chosen options are kept in the user's
session. The confirm form sends back only the token, and only a token found
in the same user's session is honoured, so a client can neither point the
import at another file nor change the options it previewed. The file is
deleted once imported or cancelled; uploads left behind are swept after
``UPLOAD_MAX_AGE``. Every web process serving the admin must see the same
directory (one host, or a shared volume).

Export streams the changelist's current selection, with its filters, search
and ordering, as CSV.
"""

import logging
import secrets
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.core.validators import RegexValidator
from django.http import StreamingHttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from labeling.exporting import csv_lines
from labeling.importing import (
    FIELDS,
    ImportFileError,
    ImportOptions,
    describe_columns,
    import_transactions,
    max_bytes,
    parse_mapping,
)
from labeling.models import LabelSource

logger = logging.getLogger(__name__)

SESSION_KEY = "labeling_pending_imports"
# How long an uploaded file waits for its confirmation: a coffee break, not
# a day.
UPLOAD_MAX_AGE = 6 * 3600
# Upload keys are secrets.token_hex(16).
_UPLOAD_KEY_PATTERN = r"^[0-9a-f]{32}$"
# Options kept in the session between preview and confirmation.
_OPTION_FIELDS = (
    "account",
    "labels_as",
    "date_format",
    "create_categories",
    "require_known_accounts",
    "negate_amounts",
    "mapping",
)


def upload_dir():
    """Where uploads wait for confirmation (created private on first use)."""
    configured = getattr(settings, "IMPORT_TEMP_DIR", "")
    if configured:
        directory = Path(configured)
    else:
        directory = Path(tempfile.gettempdir()) / "finance-imports"
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    return directory


def _upload_path(token):
    return upload_dir() / f"{token}.upload"


def sweep_old_uploads(now=None):
    """Delete uploads older than ``UPLOAD_MAX_AGE``; return how many."""
    cutoff = (now or time.time()) - UPLOAD_MAX_AGE
    removed = 0
    for stale in upload_dir().glob("*.upload"):
        try:
            if stale.stat().st_mtime < cutoff:
                stale.unlink()
                removed += 1
        except FileNotFoundError:
            continue  # another process swept it first
    if removed:
        logger.info("Removed %d abandoned import uploads", removed)
    return removed


class ImportForm(forms.Form):
    file = forms.FileField(
        help_text="CSV (comma, semicolon, tab or pipe), XLSX or JSON bank export."
    )
    account = forms.CharField(
        required=False,
        max_length=64,
        help_text="Account of every row; overrides an account column. Required "
        "when the file has none.",
    )
    labels_as = forms.ChoiceField(
        label="Labels from a category column are",
        choices=[
            (LabelSource.IMPORT.value, "import labels (never replace human or rule)"),
            (LabelSource.HUMAN.value, "human labels"),
        ],
        initial=LabelSource.IMPORT.value,
    )
    date_format = forms.CharField(
        required=False,
        max_length=32,
        help_text="Blank to detect. MDY, DMY, YMD, or a strptime format such as "
        "%d.%m.%Y.",
    )
    create_categories = forms.BooleanField(
        required=False,
        help_text="Add the categories the file names that do not exist yet; "
        "otherwise their rows are imported without a label.",
    )
    require_known_accounts = forms.BooleanField(
        required=False,
        label="Known accounts only",
        help_text="Refuse rows whose account has no transactions yet.",
    )
    negate_amounts = forms.BooleanField(
        required=False,
        help_text="The file shows money out as positive (many card exports).",
    )
    mapping = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "cols": 40}),
        help_text="Only when the columns are not recognised: one field=Column "
        f"per line. Fields: {', '.join(FIELDS)}, date_format.",
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        limit = max_bytes()
        if upload.size > limit:
            raise forms.ValidationError(
                f"The file is {upload.size / 2**20:.1f} MB; the limit is "
                f"{limit / 2**20:.1f} MB."
            )
        return upload

    def clean_mapping(self):
        try:
            return parse_mapping(self.cleaned_data["mapping"])
        except ValueError as error:
            raise forms.ValidationError(str(error)) from None

    def clean(self):
        cleaned = super().clean()
        if not self.errors:
            try:
                self.import_options()
            except ValueError as error:
                raise forms.ValidationError(str(error)) from None
        return cleaned

    def option_values(self):
        return {name: self.cleaned_data[name] for name in _OPTION_FIELDS}

    def import_options(self, **extra):
        return ImportOptions(**self.option_values(), **extra)


class ConfirmForm(forms.Form):
    token = forms.CharField(
        widget=forms.HiddenInput, validators=[RegexValidator(_UPLOAD_KEY_PATTERN)]
    )
    valid_only = forms.BooleanField(required=False, label="Import only the valid rows")


class TransactionImportExport:
    """The import and export views of one ``ModelAdmin`` of transactions."""

    def __init__(self, model_admin):
        self.model_admin = model_admin
        self.opts = model_admin.model._meta

    def urls(self):
        wrap = self.model_admin.admin_site.admin_view
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path("import/", wrap(self.import_view), name=f"{prefix}_import"),
            path("export/", wrap(self.export_view), name=f"{prefix}_export"),
        ]

    # -- import ------------------------------------------------------------

    def import_view(self, request):
        if not self.model_admin.has_add_permission(request):
            raise PermissionDenied
        if request.method == "POST" and "token" in request.POST:
            return self._confirm(request)
        if request.method == "POST":
            form = ImportForm(request.POST, request.FILES)
            if form.is_valid():
                return self._preview(request, form)
        else:
            form = ImportForm()
        return self._render(request, "import_form.html", {"form": form})

    def _preview(self, request, form):
        sweep_old_uploads()
        upload = form.cleaned_data["file"]
        token = secrets.token_hex(16)
        stored = _upload_path(token)
        with open(stored, "wb") as out:
            for chunk in upload.chunks():
                out.write(chunk)
        try:
            result = import_transactions(
                stored,
                form.import_options(dry_run=True, actor=request.user),
                name=upload.name,
            )
        except ImportFileError as error:
            stored.unlink(missing_ok=True)
            form.add_error("file", str(error))
            return self._render(request, "import_form.html", {"form": form})

        pending = self._pending(request)
        pending[token] = {
            "name": upload.name,
            "options": form.option_values(),
            "created": time.time(),
        }
        request.session[SESSION_KEY] = pending
        return self._render_preview(request, token, result)

    def _confirm(self, request):
        form = ConfirmForm(request.POST)
        pending = self._pending(request)
        token = form.data.get("token", "")
        entry = pending.get(token) if form.is_valid() else None
        stored = _upload_path(token) if entry else None
        if entry is None or not stored.exists():
            messages.error(
                request,
                "That upload has expired or was already imported; upload the file "
                "again.",
            )
            return redirect(self._url("import"))
        if "cancel" in request.POST:
            self._forget(request, token)
            messages.info(request, f"Import of {entry['name']} cancelled.")
            return redirect(self._url("import"))

        options = replace(
            ImportOptions(**entry["options"]),
            valid_only=form.cleaned_data["valid_only"],
            actor=request.user,
        )
        try:
            result = import_transactions(stored, options, name=entry["name"])
        except ImportFileError as error:
            self._forget(request, token)
            messages.error(request, str(error))
            return redirect(self._url("import"))
        if result.blocked:
            messages.error(
                request,
                f"Nothing was imported: {result.invalid} rows have errors. Fix the "
                "file and upload it again, or tick “Import only the valid rows”.",
            )
            return self._render_preview(request, token, result)

        self._forget(request, token)
        messages.success(request, result.summary())
        if result.unknown_category_rows:
            messages.warning(
                request,
                f"{result.unknown_category_rows} rows named unknown categories "
                "and got no label: " + ", ".join(map(repr, result.unknown_categories)),
            )
        logger.info(
            "%s imported %s: %d new transactions",
            request.user,
            entry["name"],
            result.inserted,
        )
        return redirect(self._url("changelist"))

    def _render_preview(self, request, token, result):
        context = {
            "result": result,
            "columns": describe_columns(result.columns),
            "confirm_form": ConfirmForm(initial={"token": token}),
            "issues_left_out": result.issues_left_out,
        }
        return self._render(request, "import_preview.html", context)

    def _pending(self, request):
        """This session's uploads awaiting confirmation, minus expired ones."""
        cutoff = time.time() - UPLOAD_MAX_AGE
        return {
            token: entry
            for token, entry in request.session.get(SESSION_KEY, {}).items()
            if entry["created"] >= cutoff
        }

    def _forget(self, request, token):
        pending = self._pending(request)
        pending.pop(token, None)
        request.session[SESSION_KEY] = pending
        _upload_path(token).unlink(missing_ok=True)

    # -- export ------------------------------------------------------------

    def export_view(self, request):
        if not self.model_admin.has_view_or_change_permission(request):
            raise PermissionDenied
        try:
            changelist = self.model_admin.get_changelist_instance(request)
        except IncorrectLookupParameters:
            messages.error(request, "Those filters are not valid; nothing exported.")
            return redirect(self._url("changelist"))
        queryset = changelist.get_queryset(request)
        response = StreamingHttpResponse(
            csv_lines(queryset), content_type="text/csv; charset=utf-8"
        )
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        response["Content-Disposition"] = (
            f'attachment; filename="transactions-{stamp}.csv"'
        )
        return response

    # -- helpers -----------------------------------------------------------

    def _url(self, name):
        return reverse(
            f"{self.model_admin.admin_site.name}:"
            f"{self.opts.app_label}_{self.opts.model_name}_{name}"
        )

    def _render(self, request, template, context):
        context = {
            **self.model_admin.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Import transactions",
            "max_megabytes": f"{max_bytes() / 2**20:.0f}",
            **context,
        }
        return TemplateResponse(
            request,
            f"admin/{self.opts.app_label}/{self.opts.model_name}/{template}",
            context,
        )
