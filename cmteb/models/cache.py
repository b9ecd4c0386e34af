"""A content-addressed embedding cache shared across tasks and runs.

Why not mteb's `CachedEmbeddingWrapper`: it keeps one cache per task and prompt type (C-MTEB
tasks share passage collections: T2Retrieval/T2Reranking, MMarco*, CMedQA*), encodes a text
that repeats inside one call once per occurrence, writes its index in place (a killed run can
leave it torn), and does not key the cache on the model's weights or settings.

Here a namespace is one model fingerprint (name, revision or weights hash, pooling,
normalisation, max length, precision); inside it, a text's key is the blake2b hash of the
exact text encoded (instruction included). Vectors live in append-only shards written
atomically (`shard-<id>.npy`, then `shard-<id>.json` with its size and sha256 as the commit
record). A shard whose file is missing, truncated or altered is detected when the cache opens
and ignored, so its texts are encoded again.

Each process that opens a namespace holds a lock file under `runs/` for as long as it runs. When a
cache opens, files no live run can still be writing (older than the oldest live run's lock) are
removed if nothing will ever read them: shard files without a commit record and temp files left by
a killed write, and damaged shards.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock, Timeout

from cmteb.errors import warn
from cmteb.fingerprints import cache_root
from cmteb.io import atomic_write_bytes, atomic_write_json, sha256_file

#: The folder of a namespace holding one lock file per live run.
RUNS = "runs"


def default_cache_dir() -> Path:
    """cmteb's state folder when `--cache-dir` names none: `$CMTEB_CACHE`, else `~/.cache/cmteb`. It holds the
    embedding cache (`embeddings/`), the result store (`results/`) and the fingerprint memo."""
    return cache_root()


#: The embedding cache's folder in the state folder.
EMBEDDINGS = "embeddings"


def text_key(text: str) -> bytes:
    """The 16-byte content key of one text."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


