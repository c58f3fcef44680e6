"""A mock of Belgium's National Register for one question: is this eID card the person's current
card? A separate process the gateway asks over HTTP only (``national_register/README.md``)."""
