"""Desktop integration: the .desktop entry, icons, install/uninstall, autostart.

Needs Debian's desktop-file-utils (desktop-file-validate, update-desktop-database).
Qt checks run in a subprocess under QT_QPA_PLATFORM=offscreen, so no QGuiApplication
is created in the pytest process (pytest-qt makes its own QApplication there).
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import stat
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from launcher import desktop_entry as de

ROOT = Path(__file__).resolve().parent.parent
RESOURCES = ROOT / "resources"
ICONS = RESOURCES / "icons"
SOURCE_ENTRY = RESOURCES / "gradio-serve-launcher.desktop"
# Some tests point sys.executable at a fake environment; subprocesses use the real one.
PYTHON = sys.executable
# PATH keeps the system tools (desktop-file-validate, update-desktop-database, ...) but
# loses any folder with a real gradio-serve-launcher (an activated venv), which would win.
PATH_WITHOUT_LAUNCHER = os.pathsep.join(
    d for d in os.environ.get("PATH", "").split(os.pathsep) if d and not (Path(d) / "gradio-serve-launcher").exists()
)


# --------------------------------------------------------------------------- helpers


def validate(path: Path) -> None:
    """desktop-file-validate must pass silently: no errors, no warnings, no hints."""
    tool = shutil.which("desktop-file-validate")
    assert tool, "desktop-file-validate is missing: apt-get install desktop-file-utils"
    result = subprocess.run([tool, str(path)], check=False, capture_output=True, text=True, timeout=30)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert output.strip() == "", f"desktop-file-validate has something to say about {path}:\n{output}"


def snapshot(root: Path) -> dict[str, object]:
    """Every path under root (root included): folders as 'dir', files as their bytes, links as targets."""
    tree: dict[str, object] = {}
    if not root.exists():
        return tree
    tree["."] = "dir"
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = str(path.relative_to(root))
            if path.is_symlink():
                tree[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                tree[rel] = "dir"
            else:
                tree[rel] = path.read_bytes()
    return tree


def read_entry(path: Path) -> dict[str, dict[str, str]]:
    groups: dict[str, dict[str, str]] = {}
    current = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("[") and line.endswith("]"):
            current = groups.setdefault(line[1:-1], {})
        elif "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            assert current is not None, f"key outside a group in {path}: {line}"
            current[key] = value
    return groups


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


def run_qt(script: str) -> dict:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    result = subprocess.run(
        [PYTHON, "-c", textwrap.dedent(script)], check=False, capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def fake_executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


@pytest.fixture
def xdg(tmp_path, monkeypatch):
    """A private HOME and XDG_DATA_HOME / XDG_CONFIG_HOME, and a launcher command with a space in its path."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    data = tmp_path / "data"
    config = tmp_path / "config"
    monkeypatch.setenv("XDG_DATA_HOME", str(data))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    # The command the entries must run: an installed script next to "this interpreter".
    bindir = tmp_path / "my env" / "bin"
    command = fake_executable(bindir / "gradio-serve-launcher")
    monkeypatch.setattr(sys, "executable", str(bindir / "python"))
    monkeypatch.setenv("PATH", PATH_WITHOUT_LAUNCHER)
    monkeypatch.delenv("APPIMAGE", raising=False)
    return {"data": data, "config": config, "home": home, "command": command, "tmp": tmp_path}


# --------------------------------------------------------------------------- the shipped entry


def test_source_desktop_file_validates():
    validate(SOURCE_ENTRY)


def test_source_desktop_file_content():
    entry = read_entry(SOURCE_ENTRY)["Desktop Entry"]
    assert entry["Type"] == "Application"
    assert entry["Name"] == "Gradio Serve Launcher"
    assert entry["Exec"] == "gradio-serve-launcher"
    assert entry["Icon"] == "gradio-serve-launcher"
    assert entry["Terminal"] == "false"
    # One main category (freedesktop menu spec), so the app appears once in the menu.
    main = {"AudioVideo", "Audio", "Video", "Development", "Education", "Game", "Graphics", "Network",
            "Office", "Science", "Settings", "System", "Utility"}
    categories = [c for c in entry["Categories"].split(";") if c]
    assert [c for c in categories if c in main] == ["Development"], categories
    for action in filter(None, entry["Actions"].split(";")):
        group = read_entry(SOURCE_ENTRY)[f"Desktop Action {action}"]
        assert group["Exec"].startswith("gradio-serve-launcher ")


