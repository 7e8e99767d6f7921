"""The model card's "Early exit" section, written from the early-exit reports."""

from __future__ import annotations

import json
from pathlib import Path

from guardrail.training.card_files import refresh_file_line

__all__ = ["exit_reports", "exit_section", "refresh_exit_section"]


def exit_reports(run_dir: Path | None) -> list[dict]:
    """The early-exit reports in ``run_dir`` (early_exit.py), innermost exit first."""
    from guardrail.training.exit_graph import EXIT_ORDER, report_name

    if run_dir is None:
        return []
    paths = [run_dir / report_name(layer) for layer in EXIT_ORDER]
    return [json.loads(path.read_text()) for path in paths if path.exists()]


def _exit_paragraph(report: dict) -> str:
    rule, cv = report["rule"], report["train_windows_cross_fitted"]
    embeddings = report.get("layer", 0) < 0
    where = (
        "On the embeddings (the first layer's input: mean-pooled word-piece, position and "
        "type embeddings after their LayerNorm, i.e. a bag of positioned word pieces) a second "
        f"head (384 -> {report['width']} -> GELU -> 21 logits) decides whether any layer is "
        "needed"
        if embeddings
        else "After the first transformer layer a small head (mean-pooled layer output, 384 -> "
        f"{report['width']} -> GELU -> 21 logits) decides whether the second layer is needed"
    )
    rest = (
        "the first layer and the exit after it exactly as before"
        if embeddings
        else "the second layer exactly as before"
    )
    fitted = (
        "the outputs of the graph with the first exit"
        if embeddings
        else "the full model's own outputs"
    )
    gate = report.get("gate")
    gated = (
        ", and only a window whose pooled features lie within the "
        f"{gate['quantile']:.0%} of training windows nearest their mean (squared Mahalanobis "
        f"distance below {gate['limit']:.0f}) may exit at all: this head extrapolates with "
        'confidence to inputs unlike its training windows (a bare "No.", refusals in other '
        "languages)"
        if gate
        else ""
    )
    return (
        f"{where}{gated}: a window whose exit-head refusal score is below "
        f"{rule['compliance_below']}, or whose P(full refusal) is above "
        f"{rule['full_refusal_from']} with a top category above {rule['category_from']}, "
        f"takes the head's logits as the model's outputs; any other window runs {rest} "
        "(bit-identical outputs, checked on "
        f"{report['graph_check']['random_runs']} random padded batches). The head was fitted to "
        f"{fitted} on the training windows, so it is meant to agree with the model, not to "
        "second-guess it. The thresholds are the loosest on a small grid whose exits, "
        "cross-fitted (5 folds) on the training windows, kept verdict and category "
        "disagreements with the model at or below 0.1 %: here "
        f"{cv['verdict_disagreements']} verdict and {cv['category_disagreements']} category "
        f"disagreements in {cv['exits']} exits of {cv['windows']} windows "
        f"({cv['exit_rate']:.0%} exit)."
    )


def _exit_table(report: dict) -> list[str]:
    embeddings = report.get("layer", 0) < 0
    lines = [
        "| split | texts | window runs | exits | verdicts changed | category/kind changed | "
        "binary F1 / macro-F1 without this exit | with it |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in ("val", "dev"):
        r = report[name]
        lines.append(
            f"| {name} | {r['texts']} | {r['window_runs']} | {r['exits']} ({r['exit_rate']:.0%}) "
            f"| {r['verdict_changes']} | {r['category_or_kind_changes']} | "
            f"{r['without_exit']['binary_f1']:.3f} / {r['without_exit']['macro_f1']:.3f} | "
            f"{r['with_exit']['binary_f1']:.3f} / {r['with_exit']['macro_f1']:.3f} |"
        )
    runtime = report.get("dev_runtime")
    if runtime:
        lines += [
            "",
            "Through the written graph with the runtime's `RefusalClassifier`, dev gives binary F1 "
            f"{runtime['binary_f1']:.3f} / macro-F1 {runtime['macro_f1']:.3f}; its verdicts "
            f"differ from the simulation above on {runtime['differs_from_simulation']} texts"
            + (' ("without this exit" is the graph with the first exit).' if embeddings else "."),
        ]
    return lines


def exit_section(reports: list[dict]) -> str:
    """The card's "Early exit" section, from the ``exit_report*.json`` files (early_exit.py)."""
    lines = ["## Early exit", ""]
    for at, report in enumerate(reports):
        if at:
            lines.append("")
        lines += [_exit_paragraph(report), "", *_exit_table(report)]
    lines += [
        "",
        "Code: `guardrail/training/early_exit.py` (fitting, rule choice, simulation) and "
        "`exit_graph.py` (the graph: one `If` per exit, the embeddings exit outermost).",
    ]
    return "\n".join(lines) + "\n"


def refresh_exit_section(out: Path, reports: list[dict]) -> None:
    """Put the early-exit section into an existing card (before "## Training data"), refresh
    the file line and SHA256SUMS."""
    card = out / "MODEL_CARD.md"
    text = card.read_text(encoding="utf-8")
    section = exit_section(reports) + "\n"
    if "## Early exit\n" in text:
        start = text.index("## Early exit\n")
        end = text.index("\n## ", start) + 1
        text = text[:start] + section + text[end:]
    else:
        at = text.index("## Training data\n")
        text = text[:at] + section + text[at:]
    card.write_text(text, encoding="utf-8")
    refresh_file_line(out)
