"""Feedback (domain RX-8): a pharmacy's FHIR ``Communication`` to the author of a prescription.

Routes, service, scopes, searches and the CapabilityStatement description, on the family template
(``gateway.access.service``, ``gateway.access.routes``). Who may send, read and search is
``consent.decide`` (``consent.policy._on_feedback``); the author's switch is the prescription's
``$set-feedback`` (``gateway.prescriptions.feedback_flag``).
"""