# --------------------------------------------------------------------------- install / uninstall


def test_install_then_uninstall_leaves_nothing(xdg):
    data = xdg["data"]
    # Someone else's files and folders in the same places must survive untouched.
    (data / "applications").mkdir(parents=True)
    (data / "applications" / "other.desktop").write_text("[Desktop Entry]\nType=Application\nName=Other\nExec=other\n")
    (data / "icons" / "hicolor" / "48x48" / "apps").mkdir(parents=True)
    (data / "icons" / "hicolor" / "48x48" / "apps" / "other.png").write_bytes(b"not ours")
    before = snapshot(data)
    config_before = snapshot(xdg["config"])

    written = de.install_desktop_entry()

    installed = data / "applications" / "gradio-serve-launcher.desktop"
    assert installed in written and installed.is_file()
    entry = read_entry(installed)
    args = de.parse_exec(entry["Desktop Entry"]["Exec"])
    assert args == [str(xdg["command"])]
    assert Path(args[0]).is_absolute()
    assert entry["Desktop Entry"]["TryExec"] == str(xdg["command"])
    assert de.parse_exec(entry["Desktop Action start-serving"]["Exec"]) == [str(xdg["command"]), "--start"]
    assert "Path" not in entry["Desktop Entry"]
    validate(installed)  # with the quoted absolute path (it has a space)

    hicolor = data / "icons" / "hicolor"
    for size in de.ICON_SIZES:
        png = hicolor / f"{size}x{size}" / "apps" / "gradio-serve-launcher.png"
        assert png in written
        shipped = ICONS / "hicolor" / f"{size}x{size}" / "apps" / "gradio-serve-launcher.png"
        assert png.read_bytes() == shipped.read_bytes()
    svg = hicolor / "scalable" / "apps" / "gradio-serve-launcher.svg"
    assert svg in written and svg.read_bytes() == (ICONS / "gradio-serve-launcher.svg").read_bytes()
    assert de.desktop_entry_installed()
    assert (data / "applications" / "other.desktop").is_file()

    removed = de.uninstall_desktop_entry()

    assert sorted(removed) == sorted(written)
    assert snapshot(data) == before
    assert snapshot(xdg["config"]) == config_before
    assert not de.desktop_entry_installed()
    assert de.uninstall_desktop_entry() == []  # a second uninstall has nothing to do


def test_install_into_missing_data_home_removes_the_folders_it_made(xdg, monkeypatch):
    data = xdg["data"] / "deeper" / "share"
    monkeypatch.setenv("XDG_DATA_HOME", str(data))
    parent_before = snapshot(xdg["tmp"])
    de.install_desktop_entry()
    de.install_desktop_entry()  # idempotent: a second install keeps the record of what the first made
    assert (data / "applications" / "gradio-serve-launcher.desktop").is_file()
    de.uninstall_desktop_entry()
    assert not data.exists()
    assert snapshot(xdg["tmp"]) == parent_before


def test_default_data_home_is_under_home(xdg, monkeypatch):
    monkeypatch.delenv("XDG_DATA_HOME")
    written = de.install_desktop_entry()
    expected = xdg["home"] / ".local" / "share" / "applications" / "gradio-serve-launcher.desktop"
    assert expected in written and expected.is_file()
    de.uninstall_desktop_entry()
    assert snapshot(xdg["home"]) == {".": "dir"}


