"""The FHIR R4 ``id`` datatype (datatypes.html#id): 1 to 64 of ``A-Z a-z 0-9 - .``.

A logical id of any other shape names nothing the gateway can have written. Pure, so that storage
(paging cursors) and the FHIR layer (path ids) check the same pattern without importing each other.
"""

from __future__ import annotations

import re
from typing import Final

FHIR_ID: Final = re.compile(r"[A-Za-z0-9\-.]{1,64}")
