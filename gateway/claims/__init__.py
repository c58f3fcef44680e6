"""eAttest claims (domain AT-1..AT-8): intake, the outbox, the forwarder, settlements.

``service`` takes and reads claims; ``forwarder`` delivers them to the sickness funds
(``funds``: the HTTP wire) and ``answers`` stores what the funds say; ``poller`` collects
settlements; ``worker`` runs both, in ``gateway worker`` or inside the API process. docs/claims.md.
"""
