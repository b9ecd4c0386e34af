"""The `cmteb` command line: argument parsing only; the work happens in the modules it calls."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cmteb import __version__
from cmteb.defaults import (
    CPU_BATCH_TOKENS,
    DEFAULT_BATCH_SIZE,
    DEFAULT_CUTOFF_LAYER,
    DEFAULT_MAX_LENGTH,
    DEFAULT_OUTPUT_DIR,
    DEFAULT_PROTOCOL,
    DEFAULT_RERANK_TOP_K,
    FILL_ROWS,
    NOISE_DRAWS,
    PIPELINE_CHOICES,
)
from cmteb.errors import CmtebError
from cmteb.tasks.registry import TASK_TYPES
from cmteb.workers.options import LOCAL_RAY


def _add_quick_mode_args(p: argparse.ArgumentParser) -> None:
    """--subsample and what goes with it: the subsample's corpus and batch-invariant encoding."""
    p.add_argument(
        "--subsample",
        type=int,
        metavar="N",
        help="quick mode: a deterministic subsample of N queries/pairs/items per task",
    )
    invariant = p.add_mutually_exclusive_group()
    invariant.add_argument(
        "--batch-invariant",
        dest="batch_invariant",
        action="store_true",
        default=None,
        help="encode each text in a forward pass of its own: bit-identical embeddings whatever the cache state, "
        "batch size or task order (default: on with --subsample)",
    )
    invariant.add_argument(
        "--no-batch-invariant",
        dest="batch_invariant",
        action="store_false",
        help="shared batches even with --subsample",
    )
    p.add_argument(
        "--noise-draws",
        type=int,
        metavar="N",
        help=f"evaluate each task N more times with its embeddings moved by float noise, to measure how far noise "
        f"moves its score (`cmteb compare` reads it; default: {NOISE_DRAWS} with --subsample, else 0)",
    )
    p.add_argument(
        "--subsample-corpus",
        type=int,
        metavar="M",
        help="with --subsample: extra corpus documents kept besides the qrels' (default: 20 x N)",
    )


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
    p.add_argument(
        "--rerank-top-k", type=int, help=f"candidates the reranker re-ranks (default: {DEFAULT_RERANK_TOP_K})"
    )
    p.add_argument(
        "--normalize-scores", action="store_true", help="reranker scores through a sigmoid (ranks unchanged)"
    )
    p.add_argument("--tasks", nargs="+", metavar="TASK", help="task names (default: all registered tasks)")
    p.add_argument("--types", nargs="+", metavar="TYPE", help=f"task types: {', '.join(TASK_TYPES)}")
    p.add_argument("--data-dir", help="folder of local dataset copies, DATA_DIR/<org>/<repo> in the hub layout")
    p.add_argument("--output-dir", help=f"results root (default: {DEFAULT_OUTPUT_DIR})")
    _add_pass_args(p)
    _add_scale_out_args(p)
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "--instruction", help="text put before every Retrieval/Reranking query, as it is (default: the family's own)"
    )
    group.add_argument(
        "--instructions",
        metavar="FILE.json",
        help='per-task instructions: task name -> text, or -> {"query": ..., "document": ...}, through the '
        "family's template (`cmteb instructions` shows what each task gets)",
    )
    group.add_argument("--no-instruction", action="store_true", help="no instruction on any input")
    p.add_argument(
        "--pooling",
        choices=["cls", "mean", "lasttoken"],
        help="default: the model's sentence-transformers files, else its family's (`cmteb families`)",
    )
    p.add_argument(
        "--cutoff-layers",
        type=int,
        metavar="N",
        help=f"the layer whose head scores, for a layerwise reranker (default: {DEFAULT_CUTOFF_LAYER})",
    )
    p.add_argument(
        "--model-name", help="name to store results under (default: the hub id, or local/<folder> for a local model)"
    )
    p.add_argument(
        "--revision",
        help="model revision (hub) or label (local model; default: a hash of its weights, config and tokenizer)",
    )
    p.add_argument("--trust-remote-code", action="store_true", help="allow models that ship their own code")
    p.add_argument(
        "--allow-missing-weights",
        action="store_true",
        help="run a checkpoint that lacks weights of its network (they are random; the run record lists them)",
    )
    _add_quick_mode_args(p)
    p.add_argument(
        "--allow-revision-mismatch",
        action="store_true",
        help="accept --data-dir copies recorded at another revision than the registry pins",
    )
    p.add_argument(
        "--cache-dir",
        help="cmteb's state folder: embedding cache, stored results, fingerprints (default: $CMTEB_CACHE or "
        "~/.cache/cmteb)",
    )
    p.add_argument(
        "--no-cache",
        dest="use_cache",
        action="store_false",
        help="keep nothing between runs: no embeddings, stored results or fingerprints written or read",
    )
    p.add_argument("--protocol", help=f"protocol profile (default: {DEFAULT_PROTOCOL}; see `cmteb tasks --protocol`)")
    p.add_argument("--overwrite", action="store_true", help="rerun tasks whose results exist")
    p.add_argument("--no-progress", dest="show_progress", action="store_false", help="no progress bars")


