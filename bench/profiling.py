"""Reading a pyinstrument session of the gateway: the call tree, and time by component.

pyinstrument is not a project dependency: ``.venv/bin/pip install pyinstrument`` first. The
gateway runs under ``python -m pyinstrument -r pyisession -o FILE -m gateway.cli serve ...``
(see ``PROFILER_WRAPPER``); its samples are wall time of the event-loop thread, one stack each.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
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


# -- the cost table: time per step of a request ----------------------------------------------------
# A sample goes to the innermost frame that names a step (function, file pattern; "" = any
# function). Steps named by a function come first at each frame, so a commit's driver calls are
# the commit's, and the encryption inside the audit writer is the encryption's.
STEPS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("parse the JSON body", (("loads", "<built-in>"), ("loads", "orjson"))),
    ("serialise the answer", (("dumps", "<built-in>"), ("dumps", "orjson"))),
    ("encryption (AES-GCM)", (("encrypt", "crypto.py"), ("decrypt", "crypto.py"))),
    ("keyed hash (HMAC)", (("search_hash", "crypto.py"),)),
    ("commit", (("commit", "sqlalchemy/"),)),
    ("JSON rules", (("", "gateway/fhir/json_rules.py"),)),
    ("profile validation", (("", "fhir_profiles/"), ("", "fhir/resources"), ("", "fhir_core/"))),
    ("token verification", (("", "gateway/auth/"), ("", "joserfc/"), ("", "authlib/"))),
    (
        "access decision",
        (("", "gateway/access/"), ("", "gateway/consents/"), ("", "visibility.py")),
    ),
    ("audit record and chain", (("", "gateway/audit/"),)),
    (
        "SQL statements (SQLAlchemy, driver)",
        (("", "sqlalchemy/"), ("", "psycopg"), ("", "aiosqlite/"), ("", "greenlet")),
    ),
    ("gateway: route, service, store, responses", (("", "gateway/"), ("", "bench/floor_app"))),
    ("FastAPI/Starlette, pydantic", (("", "fastapi/"), ("", "starlette/"), ("", "pydantic"))),
    ("uvicorn + h11 (HTTP/1.1)", (("", "uvicorn/"), ("", "h11/"), ("", "httptools"))),
    (
        "waiting: event loop idle, I/O, the database",
        (("", "asyncio/"), ("", "uvloop"), ("poll", "")),
    ),
)
IDLE_STEP = STEPS[-1][0]


def _starting(stack: Sequence[str]) -> bool:
    """A sample of start-up or shutdown: imports, building the app, its lifespan."""
    for frame in stack:
        file = _file_of(frame)
        if "importlib" in file or "lifespan" in file or _function_of(frame) == "create_app":
            return True
    return False


def _function_of(frame_id: str) -> str:
    return frame_id.split("\x00", 1)[0]


def steps(session: Any) -> tuple[Counter[str], float]:
    """Seconds per step (``STEPS``) of a pyinstrument ``Session``, start-up left out, and the
    seconds sampled after start-up."""
    totals: Counter[str] = Counter()
    for stack, seconds in session.frame_records:
        if _starting(stack):
            continue
        name = _OTHER
        for frame in reversed(stack):
            file, function = _file_of(frame), _function_of(frame)
            if any(e in file for e in _ENCLOSING):
                continue
            found = next(
                (
                    step
                    for step, rules in STEPS
                    if any((not f or f == function) and p in file for f, p in rules)
                ),
                None,
            )
            if found is not None:
                name = found
                break
        totals[name] += seconds
    return totals, sum(totals.values())
