"""Reaching the Hugging Face hub: one quick probe instead of minutes of retries, and one-line errors.

`huggingface_hub` retries every file five times with back-off (about 25 s per file when the network
is down) and logs each retry; `datasets` and `transformers` do the same through it. Before cmteb asks
any of them to download, it asks the hub once, without retries, whether the repo is there; a machine
that cannot reach the hub learns so in a second, in one line that says what to do.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cmteb.errors import CmtebError

PROBE_TIMEOUT_S = 10
#: The message for a repo that is neither local nor reachable, by what was wanted of it.
UNREACHABLE = {
    "model": (
        "model {repo} is not in the local Hugging Face cache and {why}: download it on a connected machine "
        "(`hf download {repo}`), copy the folder here and pass it as --model"
    ),
    "dataset": (
        "{subject} (hub: {repo}) is neither in the datasets cache nor given with --data-dir, and {why}: run "
        "`cmteb download` on a connected machine, copy its folder here and pass it with --data-dir"
    ),
    "download": (
        "cannot download {repo}: {why}: run `cmteb download` on a connected machine, then copy its --data-dir "
        "folder here"
    ),
}


#: How many names a message lists before it says how many more there are.
LISTED = 3


def listed(names: list[str]) -> str:
    """`a, b, c and 30 more`: a message names a few, never a screenful."""
    shown = ", ".join(names[:LISTED])
    return f"{shown} and {len(names) - LISTED} more" if len(names) > LISTED else shown


def missing_data(tasks: list[str], repos: list[str]) -> HubUnreachable:
    """The one-line error for tasks whose data is neither cached nor given, naming a few of them."""
    subject = f"the data of task {tasks[0]}" if len(tasks) == 1 else f"the data of {len(tasks)} tasks ({listed(tasks)})"
    return unreachable("dataset", listed(repos), subject=subject)


def _folded(name: str) -> str:
    return "".join(c for c in name.lower() if c.isalnum())


def _cache_roots() -> tuple[Path, Path]:
    """The datasets cache and the hub cache, as `datasets` and `huggingface_hub` resolve them from the
    environment (read here without importing either: this check runs before the slow imports)."""
    home = Path(os.environ.get("HF_HOME") or Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache") / "huggingface")
    datasets_cache = Path(os.environ.get("HF_DATASETS_CACHE") or home / "datasets").expanduser()
    hub_cache = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE") or home / "hub"
    return datasets_cache, Path(hub_cache).expanduser()


def surely_uncached(repos: list[str]) -> list[str]:
    """The dataset repos of which neither the datasets cache nor the hub cache holds anything: with the hub
    off, their tasks cannot load. Conservative: any folder whose name could be the repo's counts as a copy
    (`datasets` names its folders `org___repo` with the name in snake case, the hub cache `datasets--org--repo`)."""
    datasets_cache, hub_cache = _cache_roots()
    present = set()
    for entry in (*_names(datasets_cache), *_names(hub_cache)):
        present.add(_folded(entry.replace("___", "/").removeprefix("datasets--").replace("--", "/")))
    return [repo for repo in repos if _folded(repo) not in present]


def _names(folder: Path) -> list[str]:
    try:
        return [entry.name for entry in folder.iterdir()]
    except OSError:
        return []


def hub_offline() -> bool:
    """Whether the user switched the hub off (`HF_HUB_OFFLINE`)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def network_cause(exc: BaseException) -> BaseException | None:
    """The network failure behind `exc` (no connection, a timeout, offline mode), or None."""
    seen: BaseException | None = exc
    while seen is not None:
        names = {cls.__name__ for cls in type(seen).__mro__}
        if names & {"ConnectionError", "ConnectError", "TimeoutError", "Timeout", "TransportError", "NetworkError"}:
            return seen
        if names & {"LocalEntryNotFoundError", "OfflineModeIsEnabled"} or "is not cached" in str(seen):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


class HubUnreachable(CmtebError):
    """A repo that is not local, on a machine that cannot (or may not) reach the hub."""


def unreachable(
    kind: str, repo: str, cause: BaseException | None = None, *, subject: str = "the task data"
) -> HubUnreachable:
    """The one-line error for a repo that is neither local nor reachable; `kind` says what was wanted of it
    ("model", "dataset" for a task's data named by `subject`, "download")."""
    why = "HF_HUB_OFFLINE is set" if hub_offline() else "the hub cannot be reached"
    first_line = str(cause).strip().splitlines()[0][:120] if cause is not None and str(cause).strip() else ""
    if first_line and not hub_offline() and "OfflineModeIsEnabled" not in first_line:
        why += f" ({type(cause).__name__}: {first_line})"
    return HubUnreachable(UNREACHABLE[kind].format(repo=repo, why=why, subject=subject))


@contextmanager
def network_errors_as(kind: str, repo: str, *, subject: str = "the task data") -> Iterator[None]:
    """Inside, a failure caused by the network becomes `unreachable(kind, repo)`; anything else passes."""
    try:
        yield
    except CmtebError:
        raise
    except Exception as exc:  # httpx, requests, urllib3 and datasets raise their own types for it
        cause = network_cause(exc)
        if cause is None:
            raise
        raise unreachable(kind, repo, cause, subject=subject) from exc


def probe(repo: str, *, kind: str, revision: str | None = None) -> str | None:
    """Ask the hub once, without retries, for `repo` at `revision`; a one-line CmtebError if it cannot answer.
    Returns the commit (40 hex) that `revision` (a branch, a tag, None: main) names now.

    `kind` is "model", "dataset" or "download" (a dataset repo, for `cmteb download`)."""
    if hub_offline():
        raise unreachable(kind, repo)
    from huggingface_hub import HfApi
    from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

    repo_type = "model" if kind == "model" else "dataset"
    try:
        with network_errors_as(kind, repo):
            info = HfApi().repo_info(repo, revision=revision, repo_type=repo_type, timeout=PROBE_TIMEOUT_S)
    except RevisionNotFoundError as exc:
        raise CmtebError(f"{repo_type} {repo} has no revision {revision!r} on the hub: check the revision") from exc
    except RepositoryNotFoundError as exc:
        raise CmtebError(
            f"{repo_type} {repo} is not on the hub (or is private): check the id, or `hf auth login`"
        ) from exc
    return info.sha


def offline_unless_reachable(repo: str, revision: str | None = None) -> bool:
    """Switch this process's hub libraries to offline mode when the hub cannot be reached (probed once, on
    `repo`), so data already cached loads at once and data that is not fails at once, without retries.
    Returns whether the hub is used offline."""
    if hub_offline():
        return True
    try:
        probe(repo, kind="dataset", revision=revision)
        return False
    except HubUnreachable:
        pass
    except CmtebError:  # the hub answered (a missing repo is reported when its task loads)
        return False
    import datasets
    import huggingface_hub.constants

    datasets.config.HF_HUB_OFFLINE = True
    huggingface_hub.constants.HF_HUB_OFFLINE = True
    return True
