"""The view of the blog posts: verify Stripe-Signature by hand, store, answer 200."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from bench.peers.naive_django.receiver.models import StripeEvent

TOLERANCE = 300


def signature_ok(header: str, body: bytes) -> bool:
    items = [item.split("=", 1) for item in header.split(",") if "=" in item]
    timestamps = [value for key, value in items if key == "t"]
    signatures = [value for key, value in items if key == "v1"]
    if len(timestamps) != 1 or not timestamps[0].isdigit():
        return False
    if time.time() - int(timestamps[0]) > TOLERANCE:
        return False
    signed = timestamps[0].encode() + b"." + body
    key = settings.STRIPE_WEBHOOK_SECRET.encode()
    expected = hmac.new(key, signed, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, given) for given in signatures)


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest, slug: str) -> HttpResponse:
    try:
        event = json.loads(request.body)
    except ValueError:
        return HttpResponse(status=400)
    if not signature_ok(request.headers.get("Stripe-Signature", ""), request.body):
        return HttpResponse(status=400)
    StripeEvent.objects.create(event_id=event["id"], type=event["type"], payload=event)
    return JsonResponse({"received": True})
