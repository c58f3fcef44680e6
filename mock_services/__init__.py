"""What the mock services (``mutualities``, ``national_register``) share: the fault-injection layer
and its admin switch (``faults``), the uvicorn/CLI/logging boilerplate (``serve``) and their store
engines (``store``). Like the mocks it serves, it imports nothing from ``gateway``."""
