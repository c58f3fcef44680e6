"""The access-checked door to data: load a patient's facts, ask ``consent.decide``, act through
``gateway.storage``, audit through ``gateway.audit.writer`` (docs/architecture.md 5, 8).

It sits above storage (which knows nothing of callers or decisions) and below the resource
families, which describe their targets and call the door.
"""
