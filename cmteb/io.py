"""Files written so that a reader never sees a part: temp file in the same folder, fsync, rename; and
content hashes. Used by result files, the embedding cache, the result store, mirrors and rendered tables."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def atomic_write_text(path: Path, text: str) -> None:
    """Write `text` to `path` so that readers see the old file or the new one, never a part."""
    atomic_write_bytes(path, text.encode("utf-8"))


def umask_mode(mode: int = 0o666) -> int:
    """`mode` as the user's umask leaves it: what `open()` would give a new file (0o777 for a folder)."""
    mask = os.umask(0)
    os.umask(mask)
    return mode & ~mask


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` via a temp file in the same folder, fsync and rename.

    The temp file is made private (0600) by `mkstemp`; it gets the mode a plain write would give
    before the rename, so results stay readable by whoever the umask allows."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, umask_mode())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def remove_orphan_temps(path: Path) -> None:
    """Remove the temp files a killed `atomic_write_bytes` of `path` left. Call it only where no live writer of
    `path` can exist (under the lock its writers hold)."""
    for temp in Path(path).parent.glob(f".{glob_escape(Path(path).name)}.*.tmp"):
        temp.unlink(missing_ok=True)


def glob_escape(name: str) -> str:
    """`name` with glob's special characters made literal."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def atomic_write_json(path: Path, data: Any) -> None:
    """`atomic_write_text` of `data` as indented JSON (NaN kept, as mteb writes it)."""
    atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False, default=str))


def sha256_file(path: Path) -> str:
    """The sha256 of a file, read in 1 MiB chunks."""
    return feed_file(hashlib.sha256(), path).hexdigest()


def feed_file(digest: Any, path: Path) -> Any:
    """`digest` (a hashlib object) updated with a file's bytes, read in 1 MiB chunks; returned."""
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest


def read_yaml(path: Path) -> Any:
    """A YAML file's data, parsed safely; with libyaml's C parser where PyYAML has it (the task registry
    and protocols parse in a tenth of the pure-Python loader's 0.2 s, which every run pays)."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(Path(path).read_text(encoding="utf-8"), Loader=loader)
