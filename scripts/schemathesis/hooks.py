"""Schemathesis hooks for event-manager.

Authentication: every few seconds a fresh member is signed up and logged in. The fuzzer is
free to delete "its" user or change its password (both are legitimate API calls), so a
single seeded token would turn the rest of the run into 401s; fresh users keep every
operation reachable without hiding anything from the checks.

`GET /api/v1/users/{id}` is sent as the administrator created by run.sh: the contract
answers 404 for another member's account, and the accounts the fuzzer creates with
`POST /api/v1/users` (anonymous sign-up) belong to nobody it is logged in as. Viewing them
as an administrator is what the contract allows; every other operation runs as a member.

`DELETE /api/v1/users/{id}` is not fuzzed (see schemathesis.toml).

`Idempotency-Key`: a valid key the fuzzer generates is replaced by a fresh UUID. What a key
does depends on state the fuzzer cannot see, like If-Match: Hypothesis generates the same
few short keys again and again, so a key would come back with another body (422
`idempotency-key-reused`, which the positive checks rightly count as a refusal of valid
data) or with the same one (a replay of an earlier answer whose resource may be gone since,
which the stateful checks cannot tell from a lie). Replays, reuse and the 409 of a running
twin are tested in tests/api/idempotency.rs. Invalid keys are sent as generated, so the
negative checks still see them refused (400).
"""

import os
import re
import uuid

import requests
import schemathesis

BASE_URL = os.environ["EM_BASE_URL"].rstrip("/")
ADMIN_EMAIL = os.environ["EM_ADMIN_EMAIL"]
ADMIN_PASSWORD = os.environ["EM_ADMIN_PASSWORD"]
PASSWORD = "fuzzing-password-123"


def sign_up():
    email = f"fuzz-{uuid.uuid4().hex}@example.com"
    created = requests.post(
        f"{BASE_URL}/api/v1/users",
        json={"email": email, "password": PASSWORD, "full_name": "Fuzz"},
        timeout=10,
    )
    created.raise_for_status()
    return email


def login(email, password):
    token = requests.post(
        f"{BASE_URL}/api/v1/auth/token",
        json={"email": email, "password": password},
        timeout=10,
    )
    token.raise_for_status()
    return token.json()["access_token"]


@schemathesis.auth(refresh_interval=5)
class FreshMember:
    """Bearer token of a member signed up for the purpose (and the administrator's)."""

    def get(self, case, ctx):
        return {"member": login(sign_up(), PASSWORD), "admin": login(ADMIN_EMAIL, ADMIN_PASSWORD)}

    def set(self, case, data, ctx):
        method, path = case.operation.method.upper(), case.operation.path
        token = data["admin" if method == "GET" and path == "/api/v1/users/{id}" else "member"]
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {token}"


VALID_KEY = re.compile(r"[!-~]{1,255}")


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    """A fresh key for every request that sends a valid one (see the module's docstring)."""
    headers = case.headers or {}
    for name in list(headers):
        if name.lower() == "idempotency-key":
            value = headers[name]
            if isinstance(value, str) and VALID_KEY.fullmatch(value):
                headers[name] = str(uuid.uuid4())
