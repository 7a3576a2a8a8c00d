"""The package's layering: the core stays free of napari and Qt (it must run in scripts
and on cluster workers), and no module reaches into another's private names."""

import ast
import io
import subprocess
import sys
import tokenize
from pathlib import Path

CORE_MODULES = [
    "napari_lowlight",
    "napari_lowlight.formation",
    "napari_lowlight.quantization",
    "napari_lowlight.dimming",
    "napari_lowlight.metrics",
    "napari_lowlight.io",
    "napari_lowlight.data",
    "napari_lowlight.demo",
    "napari_lowlight.cli",
]


def test_core_imports_no_gui():
    code = (
        "import sys\n"
        f"for name in {CORE_MODULES!r}: __import__(name)\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('napari', 'magicgui', 'qtpy', 'PyQt5', 'PyQt6', 'PySide2', 'PySide6', 'vispy')]\n"
        "print(','.join(sorted(bad)))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"core pulled in GUI modules: {result.stdout}"


def test_command_line_starts_without_torch():
    """Every command's parser, train's defaults (read from TrainConfig) included, is built
    without importing torch: it loads only when a command that needs it runs."""
    code = ("import sys\n"
            "from napari_lowlight.cli import _build_parser\n"
            "from napari_lowlight.dequantizer.config import TrainConfig\n"
            "_build_parser()\n"
            "print('torch' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_public_names():
    import napari_lowlight as nl

    for name in ("degrade", "Quantization", "DegradedImage", "metrics", "dimming"):
        assert hasattr(nl, name)
    assert callable(nl.metrics.interval_consistency)


def _private_imports(package_dir):
    """``from X import _name`` in the package's modules where ``_name`` is not a module.

    A private module (``from ._lp import solve_partition``) is fine: the rule is about
    private *names*, which belong to their module.  Returns "path:line: from X import _name".
    """
    root = Path(package_dir)
    top = root.parent

    def is_module(dotted: str) -> bool:
        path = top.joinpath(*dotted.split("."))
        return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()

    found = []
    for path in sorted(root.rglob("*.py")):
        # a module's package is its folder, for a package's own __init__.py too
        package = list(path.relative_to(top).parts[:-1])
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom):
                continue
            if node.level:  # relative: climb from the module's own package
                base = package[: len(package) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                name = alias.name
                if not name.startswith("_") or (name.startswith("__") and name.endswith("__")):
                    continue
                if not is_module(f"{source}.{name}"):
                    found.append(f"{path.relative_to(top)}:{node.lineno}: "
                                 f"from {source} import {name}")
    return found


def test_no_private_names_cross_modules():
    """A leading underscore means "only this module uses it": importing one elsewhere hides
    a dependency from whoever changes it.  Make the name public or move it."""
    import napari_lowlight

    package_dir = Path(napari_lowlight.__file__).parent
    assert _private_imports(package_dir) == []


#: The most code lines a function may have (from its ``def`` to its end, less its docstring,
#: blank and comment-only lines) unless a comment in it says why ("long because ...").
MAX_FUNCTION_LINES = 60

_NOT_CODE = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
             tokenize.ENCODING, tokenize.ENDMARKER}


def _function_lengths(source: str):
    """(name, first line, code lines, says why it is long) for every function of ``source``."""
    code_lines, comments = set(), {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            comments[token.start[0]] = token.string
        elif token.type not in _NOT_CODE:  # a multi-line string is code on every line
            code_lines.update(range(token.start[0], token.end[0] + 1))
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        lines = {n for n in code_lines if node.lineno <= n <= node.end_lineno}
        first = node.body[0]
        if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)):
            lines -= set(range(first.lineno, first.end_lineno + 1))
        explained = any("long because" in text for line, text in comments.items()
                        if node.lineno <= line <= node.end_lineno)
        yield node.name, node.lineno, len(lines), explained


def test_function_lengths_are_counted_without_docstring_comments_and_blanks():
    source = ('def f(a,\n      b):\n    """Doc.\n\n    More.\n    """\n    # why\n\n'
              '    x = """two\n    lines"""\n    return x  # trailing\n\n\n'
              'def g():\n    # long because: a reason\n    pass\n')
    # f: the two lines of its def, the two of its string and the return
    assert list(_function_lengths(source)) == [("f", 1, 5, False), ("g", 14, 2, True)]


def test_no_function_is_too_long():
    """A function over MAX_FUNCTION_LINES does several jobs: split it into functions that
    each do one, or say in a comment why it is "long because" it must be one piece."""
    import napari_lowlight

    package_dir = Path(napari_lowlight.__file__).parent
    too_long = []
    for path in sorted(package_dir.rglob("*.py")):
        module = path.relative_to(package_dir).as_posix()
        for name, line, length, explained in _function_lengths(path.read_text("utf-8")):
            if length > MAX_FUNCTION_LINES and not explained:
                too_long.append(f"{module}:{line} {name}: {length} lines")
    assert too_long == [], (f"functions over {MAX_FUNCTION_LINES} code lines: {too_long}; "
                            "split them, or say why in a comment ('long because ...')")
