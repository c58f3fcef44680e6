"""Headers on every portal and login response (docs/architecture.md 7: strict Content-Security-Policy).

No script runs anywhere in the portal and every style comes from the one static stylesheet, so the
policy allows nothing inline: ``default-src 'none'``, styles and images from the gateway only
(``data:`` images for none of ours, but harmless), forms posted only to the gateway, never framed
(clickjacking), no ``<base>`` rewriting. Pages hold personal data: never cached.
"""

from __future__ import annotations

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


def security_headers(*, cache: bool = False) -> dict[str, str]:
    headers = {
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    }
    headers["Cache-Control"] = "public, max-age=3600" if cache else "no-store"
    return headers
