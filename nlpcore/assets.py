"""Where shipped assets and user files live.

Shipped model packages sit in ``assets/models/<name>/`` of the source tree. The
same folder is found from

* a source checkout (``<checkout>/assets``),
* an installed wheel, where it is the package ``malbeot_assets``,
* a PyInstaller bundle (``<sys._MEIPASS>/assets``),

or wherever ``MALBEOT_ASSETS`` points. User-installed and user-trained models,
history and other user data live in the platform's user data folder
(``platformdirs``), or under ``MALBEOT_HOME`` when that is set.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

APP_NAME = "Malbeot"
SOURCE_ROOT = Path(__file__).resolve().parent.parent


class AssetsNotFound(FileNotFoundError):
    pass


def _bundle_dir() -> Path | None:
    base = getattr(sys, "_MEIPASS", None)
    if getattr(sys, "frozen", False) and base:
        return Path(base) / "assets"
    return None


def _installed_dir() -> Path | None:
    spec = importlib.util.find_spec("malbeot_assets")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def assets_dir() -> Path:
    """The folder holding ``models/`` and the app's resources."""
    env = os.environ.get("MALBEOT_ASSETS")
    if env:
        return Path(env)
    candidates = [_bundle_dir(), SOURCE_ROOT / "assets", _installed_dir()]
    for candidate in candidates:
        if candidate is not None and candidate.is_dir():
            return candidate
    raise AssetsNotFound(
        "cannot find the shipped assets folder (looked in the PyInstaller bundle, the source checkout "
        f"{SOURCE_ROOT / 'assets'} and the installed package malbeot_assets); set MALBEOT_ASSETS"
    )


def shipped_models_dir() -> Path:
    return assets_dir() / "models"


def user_data_dir() -> Path:
    """Per-user data folder (not created here)."""
    env = os.environ.get("MALBEOT_HOME")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def user_cache_dir() -> Path:
    """Per-user cache folder (not created here): ``$MALBEOT_HOME/cache`` when that is set."""
    env = os.environ.get("MALBEOT_HOME")
    if env:
        return Path(env) / "cache"
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))


def user_models_dir() -> Path:
    return user_data_dir() / "models"


def model_dirs() -> list[Path]:
    """Folders searched for model packages, first match wins: user models, then shipped."""
    dirs = [user_models_dir()]
    try:
        dirs.append(shipped_models_dir())
    except AssetsNotFound:
        pass
    return dirs
