"""What each `cmteb` command does with its parsed arguments: it calls the modules that do the work."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cmteb.errors import CmtebError


def _cmd_tasks(args: argparse.Namespace) -> int:
    from cmteb.report.summary import tasks_table, terminal
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
        terminal().print(tasks_table(protocol, specs))
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
    from cmteb.report.compare import Comparison, compare_results, resolve_folder, to_json, to_markdown
    from cmteb.report.noise import judge_noise

    if args.tolerance < 0 or not 0 < args.alpha < 1:
        raise CmtebError("--tolerance must be >= 0 and --alpha between 0 and 1")
    base = resolve_folder(Path(args.baseline), args.model, args.allow_unverified)
    cand = resolve_folder(Path(args.candidate), args.model, args.allow_unverified)
    noise = judge_noise(base, cand)
    rows = compare_results(base, cand, tolerance=args.tolerance, alpha=args.alpha, tasks=args.tasks, noise=noise)
    render = to_json if args.format == "json" else to_markdown
    print(render(Comparison(rows, base, cand, args.tolerance, args.alpha, noise)))
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
    from cmteb.report.summary import terminal
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
        terminal().print(instructions_table(protocol, plan, recipe))
    return 0


def _cmd_families(args: argparse.Namespace) -> int:
    from cmteb.report.families import families_table
    from cmteb.report.summary import terminal

    terminal().print(families_table())
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
