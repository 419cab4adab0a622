"""JSON answers of the events API, shaped like the ingest contract's: ``{"error": code, ...}``."""

from __future__ import annotations

from typing import Any

from django.http import JsonResponse

from webhooks.api.tokens import Refusal


def error(status: int, code: str, **fields: Any) -> JsonResponse:
    return JsonResponse({"error": code, **fields}, status=status)


def refused(refusal: Refusal) -> JsonResponse:
    response = error(refusal.status, refusal.error, reason=refusal.reason)
    if refusal.status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="webhooks"'
    return response


def bad_request(detail: str) -> JsonResponse:
    return error(400, "bad_request", detail=detail)


def not_found(detail: str) -> JsonResponse:
    return error(404, "not_found", detail=detail)


def method_not_allowed(*allowed: str) -> JsonResponse:
    response = error(405, "method_not_allowed")
    response["Allow"] = ", ".join(allowed)
    return response
