"""The `cmteb` command line: argument parsing only; the work happens in the modules it calls."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from cmteb import __version__
from cmteb.errors import CmtebError
from cmteb.registry import TASK_TYPES


def _add_run_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="evaluate a model on C-MTEB tasks and write mteb result files")
    p.add_argument(
        "--model",
        help="embedding model: hub id (BAAI/bge-large-zh-v1.5), local directory, or m3e-small (the bundled model)",
    )
    p.add_argument(
        "--reranker",
        help="cross-encoder reranker (hub id or directory): alone, it runs the Reranking tasks; "
        "with --model, it re-ranks the model's top k on the Retrieval tasks",
    )
    p.add_argument("--rerank-top-k", type=int, default=100, help="candidates the reranker re-ranks (default: 100)")
    p.add_argument(
        "--normalize-scores", action="store_true", help="reranker scores through a sigmoid (ranks unchanged)"
    )
    p.add_argument("--tasks", nargs="+", metavar="TASK", help="task names (default: all registered tasks)")
    p.add_argument("--types", nargs="+", metavar="TYPE", help=f"task types: {', '.join(TASK_TYPES)}")
    p.add_argument("--data-dir", help="folder of local dataset copies, DATA_DIR/<org>/<repo> in the hub layout")
    p.add_argument("--output-dir", default="results", help="results root (default: results)")
    p.add_argument("--batch-size", type=int, default=32, help="texts per forward pass (default: 32)")
    p.add_argument("--max-length", type=int, default=512, help="max tokens per text (default: 512)")
    p.add_argument("--precision", choices=["fp32", "fp16", "bf16"], default="fp32")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda when present, else cpu)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--instruction", help="query instruction for Retrieval/Reranking (default: the model's own)")
    group.add_argument("--no-instruction", action="store_true", help="encode queries without an instruction")
    p.add_argument("--pooling", choices=["cls", "mean"], help="default: the model's pooling file, else cls")
    p.add_argument("--model-name", help="name to store results under (default: hub id or config name)")
    p.add_argument("--revision", help="model revision (hub) or label (local model; default: weights hash)")
    p.add_argument("--trust-remote-code", action="store_true", help="allow models that ship their own code")
    p.add_argument("--overwrite", action="store_true", help="rerun tasks whose results exist")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `cmteb`."""
    parser = argparse.ArgumentParser(prog="cmteb", description="Evaluate Chinese text-embedding models on C-MTEB.")
    parser.add_argument("--version", action="version", version=f"cmteb {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and library logs")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_run_parser(sub)
    t = sub.add_parser("tasks", help="list the registered tasks")
    t.add_argument("--type", dest="types", nargs="+", metavar="TYPE", help=f"only these types: {', '.join(TASK_TYPES)}")
    t.add_argument("--json", action="store_true", help="print JSON")
    return parser


def _cmd_tasks(args: argparse.Namespace) -> int:
    from cmteb.registry import load_registry
    from cmteb.report import tasks_table, wide_console

    specs = load_registry().select(None, args.types)
    if args.json:
        rows = [
            {
                "name": s.name,
                "type": s.type,
                "splits": list(s.splits),
                "metric": s.metric,
                "main_score": s.main_score,
                "repo": s.repo,
                "revision": s.revision,
                "instruction": s.instruction,
                "source": s.source,
            }
            for s in specs
        ]
        print(json.dumps(rows, indent=2, ensure_ascii=False))
    else:
        wide_console().print(tasks_table(specs))
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from cmteb.report import print_summary
    from cmteb.runner import run

    summary = run(
        args.model,
        reranker=args.reranker,
        rerank_top_k=args.rerank_top_k,
        normalize_scores=args.normalize_scores,
        tasks=args.tasks,
        types=args.types,
        data_dir=args.data_dir,
        output_dir=args.output_dir,
        batch_size=args.batch_size,
        max_length=args.max_length,
        precision=args.precision,
        device=args.device,
        instruction=args.instruction,
        no_instruction=args.no_instruction,
        pooling=args.pooling,
        overwrite=args.overwrite,
        model_name=args.model_name,
        revision=args.revision,
        trust_remote_code=args.trust_remote_code,
        show_progress=not args.no_progress,
        debug=args.debug,
    )
    print_summary(summary)
    return 0


COMMANDS = {"run": _cmd_run, "tasks": _cmd_tasks}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run a command; user errors print one line and exit with status 2."""
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except CmtebError as exc:
        if args.debug:
            raise
        print(f"cmteb: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cmteb: interrupted; finished tasks are saved, rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
