from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib import admin

from orders.models import Order, Push

# Generic only in django-stubs; django-stubs-ext is not a runtime dependency.
if TYPE_CHECKING:
    OrderAdminBase = admin.ModelAdmin[Order]
    PushAdminBase = admin.ModelAdmin[Push]
else:
    OrderAdminBase = PushAdminBase = admin.ModelAdmin


@admin.register(Order)
class OrderAdmin(OrderAdminBase):
    list_display = ["reference", "amount", "currency", "status", "paid_at"]
    list_filter = ["status"]
    search_fields = ["reference", "stripe_payment_intent"]
    readonly_fields = ["paid_at", "stripe_payment_intent", "created_at"]


@admin.register(Push)
class PushAdmin(PushAdminBase):
    list_display = ["repository", "ref", "head_commit", "received_at"]
    search_fields = ["repository", "head_commit", "delivery_id"]
    readonly_fields = ["repository", "ref", "head_commit", "delivery_id", "received_at"]