def test_existing_caches_are_refreshed_and_restored(xdg, monkeypatch):
    """Where a user already has mimeinfo.cache / icon-theme.cache they are kept current, and
    uninstall leaves them byte-identical to before; where none exist none are created."""
    data = xdg["data"]
    apps = data / "applications"
    apps.mkdir(parents=True)
    (apps / "other.desktop").write_text(
        "[Desktop Entry]\nType=Application\nName=Other\nExec=other %f\nMimeType=text/x-other;\n"
    )
    update_db = shutil.which("update-desktop-database")
    assert update_db, "update-desktop-database is missing: apt-get install desktop-file-utils"
    subprocess.run([update_db, str(apps)], check=True, timeout=30)
    hicolor = data / "icons" / "hicolor"
    (hicolor / "48x48" / "apps").mkdir(parents=True)
    shutil.copy(
        ICONS / "hicolor" / "48x48" / "apps" / "gradio-serve-launcher.png", hicolor / "48x48" / "apps" / "other.png"
    )
    icon_cache_tool = shutil.which("gtk-update-icon-cache")
    if icon_cache_tool:  # Debian's gtk-update-icon-cache; optional for the launcher
        subprocess.run([icon_cache_tool, "-q", "-t", "-f", str(hicolor)], check=True, timeout=30)
    before = snapshot(data)

    de.install_desktop_entry()
    assert (apps / "mimeinfo.cache").is_file()
    if icon_cache_tool:
        assert b"gradio-serve-launcher" in (hicolor / "icon-theme.cache").read_bytes()
    de.uninstall_desktop_entry()
    assert snapshot(data) == before

    # And a fresh data home gets no caches at all.
    fresh = xdg["tmp"] / "fresh"
    monkeypatch.setenv("XDG_DATA_HOME", str(fresh))
    de.install_desktop_entry()
    assert not (fresh / "applications" / "mimeinfo.cache").exists()
    assert not (fresh / "icons" / "hicolor" / "icon-theme.cache").exists()
    de.uninstall_desktop_entry()
    assert not fresh.exists()


def test_uninstall_removes_only_what_the_manifest_lists(xdg):
    de.install_desktop_entry()
    data = xdg["data"]
    # Something another program adds later into a folder we created must stay, with its folder.
    later = data / "icons" / "hicolor" / "64x64" / "apps" / "someone-else.png"
    later.write_bytes(b"theirs")
    de.uninstall_desktop_entry()
    assert later.read_bytes() == b"theirs"
    assert sorted(p.name for p in later.parent.iterdir()) == ["someone-else.png"]
    assert not (data / "applications").exists()
    assert not (data / "gradio-serve-launcher").exists()


def test_manifest_pointing_outside_data_home_is_refused(xdg):
    de.install_desktop_entry()
    victim = xdg["tmp"] / "victim.txt"
    victim.write_text("keep me")
    manifest = de.manifest_path()
    record = json.loads(manifest.read_text())
    record["files"].append("../victim.txt")
    manifest.write_text(json.dumps(record))
    with pytest.raises(de.DesktopEntryError):
        de.uninstall_desktop_entry()
    assert victim.read_text() == "keep me"


def test_exec_prefers_this_environment_then_path_then_python_module(xdg, monkeypatch):
    assert de.launcher_command() == [str(xdg["command"])]
    # Not beside the interpreter: found on PATH.
    monkeypatch.setattr(sys, "executable", str(xdg["tmp"] / "elsewhere" / "python"))
    on_path = fake_executable(xdg["tmp"] / "path dir" / "gradio-serve-launcher")
    monkeypatch.setenv("PATH", os.pathsep.join([str(on_path.parent), PATH_WITHOUT_LAUNCHER]))
    assert de.launcher_command() == [str(on_path)]
    # Nowhere: the interpreter runs the module, from the folder that holds the package.
    monkeypatch.setenv("PATH", PATH_WITHOUT_LAUNCHER)
    command = de.launcher_command()
    assert command == [str(xdg["tmp"] / "elsewhere" / "python"), "-m", "launcher.app"]
    installed = de.install_desktop_entry()[0]
    entry = read_entry(installed)["Desktop Entry"]
    assert de.parse_exec(entry["Exec"]) == command
    assert entry["Path"] == str(ROOT)
    validate(installed)
    de.uninstall_desktop_entry()


def test_exec_quoting_round_trips():
    for argv in (
        ["/usr/bin/gradio-serve-launcher"],
        ["/home/a b/bin/gradio-serve-launcher", "--start"],
        ['/odd/$dir/"q"/back\\slash/100%/launcher', "--minimized"],
    ):
        value = de.exec_value(argv)
        assert de.parse_exec(value) == argv, value
    assert de.exec_value(["/usr/bin/x", "--start"]) == "/usr/bin/x --start"
    assert de.exec_value(["/a b/x"]) == '"/a b/x"'


def test_command_line_install_and_uninstall(xdg):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT)
    before = snapshot(xdg["data"])

    def run(*args):
        return subprocess.run(
            [PYTHON, "-m", "launcher.desktop_entry", *args],
            check=False,
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            timeout=60,
        )

    result = run("install")
    assert result.returncode == 0, result.stderr
    assert (xdg["data"] / "applications" / "gradio-serve-launcher.desktop").is_file()
    assert "wrote" in result.stdout
    result = run("status")
    assert result.returncode == 0 and "installed at" in result.stdout, result.stdout + result.stderr
    result = run("uninstall")
    assert result.returncode == 0, result.stderr
    assert snapshot(xdg["data"]) == before


