"""Content hashes of local folders remembered between runs, so a large model or dataset mirror is
not read in full every run.

One small JSON file in cmteb's state folder (`--cache-dir`, else `$CMTEB_CACHE`, else ~/.cache/cmteb, beside
the embedding cache and the result store) maps a key (the folder and each file's name, size, inode,
modification time and status-change time) to the content hash computed for it. A changed file changes the
key, so its folder is hashed again: the status-change time moves with every write, also one that keeps the
modification time (an in-place edit followed by `touch -d`, `cp -p`, `rsync -a` over a file), and no user can
set it back. A memo that cannot be read or written only costs that hash; a run with `--no-cache` uses none.
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
    """`$CMTEB_CACHE`, else `~/.cache/cmteb`: cmteb's state folder (embeddings, stored results, this memo) when
    `--cache-dir` names none."""
    return Path(os.environ.get("CMTEB_CACHE", Path.home() / ".cache" / "cmteb"))


MEMO_FILE = "fingerprints.json"


def fingerprint_memo_file(state_dir: Path | None = None) -> Path:
    """Where fingerprints are remembered: in `state_dir`, else in the default state folder."""
    return (state_dir or cache_root()) / MEMO_FILE


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


def file_states(root: Path, files: Sequence[Path]) -> list[tuple[str, int, int, int, int]]:
    """Each file's name under `root`, size, inode, modification and status-change times: what a remembered hash
    is keyed on."""
    states = []
    for path in files:
        stat = path.stat()
        name = path.relative_to(root).as_posix()
        states.append((name, stat.st_size, stat.st_ino, stat.st_mtime_ns, stat.st_ctime_ns))
    return states


#: `remembered`'s default: the memo of the default state folder.
DEFAULT = object()


def remembered(key: Any, compute: Callable[[], str], memo: Any = DEFAULT) -> str:
    """The fingerprint `memo` remembers for `key`, else `compute()`, remembered for the next run. `memo`: a
    FingerprintMemo, None (none: `--no-cache`), or DEFAULT, the default state folder's."""
    if memo is DEFAULT:
        memo = FingerprintMemo(fingerprint_memo_file())
    if memo is None:
        return compute()
    known = memo.get(key)
    if known is None:
        known = compute()
        memo.put(key, known)
    return known
