"""schemathesis hooks of the conformance gate (scripts/conformance.sh): the credentials of the
demo configuration (config/default.toml), one provider per tag of /openapi.json.

- admin: the bearer token; orbipay: the demo client's client-key and api-key.
- The Empayre webhook is not signed here: the fuzzer only sees its 401s (the signed path is
  covered by tests/api/empayre.rs). Signing it was tried: the webhook then takes any JSON body
  (a verified body is never refused), so schemathesis has nothing to negate and reports its
  unchanged negative-mode cases as accepted invalid data.

Because these are the routes' declared security schemes, schemathesis's ignored_auth check also
sends each protected request without its credential and with a wrong one, and expects 401.
"""

import schemathesis


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
