"""Output planning: every output of a command checked before any work or file creation.

Every command that writes files calls :func:`plan_outputs` once, after reading the
inputs' headers and before computing anything.  It resolves every output and
refuses (:class:`OutputError`, a ``ValueError``, one line for the command line):

- two outputs that are one file (same path after resolving links, or the same inode:
  hard links), or one inside the other's folder;
- an output that is one of the inputs (same test) or lies inside an input folder, and
  an input that lies inside an output folder;
- an existing file without ``overwrite`` (zarr outputs are resumable and folders are
  written into: they may exist), a directory where a file is expected and vice versa;
- a missing or unwritable parent folder;
- an image format that cannot hold what will be written (bit depth, colour, alpha,
  a stack in PNG: :func:`napari_lowlight.io.check_writable`), or a suffix outside
  ``suffixes``.

Usage (a new command)::

    from .io import probe_image
    from .outputs import Output, plan_outputs

    info = probe_image(args.input)                         # header only
    plan_outputs([Output(args.output, "OUT", shape=info.shape, alpha=info.alpha),
                  Output(args.extra, "--extra", suffixes=(".tif", ".tiff"))],
                 inputs=[args.input], overwrite=args.overwrite)
    data = load_image(args.input)                          # then compute, then write
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Output", "OutputError", "plan_outputs", "same_file"]

KINDS = ("image", "file", "folder", "zarr")


class OutputError(ValueError):
    """An output that cannot be written safely (named in the message)."""


@dataclass(frozen=True)
class Output:
    """One output of a command.

    Parameters
    ----------
    path : path
    option : str
        How the user named it, for messages: ``"OUT"``, ``"--gain"``, ``"--out"``.
    kind : {"image", "file", "folder", "zarr"}
        ``image``: written by :func:`napari_lowlight.io.write_image` (its format is
        checked against ``shape``, ``bits`` and ``alpha``); ``file``: any other file;
        ``folder``: a directory that files are written into (may exist); ``zarr``: a
        zarr store that a run resumes (may exist).
    shape : tuple, optional
        Shape of the light that will be written (image outputs).
    bits : int, optional
        Bit depth of a quantized image (None: a display image).
    alpha : bool
        An alpha channel will be written with it.
    suffixes : tuple of str, optional
        Allowed suffixes (lower case, with the dot).
    """

    path: Path | str
    option: str = "OUT"
    kind: str = "image"
    shape: tuple | None = None
    bits: int | None = None
    alpha: bool = False
    suffixes: tuple[str, ...] | None = None


def _resolve(path: Path) -> Path:
    return Path(os.path.normcase(os.path.abspath(path.expanduser().resolve(strict=False))))


def _identity(path: Path):
    """(device, inode) of an existing path, else None."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (stat.st_dev, stat.st_ino)


def same_file(a, b) -> bool:
    """Whether ``a`` and ``b`` are one file or folder: same resolved path or same inode."""
    a, b = Path(a), Path(b)
    if _resolve(a) == _resolve(b):
        return True
    ida, idb = _identity(a), _identity(b)
    return ida is not None and ida == idb


def _inside(inner: Path, outer: Path) -> bool:
    """Whether resolved ``inner`` lies strictly inside resolved folder ``outer``."""
    return inner != outer and outer in inner.parents


def _within_by_inode(path: Path, folder: Path) -> bool:
    """Whether ``path`` lies inside ``folder`` seen through another name (bind or link)."""
    target = _identity(folder)
    if target is None:
        return False
    return any(_identity(parent) == target for parent in _resolve(path).parents)


def plan_outputs(outputs: Sequence[Output | str | os.PathLike], *,
                 inputs: Iterable[str | os.PathLike] = (), overwrite: bool = False
                 ) -> list[Path]:
    """Check every output of a command before any work; return their resolved paths.

    Parameters
    ----------
    outputs : sequence of Output (or paths: image outputs named ``OUT``)
        Every file or folder the command will write.  ``None`` entries are skipped
        (an optional output the user did not ask for).
    inputs : iterable of path
        Every file or folder the command reads.
    overwrite : bool
        Whether existing image/file outputs may be replaced (``--overwrite``).

    Returns
    -------
    list of Path
        The resolved output paths, in the order given (``None`` entries dropped).

    Raises
    ------
    OutputError
        With a one-line message naming the output, for every case in the module docstring.
    """
    planned = [o if isinstance(o, Output) else Output(o) for o in outputs if o is not None]
    inputs = [Path(p) for p in inputs if p is not None]
    resolved = _resolve_outputs(planned)
    _check_against_inputs(planned, resolved, inputs)
    _check_distinct(planned, resolved)
    for output, real in zip(planned, resolved):
        _check_destination(output, real, overwrite)
    return resolved


