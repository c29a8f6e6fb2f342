"""schemathesis hooks of the conformance gate (scripts/conformance.sh): the credentials of the
demo configuration (config/default.toml), one provider per security scheme's tag in /openapi.json.

- admin: the bearer token; orbipay: the demo client's client-key and api-key.
- empayre: the webhook's `Content-Signature` is an RS256 signature of the exact body bytes, made
  with the demo source's private key (fixtures/keys/empayre_test_private.pem, a throwaway test
  pair; the gate passes its path in CONFORMANCE_SIGN_KEY). The auth provider only marks a case as
  one to sign; `before_call` signs it just before it is sent, when its body is final (the
  stateful phase and the checks may change a case after its credentials were set).

Because these are the routes' declared security schemes, schemathesis's ignored_auth check also
sends each protected request without its credential and with a wrong one, and expects 401: for
the webhook, an unsigned and a wrongly signed body.
"""

import base64
import json
import os

import schemathesis
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

SIGNATURE_HEADER = "Content-Signature"
# Put in the header by the auth provider, replaced by the real signature in before_call. A probe
# that sets its own (wrong) value, or removes the header, is sent as it is.
TO_SIGN = "to-be-signed-by-the-conformance-hook"


@schemathesis.auth().apply_to(tag="admin")
class AdminToken:
    def get(self, case, ctx):
        return "demo-admin-token"

    def set(self, case, token, ctx):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {token}"


@schemathesis.auth().apply_to(tag="orbipay")
class OrbipayClient:
    def get(self, case, ctx):
        return ("demo-client", "demo-api-key")

    def set(self, case, keys, ctx):
        case.headers = case.headers or {}
        case.headers["client-key"], case.headers["api-key"] = keys


@schemathesis.auth().apply_to(tag="empayre")
class EmpayreSignature:
    def get(self, case, ctx):
        return TO_SIGN

    def set(self, case, mark, ctx):
        case.headers = case.headers or {}
        case.headers[SIGNATURE_HEADER] = mark


_private_key = None


def _key():
    global _private_key
    if _private_key is None:
        with open(os.environ["CONFORMANCE_SIGN_KEY"], "rb") as f:
            _private_key = serialization.load_pem_private_key(f.read(), password=None)
    return _private_key


def _wire_bytes(case):
    """The body bytes schemathesis will send for `case`: what its transport serializes (`data`
    as it is, or a `json` value that `requests` dumps with the standard library's defaults and
    `allow_nan=False`), or nothing."""
    kwargs = case.as_transport_kwargs()
    if kwargs.get("data") is not None:
        data = kwargs["data"]
        return data if isinstance(data, bytes) else str(data).encode("utf-8")
    if "json" in kwargs and kwargs["json"] is not None:
        return json.dumps(kwargs["json"], allow_nan=False).encode("utf-8")
    return b""


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    headers = case.headers or {}
    if headers.get(SIGNATURE_HEADER) != TO_SIGN:
        return
    signature = _key().sign(_wire_bytes(case), padding.PKCS1v15(), hashes.SHA256())
    digest = base64.urlsafe_b64encode(signature).decode("ascii")
    headers[SIGNATURE_HEADER] = f"alg=RS256; digest={digest}"


@schemathesis.serializer("application/x-ndjson")
def json_lines(ctx, value):
    """`PUT /admin/accounts` takes the accounts file as JSON lines too. The document describes such
    a body as the array of its lines' values (OpenAPI 3.1 has no schema for a sequence of JSON
    texts), so an array goes on the wire one element per line; any other value (negative data)
    is sent as one line of its own."""
    if isinstance(value, list):
        return "".join(json.dumps(item, allow_nan=False) + "\n" for item in value).encode("utf-8")
    return (json.dumps(value, allow_nan=False) + "\n").encode("utf-8")
