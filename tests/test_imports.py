"""The core stays light: no TensorFlow, JAX, Keras or Qt at import time."""

import subprocess
import sys

CORE_MODULES = [
    "nlpcore",
    "nlpcore.cli",
    "nlpcore.tokenizer",
    "nlpcore.data",
    "nlpcore.packages",
    "nlpcore.config",
    "nlpcore.assets",
    "nlpcore.numpy_rnn",
    "nlpcore.decoding",
    "nlpcore.services",
    "nlpcore.text",
    "nlpcore.inference",
    "nlpcore.evaluate",
]


def test_core_imports_no_framework():
    code = (
        f"import sys, {', '.join(CORE_MODULES)}; "
        "heavy = [m for m in ('tensorflow', 'jax', 'keras', 'torch', 'PySide6') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_cli_help_imports_no_framework():
    code = (
        "import sys; from nlpcore import cli\n"
        "try:\n    cli.main(['models', '--help'])\nexcept SystemExit:\n    pass\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120, capture_output=True)


def test_core_never_imports_qt():
    from pathlib import Path

    import nlpcore

    for path in Path(nlpcore.__file__).parent.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "PySide6" not in text and "import desktop" not in text, path


def test_registered_layer_names_are_unique():
    import ast
    from pathlib import Path

    import nlpcore

    seen: dict[str, str] = {}
    for path in sorted((Path(nlpcore.__file__).parent / "models").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.ClassDef):
                continue
            for decorator in node.decorator_list:
                if isinstance(decorator, ast.Call) and getattr(decorator.func, "attr", "") == "register_keras_serializable":
                    name = next((k.value.value for k in decorator.keywords if k.arg == "name"), node.name)
                    assert name not in seen, f"{name} registered in {seen.get(name)} and {path.name}"
                    seen[name] = path.name
