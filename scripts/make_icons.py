#!/usr/bin/env python3
"""Render the app icon PNGs from resources/icons/gradio-serve-launcher.svg.

A size may have its own hand-fitted source, resources/icons/gradio-serve-launcher-<N>.svg
(16 has one: at 16 px the two broadcast arcs of the big icon blur into one smudge);
every other size is rendered from the main SVG.

    python scripts/make_icons.py            # (re)write resources/icons/hicolor/<N>x<N>/apps/*.png
    python scripts/make_icons.py --check    # exit 1 if the committed PNGs differ from a fresh render
    python scripts/make_icons.py --preview sheet.png   # contact sheet: app icon + tray icons on light/dark panels

The PNGs are committed; run this after editing the SVG. Rendering uses Qt's SVG
renderer offscreen (QT_QPA_PLATFORM=offscreen, no display needed), draws into a
transparent ARGB image with antialiasing, and writes PNGs without metadata, so the
same SVG and Qt version give byte-identical files.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QGuiApplication, QImage, QPainter
from PySide6.QtSvg import QSvgRenderer

ROOT = Path(__file__).resolve().parent.parent
ICONS = ROOT / "resources" / "icons"
APP_ID = "gradio-serve-launcher"
SIZES = (16, 24, 32, 48, 64, 128, 256)
TRAY_STATES = ("stopped", "starting", "running", "error")
# Allowed per-channel difference for --check, so a Qt patch release that rounds an
# edge pixel differently does not fail; a changed drawing differs far more.
CHECK_TOLERANCE = 8


def _app() -> QGuiApplication:
    # Qt reads QT_QPA_PLATFORM when the application object is made: no display needed.
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    return QGuiApplication.instance() or QGuiApplication(sys.argv[:1])


def render(svg: Path, size: int) -> QImage:
    """Render an SVG into a transparent size x size ARGB32 image."""
    _app()
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"error: {svg} is not a valid SVG for Qt's renderer")
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
    renderer.setAspectRatioMode(Qt.AspectRatioMode.KeepAspectRatio)
    renderer.render(painter, QRectF(0, 0, size, size))
    painter.end()
    return image.convertToFormat(QImage.Format.Format_ARGB32)


def png_path(size: int, icons: Path = ICONS) -> Path:
    return icons / "hicolor" / f"{size}x{size}" / "apps" / f"{APP_ID}.png"


def source_svg(size: int, icons: Path = ICONS) -> Path:
    """The SVG a size is rendered from: a size-specific one if present, else the main icon."""
    fitted = icons / f"{APP_ID}-{size}.svg"
    return fitted if fitted.exists() else icons / f"{APP_ID}.svg"


def write_pngs(icons: Path = ICONS) -> list[Path]:
    written = []
    for size in SIZES:
        out = png_path(size, icons)
        out.parent.mkdir(parents=True, exist_ok=True)
        image = render(source_svg(size, icons), size)
        # For PNG, Qt maps quality 0 to zlib's strongest compression (lossless either way);
        # no text or time chunks are written.
        if not image.save(str(out), "PNG", 0):
            raise SystemExit(f"error: could not write {out}")
        written.append(out)
    return written


def max_difference(a: QImage, b: QImage) -> int:
    """Largest per-channel difference between two same-size images (255 if sizes differ)."""
    if a.size() != b.size():
        return 255
    a = a.convertToFormat(QImage.Format.Format_ARGB32)
    b = b.convertToFormat(QImage.Format.Format_ARGB32)
    worst = 0
    for y in range(a.height()):
        for x in range(a.width()):
            pa, pb = a.pixel(x, y), b.pixel(x, y)
            if pa != pb:
                for shift in (0, 8, 16, 24):
                    worst = max(worst, abs(((pa >> shift) & 0xFF) - ((pb >> shift) & 0xFF)))
    return worst


def check(icons: Path = ICONS) -> list[str]:
    """Problems found comparing committed PNGs with a fresh render (empty when up to date)."""
    problems = []
    for size in SIZES:
        svg = source_svg(size, icons)
        path = png_path(size, icons)
        committed = QImage(str(path))
        if committed.isNull():
            problems.append(f"{path}: missing or unreadable")
            continue
        diff = max_difference(committed, render(svg, size))
        if diff > CHECK_TOLERANCE:
            problems.append(f"{path}: differs from a fresh render of {svg.name} (max channel difference {diff})")
    return problems


def preview(out: Path, icons: Path = ICONS) -> None:
    """A contact sheet for eyeballing: app icon at every size, tray icons on light and dark panels."""
    _app()
    tray_sizes = (16, 22, 24, 32, 48)
    panels = (QColor("#f6f6f6"), QColor("#d9d9d9"), QColor("#3c3c3c"), QColor("#121212"))
    pad = 8
    width = max(sum(SIZES) + pad * (len(SIZES) + 1), (sum(tray_sizes) + pad * len(tray_sizes)) * len(TRAY_STATES) + pad)
    height = 256 + 2 * pad + len(panels) * (max(tray_sizes) + 2 * pad)
    sheet = QImage(width, height, QImage.Format.Format_ARGB32)
    sheet.fill(QColor("#8a8a8a"))
    painter = QPainter(sheet)
    x = pad
    for size in SIZES:
        painter.drawImage(x, pad, render(source_svg(size, icons), size))
        x += size + pad
    y = 256 + 2 * pad
    row_h = max(tray_sizes) + 2 * pad
    for panel in panels:
        painter.fillRect(0, y, width, row_h, panel)
        x = pad
        for state in TRAY_STATES:
            for size in tray_sizes:
                painter.drawImage(x, y + pad + (max(tray_sizes) - size) // 2, render(icons / f"tray-{state}.svg", size))
                x += size + pad // 2
            x += pad
        y += row_h
    painter.end()
    sheet.save(str(out), "PNG")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--check", action="store_true", help="compare committed PNGs with a fresh render")
    group.add_argument("--preview", type=Path, metavar="PNG", help="write a contact sheet to PNG")
    args = parser.parse_args(argv)
    if args.check:
        problems = check()
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            print("run: python scripts/make_icons.py", file=sys.stderr)
            return 1
        print(f"{len(SIZES)} PNGs up to date")
        return 0
    if args.preview:
        preview(args.preview)
        print(args.preview)
        return 0
    for path in write_pngs():
        print(path.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
