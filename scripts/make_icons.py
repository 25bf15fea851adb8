"""Rasterise static/icons/favicon.svg into favicon.ico and the app icons, with the Chromium the browser tests use.

    .venv/bin/python scripts/make_icons.py

Run it after changing favicon.svg and commit the results; nothing runs it at build time.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

ICONS = Path(__file__).resolve().parent.parent / "static" / "icons"
SVG = (ICONS / "favicon.svg").read_text()


def render(page: Any, size: int, padding: float = 0.0, background: str = "transparent") -> bytes:
    inner = size * (1 - 2 * padding)
    svg = SVG.replace("<svg ", '<svg width="100%" height="100%" ')
    page.set_viewport_size({"width": size, "height": size})
    page.set_content(
        f"<html><body style='margin:0;background:{background};width:{size}px;height:{size}px;display:grid;"
        f"place-items:center'><div style='width:{inner}px;height:{inner}px'>"
        f"{svg}</div></body></html>"
    )
    return page.screenshot(omit_background=background == "transparent")


def ico(images: dict[int, bytes]) -> bytes:
    # An ICO whose entries are PNGs (supported by every browser and by Windows since Vista).
    header = struct.pack("<HHH", 0, 1, len(images))
    offset = 6 + 16 * len(images)
    entries, data = b"", b""
    for size, png in images.items():
        entries += struct.pack("<BBBBHHII", size % 256, size % 256, 0, 0, 1, 32, len(png), offset + len(data))
        data += png
    return header + entries + data


def main() -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page()
        (ICONS / "favicon.ico").write_bytes(ico({size: render(page, size) for size in (16, 32, 48)}))
        # Apple and maskable icons need an opaque, padded square.
        (ICONS / "apple-touch-icon.png").write_bytes(render(page, 180, 0.12, "#ffffff"))
        (ICONS / "icon-192.png").write_bytes(render(page, 192, 0.12, "#ffffff"))
        (ICONS / "icon-512.png").write_bytes(render(page, 512, 0.12, "#ffffff"))
        browser.close()


if __name__ == "__main__":
    main()