def _resolve_outputs(planned: list[Output]) -> list[Path]:
    """The resolved path of every output, once every kind is known and every name given."""
    for output in planned:  # a programming error (ValueError), before any user error
        if output.kind not in KINDS:
            raise ValueError(f"unknown output kind {output.kind!r}; use one of {KINDS}")
    resolved = []
    for output in planned:
        if not str(output.path).strip():
            raise OutputError(f"{output.option}: empty output name")
        resolved.append(_resolve(Path(output.path)))
    return resolved


def _check_against_inputs(planned, resolved, inputs) -> None:
    """Refuse an output that is an input or inside an input folder, or one around an input."""
    for output, real in zip(planned, resolved):
        for source in inputs:
            real_source = _resolve(source)
            if real == real_source:
                raise OutputError(f"output {output.path} is the input file; choose another "
                                  "name")
            if same_file(output.path, source):
                raise OutputError(f"output {output.path} is the same file as the input "
                                  f"{source} (a hard link or another name for it); choose "
                                  "another name")
            if source.is_dir() and (_inside(real, real_source)
                                    or _within_by_inode(output.path, source)):
                raise OutputError(f"output {output.path} is inside the input folder {source}; "
                                  "write it outside the inputs")
            if output.kind in ("folder", "zarr") and _inside(real_source, real):
                raise OutputError(f"input {source} is inside the output {output.option} "
                                  f"{output.path}; choose another output")


def _check_distinct(planned, resolved) -> None:
    """Refuse two outputs that are one file, or one inside the other's folder."""
    for i, (a, real_a) in enumerate(zip(planned, resolved)):
        for b, real_b in zip(planned[i + 1:], resolved[i + 1:]):
            if real_a == real_b or same_file(a.path, b.path):
                raise OutputError(
                    f"{a.option} and {b.option} are the same file ({a.path}); give each output "
                    "its own name")
            # either one may be the folder: check both ways round
            for outer, inner, real_outer, real_inner in ((a, b, real_a, real_b),
                                                         (b, a, real_b, real_a)):
                if outer.kind in ("folder", "zarr") and _inside(real_inner, real_outer):
                    raise OutputError(f"{inner.option} {inner.path} is inside the output "
                                      f"{outer.option} {outer.path}; write it elsewhere")


def _check_destination(output: Output, real: Path, overwrite: bool) -> None:
    """Refuse an output that cannot be written: what is there, its folder, its format."""
    from .io import check_writable

    path = Path(output.path)
    name = f"{output.option} {path}" if output.option else str(path)
    is_folder = output.kind in ("folder", "zarr")
    if path.is_symlink() and not path.exists():
        raise OutputError(f"{name} is a broken symbolic link; remove it or choose another "
                          "name")
    if path.exists():
        if path.is_dir() and not is_folder:
            raise OutputError(f"{name} is a directory; give a file name")
        if not path.is_dir() and is_folder:
            raise OutputError(f"{name} is a file; give a folder name")
        if not is_folder and not overwrite:
            raise OutputError(f"{path} exists; pass --overwrite to replace it")
    parent = real.parent
    if is_folder:  # folders are created with their parents: the nearest existing one counts
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
    if not parent.is_dir():
        raise OutputError(f"output folder {path.parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write {name}: the folder {parent} is not writable")
    if output.suffixes is not None and path.suffix.lower() not in output.suffixes:
        raise OutputError(f"{name}: use one of {', '.join(output.suffixes)}")
    if output.kind == "image":
        try:
            check_writable(path, shape=output.shape, bits=output.bits, alpha=output.alpha)
        except ValueError as exc:  # the format's refusal, as the one-line OutputError
            raise OutputError(str(exc)) from None