class EmbeddingCache:
    """Embeddings by text for one model fingerprint; in memory, and on disk when `root` is given."""

    def __init__(self, namespace: dict[str, Any], root: Path | None = None) -> None:
        self.namespace = namespace
        digest = hashlib.sha256(json.dumps(namespace, sort_keys=True).encode()).hexdigest()[:20]
        self.folder = Path(root) / digest if root is not None else None
        self._memory: dict[bytes, np.ndarray] = {}
        self._disk: dict[bytes, tuple[np.ndarray, int]] = {}
        self.hits = self.misses = 0
        self.corrupt_shards: list[str] = []
        if self.folder is not None:
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                atomic_write_json(self.folder / "namespace.json", namespace)
            except OSError as exc:
                self._disk_failed(exc)
                return
            self._hold_run_lock()
            self._open_shards()
            self._remove_orphans()

    def _disk_failed(self, exc: OSError) -> None:
        """A cache that cannot be written (a full disk, a read-only home) degrades to memory: the run goes on."""
        warn(
            f"embedding cache {self.folder} cannot be written ({exc.strerror or exc}): this run keeps its "
            "embeddings in memory only (--cache-dir elsewhere, or --no-cache, to silence this)"
        )
        self.folder = None

    def _hold_run_lock(self) -> None:
        """Mark this process as a live user of the namespace until it exits (the OS drops the lock then)."""
        runs = self.folder / RUNS
        runs.mkdir(exist_ok=True)
        self._run_lock = FileLock(runs / f"{uuid.uuid4().hex}.lock")
        self._run_lock.acquire()

    def _oldest_live_run(self) -> float:
        """When the oldest run still holding its lock started; locks of runs that ended are removed."""
        oldest = float("inf")
        for path in (self.folder / RUNS).glob("*.lock"):
            if path == Path(self._run_lock.lock_file):
                oldest = min(oldest, path.stat().st_mtime)
                continue
            probe = FileLock(path)
            try:
                probe.acquire(timeout=0)
            except Timeout:  # held: a live run
                oldest = min(oldest, path.stat().st_mtime)
                continue
            except OSError:
                continue
            probe.release()
            path.unlink(missing_ok=True)
        return oldest

    def _remove_orphans(self) -> None:
        """Remove files that nothing will read and no live run is writing (see the module docstring)."""
        try:
            before = self._oldest_live_run()
            kept = {name for record in self._records.values() for name in record}
            for path in self.folder.iterdir():
                stray = path.name.endswith(".tmp") or (
                    path.name.startswith("shard-")
                    and path.name not in kept
                    and path.suffix in (".npy", ".keys", ".json")
                )
                if stray and path.is_file() and path.stat().st_mtime < before:
                    path.unlink(missing_ok=True)
        except OSError:  # another run removed it first, or the folder is read-only: nothing is lost
            return

    def _open_shards(self) -> None:
        self._records: dict[str, tuple[str, ...]] = {}  # good shards: record file -> its files
        for record_file in sorted(self.folder.glob("shard-*.json")):
            try:
                record = json.loads(record_file.read_text(encoding="utf-8"))
                vectors_file = self.folder / record["vectors"]
                keys_file = self.folder / record["keys"]
                ok = (
                    vectors_file.stat().st_size == record["vectors_size"]
                    and keys_file.stat().st_size == record["keys_size"]
                    and sha256_file(vectors_file) == record["vectors_sha256"]
                    and sha256_file(keys_file) == record["keys_sha256"]
                )
            except (OSError, ValueError, KeyError):
                ok = False
            if not ok:  # the run warns once, with the count; the files go with the orphans
                self.corrupt_shards.append(record_file.name)
                continue
            self._records[record_file.name] = (record_file.name, vectors_file.name, keys_file.name)
            vectors = np.load(vectors_file, mmap_mode="r")
            keys = np.fromfile(keys_file, dtype=np.uint8).reshape(-1, 16)
            for row, key in enumerate(keys):
                self._disk[key.tobytes()] = (vectors, row)

    def __len__(self) -> int:
        return len(set(self._memory) | set(self._disk))

    def get(self, key: bytes) -> np.ndarray | None:
        """The cached vector of a key, or None."""
        if key in self._memory:
            return self._memory[key]
        if key in self._disk:
            vectors, row = self._disk[key]
            return np.asarray(vectors[row])
        return None

    def put(self, keys: Sequence[bytes], vectors: np.ndarray) -> None:
        """Add new vectors; on disk they form one new shard, written atomically."""
        if len(keys) == 0:
            return
        for key, vector in zip(keys, vectors, strict=True):
            self._memory[key] = vector
        if self.folder is None:
            return
        try:
            self._write_shard(keys, vectors)
        except OSError as exc:
            self._disk_failed(exc)

    def _write_shard(self, keys: Sequence[bytes], vectors: np.ndarray) -> None:
        """One new shard on disk: vectors, keys, then the record that makes it readable."""
        assert self.folder is not None
        shard = f"shard-{uuid.uuid4().hex}"
        vectors_bytes = _npy_bytes(np.ascontiguousarray(vectors, dtype=np.float32))
        keys_bytes = b"".join(keys)
        atomic_write_bytes(self.folder / f"{shard}.npy", vectors_bytes)
        atomic_write_bytes(self.folder / f"{shard}.keys", keys_bytes)
        # The record goes last: a shard without one (a crash in between) is never read.
        atomic_write_json(
            self.folder / f"{shard}.json",
            {
                "vectors": f"{shard}.npy",
                "keys": f"{shard}.keys",
                "rows": len(keys),
                "vectors_size": len(vectors_bytes),
                "keys_size": len(keys_bytes),
                "vectors_sha256": hashlib.sha256(vectors_bytes).hexdigest(),
                "keys_sha256": hashlib.sha256(keys_bytes).hexdigest(),
            },
        )

    def encode(self, texts: Sequence[str], encode_fn: Callable[[list[str]], np.ndarray], dim: int) -> np.ndarray:
        """Embeddings of `texts` in order: each distinct uncached text is encoded once."""
        keys = [text_key(t) for t in texts]
        out = np.empty((len(texts), dim), dtype=np.float32)
        todo: dict[bytes, list[int]] = {}
        first_text: dict[bytes, str] = {}
        for i, key in enumerate(keys):
            vector = self.get(key)
            if vector is not None:
                out[i] = vector
                self.hits += 1
            else:
                todo.setdefault(key, []).append(i)
                first_text.setdefault(key, texts[i])
        if todo:
            new_keys = list(todo)
            self.misses += len(new_keys)
            vectors = encode_fn([first_text[k] for k in new_keys])
            self.put(new_keys, vectors)
            for key, vector in zip(new_keys, vectors, strict=True):
                out[todo[key]] = vector
        return out


def _npy_bytes(array: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()
