"""The early exit: an If after the first layer that skips the rest only when its head is sure.

Built on tests/fixtures/exported_tiny.int8.onnx (a toy RefusalNet exported as the real one is,
tidied first as export does) with a random exit head; the shipped model's exit is checked
through its config, its graph and the golden outputs (tests/test_model_golden.py).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")

from guardrail._resources import bundled_model_dir  # noqa: E402
from guardrail.model import RefusalClassifier  # noqa: E402
from guardrail.model._files import MODEL_FILE  # noqa: E402
from guardrail.model._session import make_session  # noqa: E402
from guardrail.training.card_exit import refresh_exit_section  # noqa: E402
from guardrail.training.exit_check import check_exit, exit_file  # noqa: E402
from guardrail.training.exit_graph import (  # noqa: E402
    EMBEDDINGS,
    EXIT_FEATURES,
    EXIT_METADATA,
    ExitGraphError,
    add_exit,
    exit_layers,
    feature_model,
    features_name,
    has_exit,
    layer_output,
)
from guardrail.training.exit_head import ExitHead, ExitRule  # noqa: E402
from guardrail.training.graph_tidy import tidy_model  # noqa: E402

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "exported_tiny.int8.onnx"
#: exits when the random head reads a window as compliance: some runs exit, some do not
SPLIT = ExitRule(compliance_below=0.5, full_refusal_from=2.0, category_from=2.0)


@pytest.fixture(scope="module")
def tidied(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("exit") / "tiny.onnx"
    onnx.save(tidy_model(onnx.load(str(FIXTURE))), str(path))
    return path


@pytest.fixture(scope="module")
def head(tidied: Path, tmp_path_factory: pytest.TempPathFactory) -> ExitHead:
    """A random head on the toy model's first-layer features; about half its reads are sure."""
    return _random_head(onnx.load(str(tidied)), 0, tmp_path_factory.mktemp("features"))[0]


