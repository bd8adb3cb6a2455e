"""One admin per PNCP domain table, all alike.

Staff may fix a name or a description and review the codes an import added on its own
(``novo_em_importacao``), but never delete a code: records point at codes with PROTECT, and a
code PNCP once sent stays meaningful for the records that carry it. The code itself is fixed
once saved; it is the primary key.

Note: ``load_domain_tables`` (the fixture loader) rewrites ``nome``/``descricao`` of the codes
that are in the fixture, so a fix to one of those belongs in the fixture too.
"""

from django.contrib import admin

from domain_tables.models import TABLES


@admin.action(description="Marcar como revisados (não mais novos)", permissions=["change"])
def mark_reviewed(modeladmin, request, queryset):
    count = queryset.filter(novo_em_importacao=True).update(novo_em_importacao=False)
    modeladmin.message_user(request, f"{count} código(s) marcados como revisados.")


class DomainTableAdmin(admin.ModelAdmin):
    list_display = ("codigo", "nome", "novo_em_importacao", "ativo", "atualizado_em")
    list_filter = ("novo_em_importacao", "ativo")
    search_fields = ("=codigo", "nome")
    list_per_page = 200
    fields = ("codigo", "nome", "descricao", "ativo", "novo_em_importacao", "atualizado_em")
    actions = (mark_reviewed,)

    def get_readonly_fields(self, request, obj=None):
        return ("atualizado_em",) if obj is None else ("codigo", "atualizado_em")

    def has_delete_permission(self, request, obj=None):
        return False


for _model in TABLES.values():
    admin.site.register(_model, DomainTableAdmin)
