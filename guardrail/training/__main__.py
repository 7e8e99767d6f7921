"""``python -m guardrail.training STAGE`` (stats, dev-jsonl, train, score, export, early-exit,
evaluate, tidy, requantize, soup, all).

``all`` = train, export (ONNX fp32 + int8, config.json, tokenizer.json), early-exit (fit the
exit heads, after the first layer and on the embeddings, and build them into the int8 graph,
``early_exit.py``),
evaluate on the dev split (fp32 vs int8, baselines) and write MODEL_CARD.md and SHA256SUMS
into ``--out``. ``tidy`` rewrites an artifact exported before the graph tidy
(``graph_tidy.py``) in place; ``early-exit`` alone adds the exits an existing artifact lacks and
rewrites the card's early-exit section; ``requantize`` gives an existing artifact per-token
activation scales (``exit_strip.py`` takes its exits out, ``token_scales.py`` rewrites the
graph) and then fits its exits again, as ``early-exit`` does. ``soup --soup-of A B ...``
writes the mean of those checkpoints' weights to ``<run-dir>/best.pt`` (``soup.py``), which
the later stages then read.
``score`` prints a checkpoint's fp32 verdict figures on val and dev (torch, windows decoded as
at run time, no early exits), to compare training runs without exporting them.
``train``/``all --train-fold-teachers`` first trains the two fold teachers the student is
distilled from (``fold_teachers.py``), so the shipped recipe is one command.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from guardrail.training.cli_args import build_parser
from guardrail.training.dataset import HUMAN_SOURCES  # torch-free, like the parser
from guardrail.training.paths import data_dir

if TYPE_CHECKING:  # train.py imports torch; the parser must answer without it
    from guardrail.training.train import TrainConfig
    from guardrail.training.windowing import WindowSpec

__all__ = ["main"]


def smoothing_windows(train: list, spec, count: int = 512, seed: int = 7) -> list[list[int]]:
    """A fixed sample of training windows (token ids) to calibrate smoothing on."""
    import random

    from guardrail.training.model import encoder_path
    from guardrail.training.train import training_windows
    from guardrail.training.windowing import load_tokenizer

    tok = load_tokenizer(str(encoder_path() / "tokenizer.json"))
    windows = [list(ids) for ids, _ in training_windows(tok, train, spec)]
    return random.Random(seed).sample(windows, min(count, len(windows)))


def _write_data_config(
    args: argparse.Namespace, counts: Mapping[str, Mapping[str, int]], run_dir: Path
) -> None:
    """Record the training mix beside train_config.json, so a run says what it learnt from."""
    mix = {
        "human_repeat": args.human_repeat,
        "human_fraction": args.human_fraction,
        "human_source": args.human_source or "both",
        "human_fold": args.human_fold,
        "auto_cap": args.auto_cap,
        "synth_per_category": args.synth_per_category,
        "counts": counts,
    }
    (run_dir / "data_config.json").write_text(json.dumps(mix, indent=2, sort_keys=True))


def _use_bf16(choice: str) -> bool:
    """Whether training runs under bf16 autocast (``--autocast``)."""
    if choice != "auto":
        return choice == "bf16"
    from guardrail.model._int8_weights import cpu_flags, read_cpuinfo

    flags = cpu_flags(read_cpuinfo()) or frozenset()
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.human_fold is not None and args.human_fraction < 1.0:
        parser.error("--human-fold keeps a fixed half of the prompts; drop --human-fraction")
    if args.stage == "tidy":
        return _tidy(Path(args.out))
    run_dir = Path(args.run_dir)
    if args.stage == "soup":
        return _soup(args.soup_of or [], run_dir)
    ckpt = Path(args.checkpoint) if args.checkpoint else run_dir / "best.pt"
    # files are checked before the data are assembled, which takes a while
    scored = [Path(c) for c in args.ensemble] if args.ensemble else [ckpt]
    if args.stage == "score":
        for path in scored:
            if not path.is_file():
                raise SystemExit(f"checkpoint not found: {path}")
    if args.teacher and args.fold_teachers:
        parser.error("--teacher and --fold-teachers cannot be combined")
    if args.train_fold_teachers:
        if args.stage not in ("train", "all"):
            parser.error("--train-fold-teachers applies to the train and all stages")
        if args.teacher or args.fold_teachers:
            parser.error(
                "--train-fold-teachers trains its own teachers; drop --teacher/--fold-teachers"
            )
        if args.human_fold is not None or args.human_fraction < 1.0:
            parser.error(
                "--train-fold-teachers splits all human prompts; drop --human-fold/--human-fraction"
            )
    if args.stage in ("train", "all"):
        for teacher in [args.teacher] if args.teacher else args.fold_teachers or []:
            if not Path(teacher).is_file():
                raise SystemExit(f"teacher checkpoint not found: {teacher}")
    from guardrail.training.dataset import build
    from guardrail.training.split import write_dev_ids, write_jsonl
    from guardrail.training.windowing import WindowSpec

    spec = WindowSpec()
    if args.window_tokens:
        whole, part = args.window_tokens
        spec = WindowSpec(max_window_tokens=whole, head_tokens=part, tail_tokens=part)
    if args.tail_paragraph_tokens is not None:
        try:
            spec = replace(spec, tail_paragraph_tokens=args.tail_paragraph_tokens)
        except ValueError as exc:
            parser.error(str(exc))
    if args.stage == "windowing":  # rewrites one file: no data needed
        _windowing(Path(args.out), spec)
        return 0

    root = data_dir(args.data_dir)
    if not root.is_dir():
        raise SystemExit(f"data directory not found: {root} (set --data-dir or GUARDRAIL_DATA_DIR)")

    def build_data(human_fold: int | None):
        return build(
            root,
            human_repeat=args.human_repeat,
            auto_cap=args.auto_cap,
            synth_per_category=args.synth_per_category,
            human_fraction=args.human_fraction,
            human_sources=(args.human_source,) if args.human_source else HUMAN_SOURCES,
            human_fold=human_fold,
        )

    data = build_data(args.human_fold)
    out = Path(args.out)

    if args.stage == "stats":
        print(f"train rows {len(data.train)}  val {len(data.val)}  dev {len(data.dev)}")
        for name, counter in data.counts.items():
            print(f"{name}: {json.dumps(dict(sorted(counter.items())))}")
        return 0
    if args.stage == "dev-jsonl":
        path = Path(args.jsonl or run_dir / "dev.jsonl")
        path.parent.mkdir(parents=True, exist_ok=True)
        print(f"wrote {write_jsonl(data.dev, path)} rows to {path}")
        return 0
    if args.stage in ("train", "all"):
        from guardrail.training.train import TrainConfig, train

        write_dev_ids(data.dev_ids)
        cfg = TrainConfig(
            layers=args.layers,
            pooling=args.pooling,
            seed=args.seed,
            epochs=args.epochs,
            lr_encoder=args.lr,
            partial_weight=args.partial_weight,
            soft_labels=args.soft_labels,
            teacher=args.teacher,
            fold_teachers=tuple(args.fold_teachers) if args.fold_teachers else None,
            distill_weight=args.distill_weight,
            distill_temperature=args.distill_temperature,
            bf16=_use_bf16(args.autocast),
        )
        if args.train_fold_teachers:
            from guardrail.training.fold_teachers import ensure_fold_teachers

            def train_teacher(fold: int, directory: Path) -> Path:
                return _train_teacher(args, cfg, build_data(fold), fold, spec, directory)

            cfg = replace(cfg, fold_teachers=ensure_fold_teachers(run_dir, train_teacher))
        print(f"bf16 autocast: {cfg.bf16}", flush=True)
        run_dir.mkdir(parents=True, exist_ok=True)
        _write_data_config(args, data.counts, run_dir)
        ckpt = train(data, spec, cfg, run_dir)
    if args.stage == "score":
        return _score(scored, data, spec)
    if args.stage in ("export", "all"):
        from guardrail.training.export import export_artifact

        export_artifact(
            ckpt,
            spec,
            out,
            run_dir,
            val=data.val if args.calibrate else None,
            smooth_alpha=args.smooth_alpha,
            smooth_windows=smoothing_windows(data.train, spec)
            if args.smooth_alpha is not None
            else None,
            token_scales=args.activation_scales == "token",
        )
    if args.stage == "requantize":
        _requantize(out)
    if args.stage in ("early-exit", "all", "requantize"):
        import onnx

        from guardrail.model._files import MODEL_FILE
        from guardrail.training.card_exit import exit_reports, refresh_exit_section
        from guardrail.training.early_exit import NoExitRuleError, add_early_exit
        from guardrail.training.exit_graph import EXIT_ORDER, exit_layers

        present = exit_layers(onnx.load(str(out / MODEL_FILE)))
        for layer in (layer for layer in EXIT_ORDER if layer not in present):  # innermost first
            try:
                report = add_early_exit(out, run_dir, data.train, data.val, data.dev, spec, layer)
            except NoExitRuleError as exc:
                # the model is complete without it; it only runs every layer for every window
                print(exc, file=sys.stderr)
                continue
            print(json.dumps({k: report[k] for k in ("val", "dev", "dev_runtime")}, indent=1))
        if args.stage in ("early-exit", "requantize"):
            if (out / "MODEL_CARD.md").is_file():
                refresh_exit_section(out, exit_reports(run_dir))
            else:
                # a fresh export has no card yet; `evaluate` writes one with this section
                print(f"{out}: no MODEL_CARD.md to update; `evaluate` writes it", file=sys.stderr)
    if args.stage in ("evaluate", "all"):
        from guardrail.training.card import write_card
        from guardrail.training.evaluate import evaluate_artifact

        report = evaluate_artifact(out, run_dir, data.dev, spec)
        write_card(out, report, data.counts, run_dir)
    return 0


def _train_teacher(
    args: argparse.Namespace, student: TrainConfig, data, fold: int, spec, directory: Path
) -> Path:
    """Train the six-layer teacher of one fold: the student's options, the teacher recipe's
    depth, epochs and seed (``fold_teachers.py``), no teacher of its own."""
    from guardrail.training.fold_teachers import TEACHER_EPOCHS, TEACHER_LAYERS, TEACHER_SEED
    from guardrail.training.train import train

    cfg = replace(
        student,
        layers=TEACHER_LAYERS,
        epochs=TEACHER_EPOCHS,
        seed=TEACHER_SEED,
        teacher=None,
        fold_teachers=None,
    )
    _write_data_config(
        argparse.Namespace(**{**vars(args), "human_fold": fold}), data.counts, directory
    )
    return train(data, spec, cfg, directory)


def _score(ckpts: list[Path], data, spec) -> int:
    """Print the checkpoint's (or the ensemble's) fp32 binary and macro F1 on val and dev."""
    from guardrail.evaluation.metrics import score
    from guardrail.training.ensemble import predict_ensemble
    from guardrail.training.export import load_checkpoint
    from guardrail.training.model import encoder_path
    from guardrail.training.train import encode_texts, predict
    from guardrail.training.windowing import load_tokenizer

    models = [load_checkpoint(c) for c in ckpts]
    tok = load_tokenizer(str(encoder_path() / "tokenizer.json"))
    ckpt = ckpts[0] if len(ckpts) == 1 else f"ensemble of {len(ckpts)}"
    for name, rows in (("val", data.val), ("dev", data.dev)):
        pairs = encode_texts(tok, rows, spec)
        # one model keeps the logit path training selects on, bit for bit
        single = len(models) == 1
        predicted = (
            predict(models[0], pairs, spec) if single else predict_ensemble(models, pairs, spec)
        )
        got = score([e.verdict for e in rows], predicted)
        print(f"{ckpt} {name}: binary F1 {got.binary.f1:.4f} macro-F1 {got.macro_f1:.4f}")
        if name == "dev":
            # each annotation team's dev rows alone: the teams label some answers differently
            for source in sorted({e.source for e in rows}):
                mine = [i for i, e in enumerate(rows) if e.source == source]
                part = score([rows[i].verdict for i in mine], [predicted[i] for i in mine])
                print(
                    f"{ckpt} dev[{source}]: binary F1 {part.binary.f1:.4f} "
                    f"macro-F1 {part.macro_f1:.4f}"
                )
    return 0


def _soup(paths: list[str], run_dir: Path) -> int:
    """Average the checkpoints into the run directory's best.pt."""
    from guardrail.training.soup import SoupError, soup_checkpoints

    try:
        out = soup_checkpoints([Path(p) for p in paths], run_dir / "best.pt")
    except SoupError as exc:
        raise SystemExit(f"soup: {exc}") from exc
    print(f"wrote {out}: the mean of {len(paths)} checkpoints")
    return 0