def _add_pass_args(p: argparse.ArgumentParser) -> None:
    """How texts go through the model: batch size, token budget, length, precision, device."""
    p.add_argument(
        "--batch-size",
        type=int,
        help=f"texts per forward pass at --max-length tokens; shorter texts fill the pass's --batch-tokens, "
        f"up to {FILL_ROWS}x as many (default: {DEFAULT_BATCH_SIZE})",
    )
    p.add_argument(
        "--batch-tokens",
        type=int,
        metavar="N",
        help=f"padded tokens per forward pass, 0: every pass --batch-size texts (default: {CPU_BATCH_TOKENS} on a "
        "CPU, --batch-size x --max-length on a GPU)",
    )
    p.add_argument(
        "--max-length",
        type=int,
        help=f"max tokens per text (default: the model's sentence-transformers max_seq_length, else its family's: "
        f"{DEFAULT_MAX_LENGTH} for BERTs, 8192 for bge-m3 and decoders; capped at what the model allows)",
    )
    p.add_argument(
        "--precision",
        choices=["fp32", "fp16", "bf16"],
        help="default: fp32; on a GPU, bf16 for the families that run in it (Gemma)",
    )
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda when present, else cpu)")


def _add_scale_out_args(p: argparse.ArgumentParser) -> None:
    """Where the model work runs: worker processes per device, or Ray actors."""
    p.add_argument(
        "--devices",
        metavar="LIST",
        help="one worker process per listed device, e.g. cuda:0,cuda:1 (cpu may repeat); default: every visible GPU "
        "when there are several",
    )
    p.add_argument(
        "--ray",
        nargs="?",
        const=LOCAL_RAY,
        metavar="ADDRESS",
        help="encode on Ray workers, one per GPU of the cluster (auto: the cluster `ray start` made; no address: a "
        "local Ray); needs pip install 'cmteb[ray]'",
    )
    p.add_argument(
        "--workers", type=int, metavar="N", help="number of Ray workers (default: one per GPU, else one per node)"
    )
    p.add_argument(
        "--cpu-streams",
        type=int,
        metavar="N",
        help="forward passes at once on a CPU, one core each, sharing the weights (default: one per core; 1: one "
        "pass at a time on every core)",
    )
    p.add_argument(
        "--pipeline",
        choices=PIPELINE_CHOICES,
        help="encode the next task's texts while this one is evaluated (default auto: on with a GPU or workers)",
    )


def _add_leaderboard_parser(sub: argparse._SubParsersAction) -> None:
    lb = sub.add_parser("leaderboard", help="render leaderboard tables from result folders")
    lb.add_argument(
        "--results",
        nargs="+",
        default=["results"],
        metavar="DIR",
        help="result folders (cmteb's or mteb's layout; default: results)",
    )
    lb.add_argument(
        "--format",
        choices=["md", "csv", "html", "png", "all"],
        nargs="+",
        default=["md"],
        help="output formats (default: md)",
    )
    lb.add_argument("--out", default="leaderboard", help="output folder (default: leaderboard)")
    lb.add_argument("--no-reference", action="store_true", help="leave out the published reference rows")
    lb.add_argument(
        "--allow-unverified",
        action="store_true",
        help="show cmteb results whose run record is missing or damaged, marked unverified (default: refuse them)",
    )
    lb.add_argument(
        "--delta",
        nargs=2,
        metavar=("CANDIDATE", "BASELINE"),
        help="add a delta view; a published row is named published:MODEL",
    )