# --------------------------------------------------------------------------- autostart


def test_autostart_toggle_writes_and_removes_its_file(xdg):
    config = xdg["config"]
    assert not config.exists()
    assert not de.autostart_enabled()

    path = de.set_autostart(True)
    assert path == config / "autostart" / "gradio-serve-launcher.desktop" and path.is_file()
    entry = read_entry(path)["Desktop Entry"]
    assert de.parse_exec(entry["Exec"]) == [str(xdg["command"]), "--minimized"]
    assert de.autostart_enabled() and not de.autostart_starts_serving()
    validate(path)

    de.set_autostart(True, start_serving=True)
    entry = read_entry(path)["Desktop Entry"]
    assert de.parse_exec(entry["Exec"]) == [str(xdg["command"]), "--minimized", "--start"]
    assert de.autostart_enabled() and de.autostart_starts_serving()
    validate(path)

    de.set_autostart(True, start_serving=False)
    assert de.parse_exec(read_entry(path)["Desktop Entry"]["Exec"]) == [str(xdg["command"]), "--minimized"]

    assert de.set_autostart(False) == path
    assert not path.exists()
    assert not config.exists()  # the folders it created for the entry are gone too
    assert not de.autostart_enabled()
    de.set_autostart(False)  # turning off twice is fine


def test_autostart_keeps_an_existing_autostart_folder(xdg, monkeypatch):
    folder = xdg["config"] / "autostart"
    folder.mkdir(parents=True)
    (folder / "other.desktop").write_text("[Desktop Entry]\nType=Application\nName=Other\nExec=other\n")
    before = snapshot(xdg["config"])
    de.set_autostart(True, start_serving=True)
    assert de.autostart_enabled()
    de.set_autostart(False)
    assert snapshot(xdg["config"]) == before
    empty = xdg["tmp"] / "cfg2"
    (empty / "autostart").mkdir(parents=True)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(empty))
    de.set_autostart(True)
    de.set_autostart(False)
    assert (empty / "autostart").is_dir()  # it existed before: not ours to remove


def test_autostart_disabled_by_the_desktop_counts_as_off(xdg):
    path = de.set_autostart(True)
    path.write_text(path.read_text().replace("X-GNOME-Autostart-enabled=true", "X-GNOME-Autostart-enabled=false"))
    assert not de.autostart_enabled()
    path.write_text(path.read_text().replace("X-GNOME-Autostart-enabled=false", "Hidden=true"))
    assert not de.autostart_enabled()


# --------------------------------------------------------------------------- icons


def test_every_png_has_the_size_its_folder_says():
    pngs = sorted((ICONS / "hicolor").glob("*/apps/*.png"))
    assert sorted({int(p.parent.parent.name.split("x")[0]) for p in pngs}) == list(de.ICON_SIZES)
    for png in pngs:
        size = int(png.parent.parent.name.split("x")[0])
        assert png.parent.parent.name == f"{size}x{size}"
        assert png_size(png) == (size, size), png
    sizes = run_qt(
        f"""
        import json, sys
        from pathlib import Path
        from PySide6.QtGui import QImage
        out = {{}}
        for p in sorted(Path({str(ICONS / "hicolor")!r}).glob('*/apps/*.png')):
            img = QImage(str(p))
            out[str(p)] = [img.width(), img.height(), img.isNull(), img.hasAlphaChannel()]
        print(json.dumps(out))
        """
    )
    assert len(sizes) == len(pngs)
    for path, (width, height, null, alpha) in sizes.items():
        expected = int(Path(path).parent.parent.name.split("x")[0])
        assert not null and (width, height) == (expected, expected), path
        assert alpha, f"{path} has no transparency"


