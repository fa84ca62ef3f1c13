"""The SageMaker Python SDK's ``sourcedir.tar.gz`` of a script-mode model's code, made
deterministic so the S3 asset built from it changes only when the code does.

Synth packages ``pipeline.model.script.source_dir`` with it (an S3 asset the training job and
the serving container download); the offline runner reads the same archive.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path
from typing import Iterator


def sourcedir_tarball(directory: Path) -> bytes:
    """The SDK's ``sourcedir.tar.gz`` of a code directory (its files at the archive root, as
    ``sagemaker.utils.create_tar_file`` adds each entry with ``arcname=basename``), made
    deterministic: sorted entries, mtime 0, owner 0/0 with empty names, mode 0o644 for files and
    0o755 for directories, gzip header without time or file name. Skipped: ``__pycache__``,
    ``*.pyc`` and dot-files (``.DS_Store``, ``.git``...). Symlinks are followed, as the SDK's
    ``dereference=True``."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ValueError(f"{directory} is not a directory")
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0) as compressed:
        with tarfile.open(fileobj=compressed, mode="w", format=tarfile.PAX_FORMAT) as archive:
            for path in _source_entries(directory):
                info = tarfile.TarInfo(path.relative_to(directory).as_posix())
                info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
                if path.is_dir():
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    archive.addfile(info)
                else:
                    content = path.read_bytes()
                    info.size, info.mode = len(content), 0o644
                    archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def _source_entries(directory: Path) -> Iterator[Path]:
    for path in sorted(directory.iterdir(), key=lambda p: p.name):
        if path.name.startswith(".") or path.name == "__pycache__" or path.suffix == ".pyc":
            continue
        yield path
        if path.is_dir():
            yield from _source_entries(path)
