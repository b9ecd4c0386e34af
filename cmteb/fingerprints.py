"""Content hashes of local folders remembered between runs, so a large model or dataset mirror is
not read in full every run.

One small JSON file beside the embedding cache maps a key (the folder and each file's name, size,
inode and modification time, as make and rsync decide what changed) to the content hash computed for
it. A changed file changes the key, so its folder is hashed again; a memo that cannot be read or
written only costs that hash.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cmteb.io import atomic_write_json

#: Entries kept (the most recent): one per model folder or task mirror state seen.
MAX_ENTRIES = 256
#: Mirrors are hashed in threads: one writer at a time, so no thread's entry is lost to another's.
_WRITING = threading.Lock()


def cache_root() -> Path:
    """`$CMTEB_CACHE`, else `~/.cache/cmteb`: the embedding cache and this memo live under it."""
    return Path(os.environ.get("CMTEB_CACHE", Path.home() / ".cache" / "cmteb"))


def fingerprint_memo_file() -> Path:
    """Where fingerprints are remembered."""
    return cache_root() / "fingerprints.json"


class FingerprintMemo:
    """Fingerprints by the state of a folder's files (a model's, a task mirror's)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @staticmethod
    def _digest(key: Any) -> str:
        return hashlib.sha256(json.dumps(key, sort_keys=True).encode("utf-8")).hexdigest()

    def _read(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def get(self, key: Any) -> str | None:
        """The fingerprint remembered for `key`, or None."""
        value = self._read().get(self._digest(key))
        return value if isinstance(value, str) else None

    def put(self, key: Any, fingerprint: str) -> None:
        """Remember `fingerprint` for `key` (the oldest entries make room); a failed write is ignored."""
        with _WRITING:
            entries = self._read()
            entries.pop(self._digest(key), None)
            entries[self._digest(key)] = fingerprint
            kept = dict(list(entries.items())[-MAX_ENTRIES:])
            with contextlib.suppress(OSError):  # a read-only or full cache: it is computed again next time
                atomic_write_json(self.path, kept)


def file_states(root: Path, files: Sequence[Path]) -> list[tuple[str, int, int, int]]:
    """Each file's name under `root`, size, inode and modification time: what a remembered hash is keyed on."""
    states = []
    for path in files:
        stat = path.stat()
        states.append((path.relative_to(root).as_posix(), stat.st_size, stat.st_ino, stat.st_mtime_ns))
    return states


def remembered(key: Any, compute: Callable[[], str]) -> str:
    """The fingerprint remembered for `key`, else `compute()`, remembered for the next run."""
    memo = FingerprintMemo(fingerprint_memo_file())
    known = memo.get(key)
    if known is None:
        known = compute()
        memo.put(key, known)
    return known
