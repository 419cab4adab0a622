#!/bin/sh
# One GitHub delivery signed by hand, as GitHub signs it (HMAC-SHA256 of the raw
# body), sent twice with the same delivery id: the second answer is "duplicate".
# Then once more with one byte of the body changed: 401 signature_mismatch.
# Needs only sh, od, openssl and curl, so it runs the same on Linux and macOS.
#
#   docs/github-delivery.sh SECRET [URL]
#   URL defaults to http://127.0.0.1:8000/webhooks/github-main/
set -eu

if [ $# -lt 1 ]; then
  echo "usage: $0 SECRET [URL]" >&2
  exit 2
fi
SECRET=$1
URL=${2:-http://127.0.0.1:8000/webhooks/github-main/}
BODY='{"zen": "Design for failure.", "hook_id": 1}'
# GitHub sends a UUID; 16 random bytes written as one, made once for all three sends.
DELIVERY=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n' |
  sed 's/^\(.\{8\}\)\(.\{4\}\)\(.\{4\}\)\(.\{4\}\)/\1-\2-\3-\4-/')

sign() {
  printf '%s' "$1" | openssl dgst -sha256 -hmac "$SECRET" | sed 's/^.* //'
}

send() {
  curl -sS -w '  (HTTP %{http_code})\n' "$URL" \
    -H 'Content-Type: application/json' -H 'X-GitHub-Event: ping' \
    -H "X-GitHub-Delivery: $DELIVERY" \
    -H "X-Hub-Signature-256: sha256=$2" --data-binary "$1"
}

SIGNATURE=$(sign "$BODY")
echo "Delivery $DELIVERY"
printf 'first:        '
send "$BODY" "$SIGNATURE"
printf 'same again:   '
send "$BODY" "$SIGNATURE"
printf 'byte changed: '
send "$(printf '%s' "$BODY" | sed 's/failure/failurE/')" "$SIGNATURE"
