"""Mock Belgian sickness funds (mutualities): a separate HTTP app the gateway talks to over HTTP only.

Run ``python -m mutualities --code 100 --port 9100``; the wire contract is in ``README.md``.
"""
