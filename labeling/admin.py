"""Admin for transactions, categories, labels and label history."""

from django.contrib import admin

from labeling.import_views import TransactionImportExport
from labeling.models import Category, LabelHistory, Transaction, TransactionLabel


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ["name", "parent", "is_active"]
    list_filter = ["is_active", ("parent", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["name"]


class TransactionLabelInline(admin.StackedInline):
    model = TransactionLabel
    fields = ["label", "source", "labeled_by", "rule_id", "updated_at"]
    readonly_fields = fields
    can_delete = False
    extra = 0


@admin.register(Transaction)
class TransactionAdmin(admin.ModelAdmin):
    list_display = ["posted_on", "description", "amount", "account", "label_name"]
    list_filter = ["label__source", "account"]
    search_fields = ["description"]
    date_hierarchy = "posted_on"
    list_select_related = ["label"]
    readonly_fields = ["created_at", "updated_at", "deleted_at"]
    inlines = [TransactionLabelInline]
    # Counting a million rows on every page costs more than the page itself.
    show_full_result_count = False
    # Adds the Import and Export CSV buttons (labeling/import_views.py).
    change_list_template = "admin/labeling/transaction/change_list.html"

    def get_urls(self):
        return TransactionImportExport(self).urls() + super().get_urls()

    @admin.display(description="label", ordering="label__label")
    def label_name(self, obj):
        label = getattr(obj, "label", None)
        return f"{label.label_id} ({label.source})" if label else "—"


@admin.register(LabelHistory)
class LabelHistoryAdmin(admin.ModelAdmin):
    list_display = [
        "changed_at",
        "txn_id",
        "operation",
        "old_label",
        "new_label",
        "old_source",
        "new_source",
        "actor",
        "rule_id",
    ]
    list_filter = ["operation", "new_source"]
    search_fields = ["=txn_id"]
    list_select_related = ["actor"]
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
