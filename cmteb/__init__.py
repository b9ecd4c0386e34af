"""cmteb: evaluate Chinese text-embedding models on C-MTEB."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "run"]


def run(*args: Any, **kwargs: Any) -> Any:
    """Evaluate a model on C-MTEB tasks; see `cmteb.runner.run`."""
    # Imported lazily so `import cmteb` (and `cmteb --help`) stays fast: the runner pulls torch and mteb.
    from cmteb.runner import run as _run

    return _run(*args, **kwargs)