@pytest.fixture(scope="module")
def exited(tidied: Path, head: ExitHead, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The toy graph with its first-layer exit, ready for an exit on the embeddings."""
    path = tmp_path_factory.mktemp("exited") / "exited.onnx"
    onnx.save(add_exit(onnx.load(str(tidied)), head, SPLIT), str(path))
    return path


def _random_head(model: object, layer: int, tmp: Path) -> tuple[ExitHead, np.ndarray]:
    """A random head centred on the toy model's features at ``layer``, and those features.

    The toy's pooled features hardly vary between random windows, so the first layer is
    centred on their mean and scaled up, and the compliance logit is shifted to the median.
    """
    path = tmp / f"features{layer}.onnx"
    onnx.save(feature_model(model, layer), str(path))  # type: ignore[arg-type]
    features = make_session(path, 1).session
    rng = np.random.default_rng(3)
    sample = np.concatenate(
        [
            features.run([features_name(layer)], _feeds([list(rng.integers(1, 8000, n))]))[0]
            for n in rng.integers(2, 90, 40)
        ]
    )
    w1 = (rng.normal(0, 1, (sample.shape[1], 8)) * 20).astype(np.float32)
    b1 = (-sample.mean(0) @ w1).astype(np.float32)
    w2 = rng.normal(0, 1, (8, 21)).astype(np.float32)
    draft = ExitHead(w1, b1, w2, np.zeros(21, np.float32))
    z = draft.logits(sample)
    gap = np.logaddexp(z[:, 1], z[:, 2]) - z[:, 0]
    b2 = np.zeros(21, np.float32)
    b2[0] = float(np.median(gap))
    return ExitHead(w1, b1, w2, b2), sample


def _feeds(ids: list[list[int]]) -> dict[str, np.ndarray]:
    array = np.array(ids, dtype=np.int64)
    return {"input_ids": array, "attention_mask": (array != 0).astype(np.int64)}


def test_both_paths_agree_with_the_head_and_the_original(tidied: Path, head: ExitHead) -> None:
    """check_exit: never-exit is bit-identical, always-exit gives the head, the rule splits."""
    runs, exits = check_exit(tidied, head, SPLIT, trials=60)
    assert runs == 60 and 0 < exits < 60


def test_the_exit_keeps_the_graphs_inputs_and_outputs(
    tidied: Path, head: ExitHead, tmp_path: Path
) -> None:
    """The runtime needs no change: same input and output names, loadable by make_session."""
    out = tmp_path / "exit.onnx"
    onnx.save(add_exit(onnx.load(str(tidied)), head, SPLIT), str(out))
    info = make_session(out, 1)
    assert info.input_names == ("input_ids", "attention_mask")
    assert info.output_names == ("verdict_logits", "kind_logits", "category_logits")
    assert has_exit(onnx.load(str(out))) and not has_exit(onnx.load(str(tidied)))
    assert [n.op_type for n in onnx.load(str(out)).graph.node].count("If") == 1


def test_a_batch_exits_only_when_every_window_is_sure(
    tidied: Path, head: ExitHead, tmp_path: Path
) -> None:
    """One unsure window in a batch sends the whole run through the remaining layers."""
    features = make_session(_save(feature_model(onnx.load(str(tidied))), tmp_path), 1).session
    base = make_session(tidied, 1).session
    exit_path = tmp_path / "exit.onnx"
    onnx.save(add_exit(onnx.load(str(tidied)), head, SPLIT), str(exit_path))
    exiting = make_session(exit_path, 1).session
    rng = np.random.default_rng(5)
    sure_rows, unsure_rows = [], []
    while not (sure_rows and unsure_rows):
        row = [int(x) for x in rng.integers(1, 8000, 12)]
        pooled = features.run([EXIT_FEATURES], _feeds([row]))[0]
        z = head.logits(pooled)
        p = np.exp(z[:, :3] - z[:, :3].max()) / np.exp(z[:, :3] - z[:, :3].max()).sum()
        if p[0, 1] + p[0, 2] < 0.45:
            sure_rows.append(row)
        elif p[0, 1] + p[0, 2] > 0.55:
            unsure_rows.append(row)
    mixed = _feeds([sure_rows[0], unsure_rows[0]])
    for x, y in zip(base.run(None, mixed), exiting.run(None, mixed), strict=True):
        assert np.array_equal(x, y)
    alone = _feeds([sure_rows[0]])
    assert not np.array_equal(base.run(None, alone)[0], exiting.run(None, alone)[0])


def _save(model: object, tmp_path: Path) -> Path:
    path = tmp_path / "features.onnx"
    onnx.save(model, str(path))
    return path


def test_exit_file_rewrites_in_place_and_refuses_a_second_time(
    tidied: Path, head: ExitHead, tmp_path: Path
) -> None:
    """exit_file checks, then replaces the file; a graph with an exit is not given another."""
    path = tmp_path / "model.onnx"
    shutil.copy(tidied, path)
    exit_file(path, head, SPLIT)
    assert has_exit(onnx.load(str(path)))
    with pytest.raises(ExitGraphError, match="already"):
        add_exit(onnx.load(str(path)), head, SPLIT)


def test_an_exit_needs_a_layer_to_skip_and_a_21_logit_head(tidied: Path, head: ExitHead) -> None:
    """The last layer, an unknown layer or a head of the wrong width fail with a clear error."""
    model = onnx.load(str(tidied))
    assert layer_output(model, 0).startswith("/encoder/encoder/layer.0/")
    with pytest.raises(ExitGraphError, match="last layer"):
        layer_output(model, 1)
    with pytest.raises(ExitGraphError, match="no output of layer 7"):
        layer_output(model, 7)
    wrong = ExitHead(head.w1, head.b1, head.w2[:, :20], head.b2[:20])
    with pytest.raises(ExitGraphError, match="21 logits"):
        add_exit(model, wrong, SPLIT)


def test_the_rule_reads_compliance_and_plain_full_refusals_as_sure() -> None:
    """Sure: refusal score under the bar, or a full refusal whose category is plain too."""
    rule = ExitRule(compliance_below=0.1, full_refusal_from=0.95, category_from=0.8)
    verdict = np.array([[0.95, 0.03, 0.02], [0.0, 0.02, 0.98], [0.0, 0.02, 0.98], [0.5, 0.2, 0.3]])
    category = np.full((4, 16), 0.01)
    category[:, 0] = [0.85, 0.85, 0.5, 0.85]
    # on the bars themselves: not sure (the graph compares strictly)
    assert not ExitRule(0.1, 0.98, 0.85).sure(verdict[1:2], category[1:2]).any()
    assert rule.sure(verdict, category).tolist() == [True, True, False, False]


def test_the_shipped_model_has_its_exit_and_says_so_in_its_config() -> None:
    """onnx_models: the graph's exit uses the rule config.json and its metadata name."""
    directory = bundled_model_dir()
    model = onnx.load(str(directory / MODEL_FILE))
    assert has_exit(model)
    rule = json.loads((directory / "config.json").read_text())["early_exit"]
    meta = json.loads(next(p.value for p in model.metadata_props if p.key == EXIT_METADATA))
    assert meta == {k: rule[k] for k in meta}
    consts = {
        i.name: onnx.numpy_helper.to_array(i).tolist()
        for i in model.graph.initializer
        if i.name in ("exit.margins_b", "exit.category_from")
    }
    assert consts["exit.margins_b"] == pytest.approx(
        [-rule["compliance_below"], rule["full_refusal_from"]]
    )
    assert consts["exit.category_from"] == pytest.approx(rule["category_from"])


def test_the_shipped_exit_answers_plain_texts_without_the_second_layer() -> None:
    """A plain answer and a plain refusal exit early and still get the expected verdicts."""
    clf = RefusalClassifier.load()
    assert clf.classify("Sure! Mix flour, eggs and milk, then fry the batter.").verdict == (
        "compliance"
    )
    refusal = clf.classify("I'm sorry, but I can't help with that request.")
    assert refusal.is_refusal


def test_refresh_exit_section_inserts_once_then_replaces(tmp_path: Path) -> None:
    """The card gets one early-exit section before its training data, however often refreshed."""
    out = tmp_path / "model"
    shutil.copytree(bundled_model_dir(), out)
    card = out / "MODEL_CARD.md"
    card.write_text(card.read_text().split("## Early exit\n")[0] + "## Training data\n\nrows\n")
    cv = {
        "windows": 10,
        "exits": 7,
        "exit_rate": 0.7,
        "verdict_disagreements": 0,
        "category_disagreements": 0,
    }
    split = {
        "texts": 2,
        "window_runs": 3,
        "exits": 2,
        "exit_rate": 0.67,
        "verdict_changes": 0,
        "category_or_kind_changes": 0,
        "without_exit": {"binary_f1": 1.0, "macro_f1": 1.0},
        "with_exit": {"binary_f1": 1.0, "macro_f1": 1.0},
    }
    report = {
        "rule": ExitRule().as_config(),
        "width": 64,
        "train_windows_cross_fitted": cv,
        "graph_check": {"random_runs": 200},
        "val": split,
        "dev": split,
    }
    refresh_exit_section(out, [report])
    embeddings = {**report, "layer": EMBEDDINGS, "gate": {"quantile": 0.99, "limit": 918.6}}
    refresh_exit_section(out, [{**report, "width": 32}, embeddings])
    text = card.read_text()
    assert text.count("## Early exit") == 1 and "384 -> 32" in text
    assert "On the embeddings" in text and "distance below 919" in text
    assert text.index("## Early exit") < text.index("## Training data")
    RefusalClassifier.load(out)  # SHA256SUMS was rewritten to match the card and model
    assert "MODEL_CARD.md" in (out / "SHA256SUMS").read_text()


def test_an_exit_on_the_embeddings_wraps_the_first_exit(exited: Path, tmp_path: Path) -> None:
    """A second exit before the first layer: the first exit's path is kept bit for bit."""
    model = onnx.load(str(exited))
    second, _ = _random_head(model, EMBEDDINGS, tmp_path)
    runs, exits = check_exit(exited, second, SPLIT, trials=60, layer=EMBEDDINGS)
    assert runs == 60 and 0 < exits < 60
    both = add_exit(model, second, SPLIT, EMBEDDINGS)
    assert exit_layers(both) == [EMBEDDINGS, 0] and exit_layers(model) == [0]
    top = [n for n in both.graph.node if n.op_type == "If"]
    assert len(top) == 1 and top[0].name == "exit_emb.if"
    assert layer_output(both, EMBEDDINGS).startswith("/encoder/embeddings/")


def test_exits_are_added_innermost_first_and_once(
    tidied: Path, exited: Path, head: ExitHead, tmp_path: Path
) -> None:
    """An exit cannot go inside an outer one, nor twice at the same place."""
    second, _ = _random_head(onnx.load(str(exited)), EMBEDDINGS, tmp_path)
    outer_only = add_exit(onnx.load(str(tidied)), second, SPLIT, EMBEDDINGS)
    with pytest.raises(ExitGraphError, match="before the graph's exits"):
        add_exit(outer_only, head, SPLIT, 0)
    both = add_exit(onnx.load(str(exited)), second, SPLIT, EMBEDDINGS)
    with pytest.raises(ExitGraphError, match="already"):
        add_exit(both, second, SPLIT, EMBEDDINGS)


def test_a_gated_head_exits_only_near_the_features_it_was_fitted_on(
    exited: Path, tmp_path: Path
) -> None:
    """with_gate passes the nearest share of its features; the graph's gate matches numpy."""
    bare, sample = _random_head(onnx.load(str(exited)), EMBEDDINGS, tmp_path)
    gated = bare.with_gate(sample, 0.5)
    inside = gated.inside(sample)
    assert 0.4 <= inside.mean() <= 0.6
    far = sample.mean(0, keepdims=True) + 50 * sample.std(0, keepdims=True)
    assert not gated.inside(far).any() and bare.inside(far).all()
    # check_exit also builds the gate at the random batches' median distance and holds the
    # graph to numpy's reading of it, both ways
    runs, _ = check_exit(exited, gated, SPLIT, trials=40, layer=EMBEDDINGS)
    assert runs == 40


def test_the_shipped_embeddings_exit_is_gated_as_its_config_says() -> None:
    """onnx_models: two exits, the outer one on the embeddings with the configured gate."""
    directory = bundled_model_dir()
    model = onnx.load(str(directory / MODEL_FILE))
    assert exit_layers(model) == [EMBEDDINGS, 0]
    entry = json.loads((directory / "config.json").read_text())["early_exit_embeddings"]
    key = EXIT_METADATA + ".embeddings"
    meta = json.loads(next(p.value for p in model.metadata_props if p.key == key))
    assert meta == {k: entry[k] for k in meta}
    limit = next(i for i in model.graph.initializer if i.name == "exit_emb.limit")
    assert float(onnx.numpy_helper.to_array(limit)) == pytest.approx(
        entry["gate"]["distance_below"], abs=1e-3
    )
    clf = RefusalClassifier.load()
    assert clf.classify("No.").is_refusal  # far outside the gate: the layers decide
