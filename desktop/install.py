"""Install a model package from a folder or a ``.zip`` file (Qt-free).

The package is verified (every file's size and SHA-256 against its card) by
:func:`nlpcore.packages.install_package` before it is copied into the user
models folder; a zip is unpacked into a temporary folder first, refusing
entries that would land outside it.
"""

from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path

from nlpcore.packages import CARD_FILE, ModelCard, PackageError, install_package, read_card

TASK_TAB = {"sentiment": "sentiment", "translation": "translate", "generation": "generate"}
MAX_UNPACKED = 4 << 30  # bytes: a zip that unpacks to more than this is refused


def _package_root(folder: Path) -> Path:
    if (folder / CARD_FILE).is_file():
        return folder
    found = sorted(p.parent for p in folder.rglob(CARD_FILE))
    if len(found) != 1:
        raise PackageError(f"{folder}: expected one model package (a folder with {CARD_FILE}), found {len(found)}")
    return found[0]


def _unzip(archive: Path, into: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            total = 0
            root = into.resolve()
            for info in zf.infolist():
                target = (into / info.filename).resolve()
                if target != root and root not in target.parents:
                    raise PackageError(f"{archive}: entry {info.filename!r} points outside the archive")
                total += info.file_size
                if total > MAX_UNPACKED:
                    raise PackageError(f"{archive}: unpacks to more than {MAX_UNPACKED >> 30} GiB")
            zf.extractall(into)
    except zipfile.BadZipFile as exc:
        raise PackageError(f"{archive}: not a valid zip file ({exc})") from None


def install_from(path: str | Path) -> tuple[Path, ModelCard]:
    """Verify and install the package at ``path`` (folder or zip); returns where it went and its card."""
    path = Path(path)
    if path.is_file() and zipfile.is_zipfile(path):
        with tempfile.TemporaryDirectory(prefix="malbeot-install-") as tmp:
            _unzip(path, Path(tmp))
            target = install_package(_package_root(Path(tmp)))
    elif path.is_dir():
        target = install_package(_package_root(path))
    else:
        raise PackageError(f"{path}: not a model package folder or zip file")
    return target, read_card(target)
