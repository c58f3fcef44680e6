"""OAuth 2.0 for client software (docs/architecture.md sections 1 and 4; docs/auth.md).

``server`` (authlib's authorization server, ``client_credentials``), ``assertion``
(``private_key_jwt``, RFC 7523), ``pki`` (the trusted CA; ``devpki`` makes a development one),
``registry`` (clients), ``tokens`` (access tokens and their keys), ``scopes`` (SMART v2 scopes,
role ceilings, ``require_scopes``), ``identity`` (``authenticate``: the resource server),
``ratelimit``, ``routes`` and ``cli``.
"""
