"""Write the instruction files that come from installed packages (`python -m tools.build_instructions`).

- `mteb.yaml`: each registered task's prompt as mteb's task metadata gives it (`TaskMetadata.prompt`), else
  its task class's default (`get_abstask_prompt`): what mteb's instruct wrappers (Qwen3-Embedding,
  gte-Qwen2) put into their template.
- `flagembedding.yaml`: FlagEmbedding's per-task C-MTEB instructions (`evaluation/mteb/prompts.py`), keyed by
  the names of the tasks they are meant for: its `CMedQAv1` and `CMedQAv2` keys name no mteb 2 task (mteb 2
  calls them `CMedQAv1-reranking` and `CMedQAv2-reranking`), a mismatch that silently drops the instruction.

`tests/test_instructions.py` checks that the shipped files equal a rebuild with the locked packages.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import yaml

from cmteb.assets import DATA_DIR
from cmteb.tasks.protocols import known_tasks

OUT = DATA_DIR / "instructions"
#: FlagEmbedding's keys that name no mteb 2 task, and the task each was written for.
FLAGEMBEDDING_RENAMES = {"CMedQAv1": "CMedQAv1-reranking", "CMedQAv2": "CMedQAv2-reranking"}


def mteb_prompts() -> dict:
    """Every registered mteb task's prompt, as mteb's instruct wrappers look it up."""
    import mteb
    from mteb.abstasks.abstask import get_abstask_prompt

    tasks = {}
    for name, spec in known_tasks().items():
        if not spec.in_mteb:
            continue
        prompt = mteb.get_task(spec.run_as or name).metadata.prompt or get_abstask_prompt(spec.run_as or name)
        tasks[name] = dict(prompt) if isinstance(prompt, dict) else prompt
    version = metadata.version("mteb")
    return {
        "id": "mteb",
        "description": "mteb's own task prompts: each task's TaskMetadata.prompt, else its task class's default prompt",
        "source": {
            "repo": "embeddings-benchmark/mteb",
            "file": "mteb/tasks/**/zho/*.py (TaskMetadata.prompt); mteb/abstasks/*.py (abstask_prompt)",
            "ref": f"v{version}",
        },
        "tasks": tasks,
    }


def flagembedding_prompts() -> dict:
    """FlagEmbedding's C-MTEB instructions, for the registered tasks, under mteb 2's names."""
    get_task_def_by_task_name_and_type = _flagembedding_prompts_module().get_task_def_by_task_name_and_type
    tasks, renamed = {}, []
    for name, spec in known_tasks().items():
        keys = [key for key, target in FLAGEMBEDDING_RENAMES.items() if target == name] or [name]
        try:
            tasks[name] = get_task_def_by_task_name_and_type(keys[0], spec.type)
        except (KeyError, ValueError):
            continue
        if keys[0] != name:
            renamed.append(f"{keys[0]} -> {name}")
    version = metadata.version("FlagEmbedding")
    return {
        "id": "flagembedding",
        "description": "FlagEmbedding's per-task C-MTEB instructions (its bge-multilingual-gemma2 and bge-en-icl "
        f"evaluations); keys naming no mteb 2 task renamed: {', '.join(renamed)}",
        "source": {
            "repo": "FlagOpen/FlagEmbedding",
            "file": "FlagEmbedding/evaluation/mteb/prompts.py (get_task_def_by_task_name_and_type)",
            "ref": f"v{version}",
        },
        "tasks": tasks,
    }


def _flagembedding_prompts_module():
    """FlagEmbedding's prompts.py, loaded alone: its package's `evaluation` imports faiss, which the prompts need
    not (the file imports nothing but `typing`)."""
    import importlib.util

    root = Path(importlib.util.find_spec("FlagEmbedding").submodule_search_locations[0])
    spec = importlib.util.spec_from_file_location("flagembedding_prompts", root / "evaluation/mteb/prompts.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def render(data: dict) -> str:
    """A source as its YAML file holds it."""
    header = "# Written by `python -m tools.build_instructions` from the installed package; do not edit.\n"
    return header + yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=1000)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for data in (mteb_prompts(), flagembedding_prompts()):
        path = Path(OUT / f"{data['id']}.yaml")
        path.write_text(render(data), encoding="utf-8")
        print(f"wrote {path} ({len(data['tasks'])} tasks)")


if __name__ == "__main__":
    main()