def _add_export_parser(sub: argparse._SubParsersAction) -> None:
    ex = sub.add_parser(
        "export", help="write a run's results as the public MTEB results repository takes them (mteb's own files)"
    )
    ex.add_argument("results", help="the result folder of one run (or an output folder holding one)")
    ex.add_argument("--out", required=True, help="where results/<org>__<name>/<commit>/ goes (a results repo clone)")
    ex.add_argument("--model", metavar="ORG/NAME", help="the hub id to file a local model's results under")
    ex.add_argument("--revision", metavar="SHA", help="the 40-hex hub commit of the weights evaluated")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `cmteb`."""
    parser = argparse.ArgumentParser(prog="cmteb", description="Evaluate Chinese text-embedding models on C-MTEB.")
    parser.add_argument("--version", action="version", version=f"cmteb {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and library logs")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_run_parser(sub)
    _add_leaderboard_parser(sub)
    _add_export_parser(sub)
    mc = sub.add_parser("model-card", help="write the model-index metadata of a Hugging Face model card")
    mc.add_argument("--results", nargs="+", default=["results"], metavar="DIR", help="result folders")
    mc.add_argument(
        "--model", required=True, help="the model: its name in the results (org/name), or the --model given to run"
    )
    mc.add_argument("--revision", help="which revision, when the results hold several")
    mc.add_argument("--protocol", help="which protocol's results, when the results hold several")
    mc.add_argument("--out", default="README.md", help="model card to write or update (default: README.md)")
    mc.add_argument(
        "--allow-unverified",
        action="store_true",
        help="write results whose run record is missing or damaged (default: refuse them)",
    )
    mc.add_argument(
        "--allow-samples",
        action="store_true",
        help="allow results measured on the bundled sample data (for trying the command only)",
    )
    cp = sub.add_parser("compare", help="compare a candidate's results with a baseline's; exit 1 on a real drop")
    cp.add_argument("baseline", help="baseline result folder (or a results root with --model)")
    cp.add_argument("candidate", help="candidate result folder (or a results root with --model)")
    cp.add_argument("--model", help="model name to pick inside results roots")
    cp.add_argument("--tolerance", type=float, default=0.5, help="drop in points tolerated (default: 0.5)")
    cp.add_argument("--alpha", type=float, default=0.05, help="significance level of the paired test (default: 0.05)")
    cp.add_argument("--tasks", nargs="+", metavar="TASK", help="only these tasks")
    cp.add_argument("--format", choices=["md", "json"], default="md")
    cp.add_argument("--fail-on-missing", action="store_true", help="exit 1 when a task is missing on either side")
    cp.add_argument(
        "--allow-unverified",
        action="store_true",
        help="compare cmteb results whose run record is missing or damaged (default: refuse them)",
    )
    dl = sub.add_parser("download", help="copy the tasks' dataset repos at their pinned revisions (needs network)")
    dl.add_argument("--data-dir", required=True, help="mirror folder to fill")
    dl.add_argument("--tasks", nargs="+", metavar="TASK", help="only these tasks (default: all)")
    dl.add_argument("--protocol", help=f"the protocol whose repos and revisions to copy (default: {DEFAULT_PROTOCOL})")
    vf = sub.add_parser("verify", help="check a mirror against its manifest and the registry's revisions")
    vf.add_argument("--data-dir", required=True, help="mirror folder made by `cmteb download`")
    vf.add_argument("--protocol", help=f"the protocol whose revisions to check against (default: {DEFAULT_PROTOCOL})")
    ins = sub.add_parser(
        "instructions", help="what each task's inputs get in front for a model, and where it comes from"
    )
    ins.add_argument("--model", required=True, help="hub id, local directory, or m3e-small")
    ins.add_argument("--protocol", help=f"whose tasks (default: {DEFAULT_PROTOCOL})")
    ins.add_argument("--instructions", metavar="FILE.json", help="your own per-task instructions, as `run` takes them")
    ins.add_argument("--pooling", choices=["cls", "mean", "lasttoken"], help="for a model no family covers")
    ins.add_argument("--json", action="store_true", help="print JSON")
    sub.add_parser("families", help="list the model families cmteb recognises and how each runs")
    t = sub.add_parser("tasks", help="list the registered tasks")
    t.add_argument("--type", dest="types", nargs="+", metavar="TYPE", help=f"only these types: {', '.join(TASK_TYPES)}")
    t.add_argument("--json", action="store_true", help="print JSON")
    t.add_argument("--protocol", help="show a protocol profile's version of the tasks (mteb-cmn-v1, cmteb-31, ...)")
    return parser


def _cmd_tasks(args: argparse.Namespace) -> int:
    from cmteb.report.summary import tasks_table, wide_console
    from cmteb.tasks.protocols import resolve_protocol

    protocol = resolve_protocol(args.protocol)  # no --protocol: the default protocol, listed the same way
    specs = protocol.select(None, args.types)
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
                "run_as": s.run_as,
                "variant": s.variant,
                "qrels_repo": s.qrels_repo,
                "qrels_revision": s.qrels_revision,
                "loader": s.loader,
                "hf_subsets": list(s.hf_subsets) if s.hf_subsets else None,
                "protocol": protocol.name,
                "averaged": not protocol.is_extra(s.name),
            }
            for s in specs
        ]
        print(json.dumps(rows, indent=2, ensure_ascii=False))
    else:
        wide_console().print(tasks_table(protocol, specs))
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from cmteb.report.summary import print_summary
    from cmteb.runner import run

    # The run options' names are `cmteb.run`'s keywords; an option left out takes the run's default.
    options = {k: v for k, v in vars(args).items() if k not in ("command", "model") and v is not None}
    print_summary(run(args.model, **options))
    return 0


def _cmd_leaderboard(args: argparse.Namespace) -> int:
    from cmteb.report.leaderboard import build_rows, build_tables
    from cmteb.report.render import FORMATS, to_markdown, write_outputs

    rows = build_rows(
        [Path(d) for d in args.results], with_reference=not args.no_reference, allow_unverified=args.allow_unverified
    )
    tables = build_tables(rows, tuple(args.delta) if args.delta else None)
    formats = FORMATS if "all" in args.format else args.format
    written = write_outputs(tables, rows, Path(args.out), formats)
    overall = [t for t in tables if t.key == "cmteb" or t.key.startswith("cmteb-")]  # one per protocol
    print(to_markdown(overall + ([tables[-1]] if args.delta else [])))
    for path in written:
        print(f"wrote {path}")
    return 0


def _cmd_model_card(args: argparse.Namespace) -> int:
    from cmteb.report.modelcard import find_model_results, write_model_card

    results = find_model_results(
        [Path(d) for d in args.results], args.model, args.revision, args.protocol, args.allow_unverified
    )
    what = (
        "the bundled sample data"
        if results.data == "samples"
        else "a subsample"
        if "subsample" in results.variant
        else ""
    )
    if what and not args.allow_samples:
        raise CmtebError(
            f"the results in {results.folder} were measured on {what}, not C-MTEB: a model card must not carry "
            "them (--allow-samples writes one anyway, to try the command)"
        )
    path = write_model_card(results, Path(args.out))
    print(f"wrote model-index for {results.model} ({len(results.tasks)} tasks) to {path}")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from cmteb.results.export import plan_export, write_export

    plan = plan_export(Path(args.results), revision=args.revision, model=args.model)
    target = write_export(plan, Path(args.out))
    print(f"exported {len(plan.files)} tasks of {plan.name} at {plan.revision} to {target}")
    for task, why in plan.left_out.items():
        print(f"  left out {task}: {why}")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from cmteb.report.compare import compare_results, resolve_folder, to_json, to_markdown
    from cmteb.report.noise import judge_noise

    if args.tolerance < 0 or not 0 < args.alpha < 1:
        raise CmtebError("--tolerance must be >= 0 and --alpha between 0 and 1")
    base = resolve_folder(Path(args.baseline), args.model, args.allow_unverified)
    cand = resolve_folder(Path(args.candidate), args.model, args.allow_unverified)
    noise = judge_noise(base, cand)
    rows = compare_results(base, cand, tolerance=args.tolerance, alpha=args.alpha, tasks=args.tasks, noise=noise)
    render = to_json if args.format == "json" else to_markdown
    print(render(rows, base, cand, args.tolerance, args.alpha, noise))
    regressed = any(r.status == "regressed" for r in rows)
    missing = args.fail_on_missing and any(r.status == "missing" for r in rows)
    return 1 if regressed or missing else 0


def _cmd_download(args: argparse.Namespace) -> int:
    from cmteb.tasks.mirror import MANIFEST, download
    from cmteb.tasks.protocols import resolve_protocol

    data_dir = Path(args.data_dir)
    manifest = download(resolve_protocol(args.protocol).select(args.tasks), data_dir)
    print(f"{len(manifest['repos'])} repos in {data_dir}; manifest {data_dir / MANIFEST}")
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    from cmteb.tasks.mirror import verify
    from cmteb.tasks.protocols import resolve_protocol

    pinned = {repo: revision for t in resolve_protocol(args.protocol).all_tasks for repo, revision in t.repos}
    problems = verify(Path(args.data_dir), pinned)
    for problem in problems:
        print(f"FAIL {problem}")
    print(f"{args.data_dir}: {'OK' if not problems else f'{len(problems)} problems'}")
    return 1 if problems else 0


def _cmd_instructions(args: argparse.Namespace) -> int:
    from cmteb.report.families import instructions_table
    from cmteb.report.summary import wide_console
    from cmteb.runner.config import resolve_config

    asked = {k: v for k in ("protocol", "instructions", "pooling") if (v := getattr(args, k)) is not None}
    config = resolve_config(args.model, **asked)
    embedder = config.embedder
    if embedder is None or embedder.recipe is None:
        raise CmtebError(f"{args.model} is a lexical baseline: it takes no instructions")
    protocol, plan, recipe = config.protocol, embedder.instructions, embedder.recipe
    if args.json:
        rows = {spec.name: plan[spec.name].as_record() for spec in protocol.all_tasks if spec.name in plan}
        print(json.dumps({"recipe": recipe.as_record(), "tasks": rows}, indent=2, ensure_ascii=False))
    else:
        wide_console().print(instructions_table(protocol, plan, recipe))
    return 0


def _cmd_families(args: argparse.Namespace) -> int:
    from cmteb.report.families import families_table
    from cmteb.report.summary import wide_console

    wide_console().print(families_table())
    return 0


COMMANDS = {
    "instructions": _cmd_instructions,
    "families": _cmd_families,
    "download": _cmd_download,
    "verify": _cmd_verify,
    "compare": _cmd_compare,
    "export": _cmd_export,
    "run": _cmd_run,
    "tasks": _cmd_tasks,
    "leaderboard": _cmd_leaderboard,
    "model-card": _cmd_model_card,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run a command; user errors print one line and exit with status 2."""
    args = build_parser().parse_args(argv)
    stdout, sys.stdout = sys.stdout, ClosedPipeSafe(sys.stdout)
    try:
        status = COMMANDS[args.command](args)
        sys.stdout.flush()
        return status
    except CmtebError as exc:
        if args.debug:
            raise
        print(f"cmteb: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cmteb: interrupted; finished tasks are saved, rerun the same command to resume", file=sys.stderr)
        return 130
    finally:
        sys.stdout = stdout


class ClosedPipeSafe:
    """Standard output for which a reader that went away (`cmteb compare ... | head`) means silence.

    The command runs on and exits with its own status (compare's verdict included); what it prints
    after the pipe closed goes nowhere, as with Unix tools. Rich would exit 1 instead, and `print`
    would end in a BrokenPipeError traceback.
    """

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._closed = False

    def write(self, text: str) -> int:
        """Write `text`, or drop it once the reader has gone."""
        if not self._closed:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self._close()
        return len(text)

    def flush(self) -> None:
        """Flush, unless the reader has gone."""
        if not self._closed:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._close()

    def _close(self) -> None:
        self._closed = True
        # The interpreter's last flush of the real stdout then goes nowhere too (a test's capture has no fd).
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), self._stream.fileno())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


if __name__ == "__main__":
    sys.exit(main())
