from __future__ import annotations

from django.db import models


class Order(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        PAID = "paid"

    reference = models.CharField(
        max_length=50, unique=True, help_text="Sent to Stripe as metadata.order."
    )
    amount = models.PositiveIntegerField(
        help_text="In the currency's smallest unit (cents), as Stripe counts."
    )
    currency = models.CharField(max_length=3, help_text="ISO code, lower case: eur.")
    status = models.CharField(max_length=20, choices=Status, default=Status.PENDING)
    paid_at = models.DateTimeField(null=True, blank=True)
    stripe_payment_intent = models.CharField(
        max_length=255, unique=True, null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"order {self.reference} ({self.status})"


class Push(models.Model):
    repository = models.CharField(max_length=255, help_text="owner/name.")
    ref = models.CharField(max_length=255)
    head_commit = models.CharField(
        max_length=40, blank=True, help_text="Empty when the push deleted the ref."
    )
    delivery_id = models.CharField(
        max_length=255, unique=True, help_text="GitHub's X-GitHub-Delivery."
    )
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "pushes"

    def __str__(self) -> str:
        return f"{self.repository} {self.ref} {self.head_commit[:7]}"
