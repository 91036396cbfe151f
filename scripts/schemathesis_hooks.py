"""Schemathesis hooks for scripts/schemathesis.sh.

Rekomi limits each API key to 600 requests a minute. The run makes several thousand, so the
requests that carry the run's primary key are spread round-robin over further read_write keys
of the same organization (SCHEMATHESIS_ROTATE_KEYS, comma-separated); requests with any other
credentials (or none) are left alone.

Failed authentications are limited per client address, and the server under test reads the
address from X-Forwarded-For: every request gets an address of its own (the probes the
`ignored_auth` check derives from a request inherit it), so the run's deliberate 401s never
add up to the limit.
"""

import itertools
import os
import threading

import schemathesis

_PRIMARY = "Bearer " + os.environ.get("SCHEMATHESIS_PRIMARY_KEY", "")
_KEYS = [k for k in os.environ.get("SCHEMATHESIS_ROTATE_KEYS", "").split(",") if k]
_NEXT = itertools.cycle(_KEYS) if _KEYS else None
_LOCK = threading.Lock()
_ADDRESSES = itertools.count(1)


@schemathesis.hook
def before_call(context, case, kwargs):
    if case.headers is None:
        case.headers = {}
    with _LOCK:
        n = next(_ADDRESSES)
        key = next(_NEXT) if _NEXT is not None else None
    case.headers["X-Forwarded-For"] = f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"
    if key is not None and case.headers.get("Authorization") == _PRIMARY:
        case.headers["Authorization"] = "Bearer " + key
