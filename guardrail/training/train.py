"""Fine-tune the student (first ``layers`` of MiniLM-L6) on the assembled windows.

Checkpoints go to ``<run_dir>/epoch<N>.pt``; the one with the best validation macro-F1
(validation = 10% of the non-dev XSTest prompt ids) is copied to ``best.pt``. The dev split is
never looked at here.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from guardrail.evaluation.metrics import score
from guardrail.taxonomy import CATEGORIES, VERDICTS
from guardrail.training.dataset import Datasets, LabelledWindow, to_targets
from guardrail.training.heuristics import looks_like_refusal
from guardrail.training.model import RefusalNet, checkpoint, encoder_path
from guardrail.training.windowing import WindowSpec, decode, load_tokenizer, windows

__all__ = ["TrainConfig", "encode_texts", "padded_batches", "predict", "train", "training_windows"]


@dataclass(frozen=True)
class TrainConfig:
    layers: int = 2
    pooling: str = "mean"
    epochs: int = 5
    batch_size: int = 32
    lr_encoder: float = 6e-5
    lr_heads: float = 1e-3
    weight_decay: float = 0.01
    warmup_fraction: float = 0.06
    partial_weight: float = 2.0
    seed: int = 7
    threads: int = 2
    bf16: bool = True
    # Train the verdict head on the annotators' votes (XSTest rows) instead of the final
    # label alone: where the two annotators disagreed the target is a mix.
    soft_labels: bool = False
    # Distillation (distill.py): a deeper checkpoint's verdict logits mixed into the verdict
    # loss with this weight (0: hard labels only) at this temperature.
    teacher: str | None = None
    # Fold teachers instead (distill.py): checkpoints trained on folds 0 and 1 of the human
    # training prompts; each human answer is distilled from the one that never saw its prompt.
    fold_teachers: tuple[str, str] | None = None
    distill_weight: float = 0.5
    distill_temperature: float = 2.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.distill_weight <= 1.0:
            raise ValueError(f"distill_weight must lie in [0, 1], got {self.distill_weight}")
        if self.distill_temperature <= 0.0:
            raise ValueError(f"distill_temperature must be > 0, got {self.distill_temperature}")
        if self.teacher is not None and self.fold_teachers is not None:
            raise ValueError("give either one teacher or two fold teachers, not both")

    @property
    def distilled(self) -> bool:
        return self.teacher is not None or self.fold_teachers is not None


def _readable(tok, ids: list[int]) -> str:
    # decode() spaces out apostrophes ("can ' t"); undo that so the phrase heuristic matches
    return tok.decode(ids).replace(" ' ", "'")


def training_windows(tok, examples, spec: WindowSpec):
    """Every example as the runtime windows it will be read as, each with its own label.

    Whole texts keep their label. Long texts give a head and a tail window:
    - compliance: both compliance;
    - a decline that sits only at the end (synthetic ``evidence="tail"``, or a human partial
      refusal with a refusal phrase in the tail but none in the head): head compliance,
      tail partial_refusal — the runtime turns that pair into partial_refusal;
    - other refusals: head keeps the label; the tail keeps it only when it shows a refusal
      phrase itself (a refusal's closing pleasantries alone must not teach "refusal").
    """
    out = []
    comp = VERDICTS.index("compliance")
    partial = VERDICTS.index("partial_refusal")
    for ex in examples:
        target = to_targets(ex)
        head, tail = windows(tok, ex.text, spec)
        if tail is None:
            out.append((head, target))
            continue
        if ex.verdict == "compliance":
            out += [(head, target), (tail, target)]
            continue
        tail_refuses = looks_like_refusal(_readable(tok, tail), window=10_000)
        head_refuses = looks_like_refusal(_readable(tok, head), window=10_000)
        late = ex.evidence == "tail" or (
            ex.verdict == "partial_refusal" and tail_refuses and not head_refuses
        )
        if late:
            out.append((head, LabelledWindow(ex.text, comp, -100, -100)))
            out.append((tail, LabelledWindow(ex.text, partial, target.kind, target.category)))
            continue
        out.append((head, target))
        if tail_refuses:
            out.append((tail, target))
    return out


def encode_texts(tok, examples, spec: WindowSpec):
    """(head, tail) windows per example, for whole-text prediction with the runtime rule."""
    return [windows(tok, ex.text, spec) for ex in examples]


def padded_batches(items, batch_size: int, rng: random.Random | None):
    # items: (ids, target) pairs; dynamic padding to the longest window of each batch
    order = list(range(len(items)))
    if rng is not None:
        rng.shuffle(order)
    for i in range(0, len(order), batch_size):
        chunk = [items[j] for j in order[i : i + batch_size]]
        width = max(len(ids) for ids, _ in chunk)
        ids_t = torch.zeros((len(chunk), width), dtype=torch.long)
        mask_t = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, (ids, _) in enumerate(chunk):
            ids_t[row, : len(ids)] = torch.tensor(ids)
            mask_t[row, : len(ids)] = 1
        targets = [t for _, t in chunk]
        yield ids_t, mask_t, targets


@torch.no_grad()
def predict(model: RefusalNet, pairs, spec: WindowSpec, batch_size: int = 64) -> list[str]:
    """Whole-text verdicts of ``model`` for (head, tail) window pairs, decoded as at run time."""
    model.eval()
    flat, rows = [], []
    for head, tail in pairs:
        h = len(flat)
        flat.append((head, None))
        t = None
        if tail is not None:
            t = len(flat)
            flat.append((tail, None))
        rows.append((h, t))
    vs, cs = [], []
    for ids, mask, _ in padded_batches(flat, batch_size, None):
        v, _, c = model(ids, mask)
        vs.append(v.float().numpy())
        cs.append(c.float().numpy())
    v_all, c_all = np.concatenate(vs), np.concatenate(cs)
    return [decode(v_all, c_all, h, t, spec)[0] for h, t in rows]


def _one_hot(index: int) -> list[float]:
    row = [0.0] * len(VERDICTS)
    row[index] = 1.0
    return row


def _category_weights(items) -> torch.Tensor:
    counts = Counter(t.category for _, t in items if t.category >= 0)
    w = torch.ones(len(CATEGORIES))
    for c, n in counts.items():
        w[c] = 1.0 / math.sqrt(n)
    return w / w[list(counts)].mean()


def train(data: Datasets, spec: WindowSpec, cfg: TrainConfig, run_dir: Path) -> Path:
    """Train and return the path of the best checkpoint."""
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    rng = random.Random(cfg.seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    tok = load_tokenizer(str(encoder_path() / "tokenizer.json"))

    items = training_windows(tok, data.train, spec)
    if cfg.teacher is not None:
        from guardrail.training.distill import distill_loss, with_teacher_logits

        items = with_teacher_logits(Path(cfg.teacher), items, bf16=cfg.bf16)
        print(f"teacher logits: {cfg.teacher} on {len(items)} windows", flush=True)
    elif cfg.fold_teachers is not None:
        from guardrail.training.distill import distill_loss, with_fold_teacher_logits

        pair = (Path(cfg.fold_teachers[0]), Path(cfg.fold_teachers[1]))
        items = with_fold_teacher_logits(pair, items, data.human_folds, bf16=cfg.bf16)
        print(f"fold teacher logits: {cfg.fold_teachers} on {len(items)} windows", flush=True)
    val_pairs = encode_texts(tok, data.val, spec)
    val_gold = [e.verdict for e in data.val]
    print(f"train windows: {len(items)}  val texts: {len(val_pairs)}", flush=True)
    print(f"train window labels: {Counter(VERDICTS[t.verdict] for _, t in items)}", flush=True)

    model = RefusalNet(cfg.layers, pooling=cfg.pooling)
    heads = [p for n, p in model.named_parameters() if not n.startswith("encoder.")]
    enc = [p for n, p in model.named_parameters() if n.startswith("encoder.")]
    opt = torch.optim.AdamW(
        [{"params": enc, "lr": cfg.lr_encoder}, {"params": heads, "lr": cfg.lr_heads}],
        weight_decay=cfg.weight_decay,
    )
    steps = cfg.epochs * math.ceil(len(items) / cfg.batch_size)
    warm = max(1, int(steps * cfg.warmup_fraction))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * max(0.0, (steps - s) / max(1, steps - warm))
    )
    vw = torch.tensor([1.0, cfg.partial_weight, 1.0])
    ce_v = nn.CrossEntropyLoss(weight=vw)
    ce_k = nn.CrossEntropyLoss(ignore_index=-100)
    ce_c = nn.CrossEntropyLoss(weight=_category_weights(items), ignore_index=-100)

    (run_dir / "train_config.json").write_text(
        json.dumps({**asdict(cfg), "window": spec.as_config()}, indent=2)
    )
    best, best_path, step = -1.0, run_dir / "best.pt", 0
    t0 = time.time()
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        total = 0.0
        for n_batch, (ids, mask, targets) in enumerate(
            padded_batches(items, cfg.batch_size, rng), 1
        ):
            yv = torch.tensor([t.verdict for t in targets])
            if cfg.soft_labels:
                yv = torch.tensor(
                    [list(t.votes) if t.votes is not None else _one_hot(t.verdict) for t in targets]
                )
            yk = torch.tensor([t.kind for t in targets])
            yc = torch.tensor([t.category for t in targets])
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
                lv, lk, lc = model(ids, mask)
            lv, lk, lc = lv.float(), lk.float(), lc.float()
            loss = ce_v(lv, yv)
            if cfg.distilled:
                w = cfg.distill_weight
                loss = (1 - w) * loss + w * distill_loss(lv, targets, cfg.distill_temperature)
            if (yk >= 0).any():
                loss = loss + 0.3 * ce_k(lk, yk)
            if (yc >= 0).any():
                loss = loss + 0.5 * ce_c(lc, yc)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            step += 1
            total += loss.item()
            if n_batch % 50 == 0:
                print(
                    f"epoch {epoch} batch {n_batch} loss {total / n_batch:.4f} "
                    f"elapsed {time.time() - t0:.0f}s",
                    flush=True,
                )
        pred = predict(model, val_pairs, spec)
        val = score(val_gold, pred)
        bf, mf = val.binary.f1, val.macro_f1
        ckpt = run_dir / f"epoch{epoch}.pt"
        torch.save(checkpoint(model.state_dict(), cfg.layers, cfg.pooling), ckpt)
        print(
            f"epoch {epoch} done loss {total / max(1, n_batch):.4f} val binary_f1 {bf:.4f} "
            f"macro_f1 {mf:.4f} elapsed {time.time() - t0:.0f}s",
            flush=True,
        )
        selection = mf + bf
        if selection > best:
            best = selection
            shutil.copyfile(ckpt, best_path)
            print(f"  new best (epoch {epoch})", flush=True)
    return best_path
