"""Render docs/brand/*.svg into the PNG brand images Home Assistant shows.

Run `PYTHONPATH=. .venv/bin/python scripts/render_brand.py` after changing
an SVG; it uses the same headless chromium as the browser test.
"""

import asyncio
from pathlib import Path

from playwright.async_api import async_playwright

from scripts.live_ha import CHROMIUM, CHROMIUM_ARGS

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT / "docs" / "brand"
TARGET = ROOT / "custom_components" / "telzino" / "brand"
# (source, output, width, height): icon 256 and 512 square; logo 128/256 high.
IMAGES = [
    ("icon.svg", "icon.png", 256, 256),
    ("icon.svg", "icon@2x.png", 512, 512),
    ("logo.svg", "logo.png", 420, 128),
    ("logo.svg", "logo@2x.png", 840, 256),
]


async def render() -> None:
    """Screenshot each SVG at each size with a transparent background."""
    TARGET.mkdir(exist_ok=True)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS
        )
        for source, output, width, height in IMAGES:
            page = await browser.new_page(viewport={"width": width, "height": height})
            svg = (SOURCES / source).read_text()
            await page.set_content(
                "<html><body style='margin:0;background:transparent'>"
                f"<div style='width:{width}px;height:{height}px'>{svg}</div>"
                "<style>svg{width:100%;height:100%}</style></body></html>"
            )
            await page.screenshot(path=TARGET / output, omit_background=True)
            await page.close()
            print(f"{TARGET / output}: {width}x{height}")
        await browser.close()


if __name__ == "__main__":
    asyncio.run(render())
