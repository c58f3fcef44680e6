"""The RID as a Code 128 barcode (RX-4: printed as a barcode with the RID below it), drawn as SVG.

python-barcode computes the modules (start code, data, checksum, stop code); the SVG is written
here with plain ``<rect>`` elements and presentation attributes only, no ``style``, so it obeys the
portal's Content-Security-Policy wherever it is shown.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

from barcode import Code128  # type: ignore[import-untyped]

MODULE_WIDTH = 2  # px per module
HEIGHT = 80
QUIET_ZONE = 10  # modules of white on each side (ISO/IEC 15417: at least 10)
TEXT_HEIGHT = 22


def modules(value: str) -> str:
    """The bar pattern as a string of ``1`` (bar) and ``0`` (space)."""
    pattern: str = Code128(value).build()[0]
    return pattern


def svg(value: str) -> bytes:
    pattern = modules(value)
    width = (len(pattern) + 2 * QUIET_ZONE) * MODULE_WIDTH
    bars: list[str] = []
    position = 0
    while position < len(pattern):
        if pattern[position] == "1":
            run = len(pattern[position:]) - len(pattern[position:].lstrip("1"))
            x = (QUIET_ZONE + position) * MODULE_WIDTH
            bars.append(f'<rect x="{x}" y="0" width="{run * MODULE_WIDTH}" height="{HEIGHT}"/>')
            position += run
        else:
            position += 1
    label = escape(value)
    total = HEIGHT + TEXT_HEIGHT
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{total}" '
        f'viewBox="0 0 {width} {total}" role="img" aria-label="{label}">'
        f'<rect x="0" y="0" width="{width}" height="{total}" fill="#ffffff"/>'
        f'<g fill="#000000">{"".join(bars)}</g>'
        f'<text x="{width // 2}" y="{total - 4}" text-anchor="middle" '
        f'font-family="monospace" font-size="16" fill="#000000">{label}</text>'
        "</svg>"
    ).encode()