def test_every_svg_parses_and_renders():
    svgs = sorted(ICONS.glob("*.svg"))
    names = {p.name for p in svgs}
    assert "gradio-serve-launcher.svg" in names
    assert {f"tray-{s}.svg" for s in de.TRAY_STATES} <= names
    import xml.etree.ElementTree as ET

    for svg in svgs:
        root = ET.parse(svg).getroot()
        assert root.tag == "{http://www.w3.org/2000/svg}svg", svg
    result = run_qt(
        f"""
        import json
        from PySide6.QtSvg import QSvgRenderer
        out = {{}}
        for p in {[str(s) for s in svgs]!r}:
            r = QSvgRenderer(p)
            out[p] = [r.isValid(), r.viewBoxF().width(), r.viewBoxF().height()]
        print(json.dumps(out))
        """
    )
    for path, (valid, width, height) in result.items():
        assert valid, f"Qt cannot render {path}"
        assert width == height and width > 0, f"{path} is not square"


def test_committed_pngs_match_a_fresh_render():
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    result = subprocess.run(
        [PYTHON, str(ROOT / "scripts" / "make_icons.py"), "--check"],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_tray_icons_read_on_light_and_dark_panels():
    """At tray size, each state icon keeps a good share of pixels that stand out from
    both a light and a dark panel, and the four states look different from each other."""
    result = run_qt(
        f"""
        import json
        from PySide6.QtCore import QRectF, Qt
        from PySide6.QtGui import QColor, QImage, QPainter
        from PySide6.QtSvg import QSvgRenderer

        def lum(c):
            def ch(v):
                v /= 255
                return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4
            return 0.2126 * ch(c.red()) + 0.7152 * ch(c.green()) + 0.0722 * ch(c.blue())

        size = 22
        out = {{}}
        for state in {list(de.TRAY_STATES)!r}:
            path = {str(ICONS)!r} + f"/tray-{{state}}.svg"
            renderer = QSvgRenderer(path)
            shares, pixels = {{}}, []
            for panel in ("#f5f5f5", "#ffffff", "#2b2b2b", "#000000"):
                img = QImage(size, size, QImage.Format.Format_ARGB32)
                img.fill(QColor(panel))
                p = QPainter(img)
                p.setRenderHint(QPainter.RenderHint.Antialiasing)
                renderer.render(p, QRectF(0, 0, size, size))
                p.end()
                bg = lum(QColor(panel))
                strong = 0
                for y in range(size):
                    for x in range(size):
                        c = img.pixelColor(x, y)
                        l = lum(c)
                        ratio = (max(l, bg) + 0.05) / (min(l, bg) + 0.05)
                        strong += ratio >= 3.0
                        if panel == "#2b2b2b":
                            pixels.append([c.red(), c.green(), c.blue()])
                shares[panel] = strong / (size * size)
            out[state] = {{"shares": shares, "pixels": pixels}}
        print(json.dumps(out))
        """
    )
    for state, info in result.items():
        for panel, share in info["shares"].items():
            assert share >= 0.25, f"tray-{state}.svg is hard to see on {panel}: {share:.0%} of pixels stand out"
    states = list(result)
    for i, a in enumerate(states):
        for b in states[i + 1 :]:
            diff = sum(
                1
                for pa, pb in zip(result[a]["pixels"], result[b]["pixels"], strict=False)
                if max(abs(x - y) for x, y in zip(pa, pb, strict=False)) > 48
            )
            assert diff >= 20, f"tray-{a}.svg and tray-{b}.svg look almost the same ({diff} pixels differ)"


def test_resource_lookup_and_tray_paths():
    assert de.resources_dir() == RESOURCES
    assert de.app_icon_path() == ICONS / "gradio-serve-launcher.svg"
    assert de.app_icon_path(48).is_file()
    for state in de.TRAY_STATES:
        assert de.tray_icon_path(state).is_file()
    with pytest.raises(ValueError):
        de.tray_icon_path("exploded")
    with pytest.raises(ValueError):
        de.app_icon_path(17)


# --------------------------------------------------------------------------- layering


def test_module_uses_only_the_standard_library():
    # desktop_entry.py and the two modules it is made of (each other's imports aside).
    own = {"launcher.desktop_entry", "launcher.desktop_exec", "launcher.xdg_files"}
    imported = set()
    for module in own:
        tree = ast.parse((ROOT / (module.replace(".", "/") + ".py")).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module not in own:
                imported.add(node.module.split(".")[0])
    non_stdlib = {m for m in imported if m not in sys.stdlib_module_names and m != "__future__"}
    assert not non_stdlib, f"desktop_entry imports {non_stdlib}"
    code = (
        "import sys, launcher.desktop_entry; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'ray', 'gradio', 'torch', 'transformers'}); print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([PYTHON, "-c", code], check=False, capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
