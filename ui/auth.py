"""The web UI's passwords (HTTP Basic), checked at the server's edge (ui/edge.py), and the signed-in
user a page's request comes from."""
from __future__ import annotations

import base64
import hmac


def basic_user(authorization: str, credentials: list[tuple[str, str]]) -> str | None:
    """The user an `Authorization: Basic ...` header names, when it gives that user's password; else None."""
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, password = base64.b64decode(value.strip()).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    ok = False
    for known_user, known_password in credentials:  # every pair compared, in constant time
        ok |= hmac.compare_digest(user.encode(), known_user.encode()) & \
            hmac.compare_digest(password.encode(), known_password.encode())
    return user if ok else None


def user_of(request) -> str:
    """The signed-in user of a Gradio request (HTTP Basic, checked by the server before the page is
    served), else ""."""
    header = ""
    if request is not None:
        header = (request.headers or {}).get("authorization", "") if hasattr(request, "headers") else ""
    if not header.lower().startswith("basic "):
        return ""
    try:
        return base64.b64decode(header[6:].strip()).decode("utf-8").partition(":")[0]
    except (ValueError, UnicodeDecodeError):
        return ""
