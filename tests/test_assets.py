import sys

import pytest

from nlpcore import assets


def test_source_checkout_assets():
    found = assets.assets_dir()
    assert found == assets.SOURCE_ROOT / "assets"
    assert assets.shipped_models_dir() == found / "models"


def test_pyinstaller_bundle(tmp_path, monkeypatch):
    (tmp_path / "assets" / "models").mkdir(parents=True)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert assets.assets_dir() == tmp_path / "assets"


def test_installed_package(tmp_path, monkeypatch):
    installed = tmp_path / "site" / "malbeot_assets"
    (installed / "models").mkdir(parents=True)
    (installed / "__init__.py").write_text("")
    monkeypatch.setattr(assets, "SOURCE_ROOT", tmp_path / "not-a-checkout")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, "malbeot_assets", raising=False)
    assert assets.assets_dir() == installed


def test_override_and_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("MALBEOT_ASSETS", str(tmp_path))
    assert assets.assets_dir() == tmp_path
    monkeypatch.delenv("MALBEOT_ASSETS")
    monkeypatch.setattr(assets, "SOURCE_ROOT", tmp_path / "not-a-checkout")
    monkeypatch.setattr(assets, "_installed_dir", lambda: None)
    with pytest.raises(assets.AssetsNotFound, match="MALBEOT_ASSETS"):
        assets.assets_dir()
    assert assets.model_dirs() == [assets.user_models_dir()]


def test_user_dirs(_user_home, monkeypatch):
    assert assets.user_models_dir() == _user_home / "models"
    monkeypatch.delenv("MALBEOT_HOME")
    assert assets.user_data_dir().name == "Malbeot"
    assert assets.model_dirs()[0] == assets.user_models_dir()
