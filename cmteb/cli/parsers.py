"""The `cmteb` argument parsers: every command's options, with their defaults said in the help."""

from __future__ import annotations

import argparse

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
    p = _command(sub, "run", "evaluate a model on C-MTEB tasks and write mteb result files")
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
    _add_model_args(p)
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


def _add_model_args(p: argparse.ArgumentParser) -> None:
    """How the model runs and what its results are filed under: instructions, pooling, name, revision."""
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
        "local Ray); needs Ray: pip install -e '.[ray]' in cmteb's checkout",
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
    lb = _command(sub, "leaderboard", "render leaderboard tables from result folders")
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
    ex = _command(sub, "export", "write a run's results as the public MTEB results repository takes them")
    ex.add_argument("results", help="the result folder of one run (or an output folder holding one)")
    ex.add_argument("--out", required=True, help="where results/<org>__<name>/<commit>/ goes (a results repo clone)")
    ex.add_argument("--model", metavar="ORG/NAME", help="the hub id to file a local model's results under")
    ex.add_argument("--revision", metavar="SHA", help="the 40-hex hub commit of the weights evaluated")


def _add_model_card_parser(sub: argparse._SubParsersAction) -> None:
    mc = _command(sub, "model-card", "write the model-index metadata of a Hugging Face model card")
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


def _add_compare_parser(sub: argparse._SubParsersAction) -> None:
    cp = _command(sub, "compare", "compare a candidate's results with a baseline's; exit 1 on a real drop")
    cp.add_argument("baseline", help="baseline result folder (or a results root with --model)")
    cp.add_argument("candidate", help="candidate result folder (or a results root with --model)")
    cp.add_argument("--model", help="the model inside results roots: its name, or the --model given to run")
    cp.add_argument("--tolerance", type=float, default=0.5, help="drop in points tolerated (default: 0.5)")
    cp.add_argument("--alpha", type=float, default=0.05, help="significance level of the paired test (default: 0.05)")
    cp.add_argument("--tasks", nargs="+", metavar="TASK", help="only these tasks")
    cp.add_argument("--format", choices=["md", "json"], default="md", help="output format (default: md)")
    cp.add_argument("--fail-on-missing", action="store_true", help="exit 1 when a task is missing on either side")
    cp.add_argument(
        "--allow-unverified",
        action="store_true",
        help="compare cmteb results whose run record is missing or damaged (default: refuse them)",
    )


def _add_data_parsers(sub: argparse._SubParsersAction) -> None:
    dl = _command(sub, "download", "copy the tasks' dataset repos at their pinned revisions (needs network)")
    dl.add_argument("--data-dir", required=True, help="mirror folder to fill")
    dl.add_argument("--tasks", nargs="+", metavar="TASK", help="only these tasks (default: all)")
    dl.add_argument("--protocol", help=f"the protocol whose repos and revisions to copy (default: {DEFAULT_PROTOCOL})")
    vf = _command(sub, "verify", "check a mirror against its manifest and the registry's revisions")
    vf.add_argument("--data-dir", required=True, help="mirror folder made by `cmteb download`")
    vf.add_argument("--protocol", help=f"the protocol whose revisions to check against (default: {DEFAULT_PROTOCOL})")


def _add_listing_parsers(sub: argparse._SubParsersAction) -> None:
    ins = _command(sub, "instructions", "what each task's inputs get in front for a model, and where it comes from")
    ins.add_argument("--model", required=True, help="hub id, local directory, or m3e-small")
    ins.add_argument("--protocol", help=f"whose tasks (default: {DEFAULT_PROTOCOL})")
    ins.add_argument("--instructions", metavar="FILE.json", help="your own per-task instructions, as `run` takes them")
    ins.add_argument("--pooling", choices=["cls", "mean", "lasttoken"], help="for a model no family covers")
    ins.add_argument("--json", action="store_true", help="print JSON")
    _command(sub, "families", "list the model families cmteb recognises and how each runs")
    t = _command(sub, "tasks", "list the registered tasks")
    t.add_argument("--type", dest="types", nargs="+", metavar="TYPE", help=f"only these types: {', '.join(TASK_TYPES)}")
    t.add_argument("--json", action="store_true", help="print JSON")
    t.add_argument("--protocol", help="show a protocol profile's version of the tasks (mteb-cmn-v1, cmteb-31, ...)")


#: Options every command takes, before or after its name (`cmteb --debug run ...`, `cmteb run ... --debug`).
_COMMON = argparse.ArgumentParser(add_help=False)
_COMMON.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks and library logs")


def _command(sub: argparse._SubParsersAction, name: str, help_text: str) -> argparse.ArgumentParser:
    """A subcommand's parser, taking the common options too."""
    return sub.add_parser(name, help=help_text, parents=[_COMMON])


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `cmteb`."""
    parser = argparse.ArgumentParser(prog="cmteb", description="Evaluate Chinese text-embedding models on C-MTEB.")
    parser.add_argument("--version", action="version", version=f"cmteb {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and library logs")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (
        _add_run_parser,
        _add_leaderboard_parser,
        _add_model_card_parser,
        _add_export_parser,
        _add_compare_parser,
        _add_data_parsers,
        _add_listing_parsers,
    ):
        add(sub)
    return parser
