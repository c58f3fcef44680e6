"""Reading a pyinstrument session of the gateway: the call tree, and time by component.

pyinstrument is not a project dependency: ``.venv/bin/pip install pyinstrument`` first. The
gateway runs under ``python -m pyinstrument -r pyisession -o FILE -m gateway.cli serve ...``
(see ``PROFILER_WRAPPER``); its samples are wall time of the event-loop thread, one stack each.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

# Component of a sample: the leaf-most frame whose file matches one of these (first rule wins for
# that frame), so each component gets its own time and that of the libraries it calls, unless
# those have a component of their own. Samples under an import are start-up.
COMPONENTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "database: SQLAlchemy (ORM session, Core) + driver, gateway/db.py",
        ("sqlalchemy/", "aiosqlite/", "psycopg/", "psycopg_pool/", "greenlet", "gateway/db.py"),
    ),
    ("encryption and keyed hashes (gateway/storage/crypto.py)", ("gateway/storage/crypto.py",)),
    (
        "validation (fhir_profiles, fhir.resources)",
        ("fhir_profiles/", "fhir_core/", "fhir/resources"),
    ),
    ("authentication (gateway/auth, JOSE)", ("gateway/auth/", "joserfc/", "authlib/")),
    ("sync dependencies run in the thread pool (anyio)", ("anyio/",)),
    ("gateway middleware (request id, metrics)", ("gateway/logging.py", "gateway/ops.py")),
    (
        "gateway route, service, store, response code",
        ("gateway/prescriptions/", "gateway/storage/", "gateway/fhir/", "gateway/"),
    ),
    (
        "FastAPI/Starlette (routing, dependencies, middleware, exceptions)",
        ("fastapi/", "starlette/"),
    ),
    ("uvicorn + httptools (HTTP/1.1)", ("uvicorn/protocols/", "httptools")),
    ("event loop (uvloop: epoll, socket I/O, cross-thread wake-ups, idle)", ("asyncio/", "uvloop")),
)
_STARTUP = "start-up (imports)"
_OTHER = "other"
# Frames that enclose everything (the CLI, uvicorn's runner): never a component of their own.
_ENCLOSING = ("gateway/cli.py", "uvicorn/main.py", "uvicorn/server.py", "runpy")


def _file_of(frame_id: str) -> str:
    parts = frame_id.split("\x00")
    return parts[1] if len(parts) > 1 else parts[0]


def components(session: Any) -> tuple[Counter[str], float]:
    """Seconds per component, and the total sampled, of a pyinstrument ``Session``."""
    totals: Counter[str] = Counter()
    sampled = 0.0
    for stack, seconds in session.frame_records:
        sampled += seconds
        files = [_file_of(frame) for frame in stack]
        if any("importlib" in f for f in files):
            totals[_STARTUP] += seconds
            continue
        for file in reversed(files):
            if any(e in file for e in _ENCLOSING):
                continue
            name = next((n for n, patterns in COMPONENTS if any(p in file for p in patterns)), None)
            if name is not None:
                totals[name] += seconds
                break
        else:
            totals[_OTHER] += seconds
    return totals, sampled


def report(session_path: Path, requests: int | None = None) -> str:
    """Time by component (per request when ``requests`` is given), then the call tree."""
    from pyinstrument.renderers import ConsoleRenderer
    from pyinstrument.session import Session

    session = Session.load(session_path)
    totals, sampled = components(session)
    served = sampled - totals.get(_STARTUP, 0.0)
    lines = [
        f"Sampled {sampled:.2f} s of the event-loop thread (process CPU {session.cpu_time:.2f} s). "
        "Component = leaf-most frame with a component, so a library's time goes to the gateway "
        "code that called it unless the library has its own line.",
        "",
        "| component | s | % of serving | ms/request |",
        "|---|--:|--:|--:|",
    ]
    for name, seconds in totals.most_common():
        share = "" if name == _STARTUP else f"{seconds / served:.1%}"
        per_request = f"{seconds / requests * 1000:.2f}" if requests and name != _STARTUP else ""
        lines.append(f"| {name} | {seconds:.2f} | {share} | {per_request} |")
    tree = ConsoleRenderer(unicode=True, color=False).render(session)
    return "\n".join(lines) + "\n\n```text\n" + tree.strip("\n") + "\n```\n"


PROFILER_WRAPPER = ("-m", "pyinstrument", "--renderer=pyisession")