def _tidy(out: Path) -> int:
    """Tidy the artifact's int8 graph in place (identical outputs), then its card and sums."""
    from guardrail.model._files import MODEL_FILE
    from guardrail.training.card_files import refresh_file_line
    from guardrail.training.graph_tidy import GraphTidyError, tidy_file

    try:
        tidy_file(out / MODEL_FILE)
    except (GraphTidyError, OSError) as exc:
        raise SystemExit(f"{out / MODEL_FILE}: {exc}") from exc
    refresh_file_line(out)
    print(f"tidied {out / MODEL_FILE}: outputs identical; MODEL_CARD.md and SHA256SUMS updated")
    return 0


def _requantize(out: Path) -> None:
    """Give a shipped artifact's int8 graph per-token activation scales: strip its early
    exits, rewrite the graph (``token_scales.py``) and its config.json; the early-exit stage
    that follows fits the exits again, to the rewritten graph."""
    import onnx

    from guardrail.model._files import MODEL_FILE
    from guardrail.training.card_files import write_sha256sums
    from guardrail.training.exit_graph import EXIT_ORDER, ExitGraphError, config_key, has_exit
    from guardrail.training.exit_strip import strip_exits
    from guardrail.training.paths import MODEL_VERSION
    from guardrail.training.token_scales import (
        QUANTIZATION_NOTE,
        TokenScalesError,
        per_token_scales,
    )

    path, config = out / MODEL_FILE, out / "config.json"
    if not path.is_file() or not config.is_file():
        raise SystemExit(f"{out}: no {MODEL_FILE} and config.json to requantize")
    try:
        model = onnx.load(str(path))
        if has_exit(model):
            model = strip_exits(model)
        count = per_token_scales(model)
    except (ExitGraphError, TokenScalesError) as exc:
        raise SystemExit(f"{path}: {exc}") from exc
    tmp = path.with_name(path.name + ".requantized")
    onnx.save(model, str(tmp))
    tmp.replace(path)
    cfg = json.loads(config.read_text(encoding="utf-8"))
    for layer in EXIT_ORDER:
        cfg.pop(config_key(layer), None)
    cfg["model_version"] = MODEL_VERSION
    cfg["quantization"] = f"{cfg['quantization']}, {QUANTIZATION_NOTE}"
    config.write_text(json.dumps(cfg, indent=2) + "\n", encoding="utf-8")
    write_sha256sums(out)
    print(f"requantized {path}: {count} products with per-token activation scales, no exits")


def _windowing(out: Path, spec: WindowSpec) -> None:
    """Write ``spec``'s windowing into an artifact's config.json (the weights and graph stay
    as they are), with this version's ``model_version``, and its checksums."""
    from guardrail.model.config import ModelConfig
    from guardrail.training.card_files import write_sha256sums
    from guardrail.training.paths import MODEL_VERSION

    config = out / "config.json"
    if not config.is_file():
        raise SystemExit(f"{out}: no config.json to rewrite")
    cfg = json.loads(config.read_text(encoding="utf-8"))
    window = spec.as_config()
    for key in ("max_window_tokens", "head_tokens", "tail_tokens", "tail_refusal_threshold"):
        cfg[key] = window[key]
    cfg["windowing"] = window
    cfg["model_version"] = MODEL_VERSION
    try:
        ModelConfig.from_mapping(cfg)
    except ValueError as exc:
        raise SystemExit(f"{config}: {exc}") from exc
    config.write_text(json.dumps(cfg, indent=2) + "\n", encoding="utf-8")
    write_sha256sums(out)
    sizes = {k: v for k, v in window.items() if k != "description"}
    print(f"{config}: windowing {json.dumps(sizes)}")


if __name__ == "__main__":
    raise SystemExit(main())
