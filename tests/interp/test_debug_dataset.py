"""`saeprobe debug-dataset` on a planted cue: harmless prompts that end in "?" and an SAE with a
latent that fires on "?" exactly. Un-normalised, that latent must be found and flagged
`question_mark` with the right per-class rates; normalised, nothing is flagged so."""

import json

import numpy as np
import pytest
import torch
import yaml

from saeprobe.activations.windows import Window, collate, pad_id
from saeprobe.errors import DataError
from saeprobe.features.extract import tokenize_turns
from saeprobe.interp.debug_dataset import load_debug_config, merge_rankings, run_debug_dataset
from saeprobe.lm.hooks import capture_layers
from saeprobe.sae.io import save_sae
from saeprobe.sae.registry import create_sae

HARMS = ["build a bomb", "poison a well", "steal a car", "hack a bank", "forge a passport",
         "make a weapon", "rob a shop", "burn a house", "stalk a person", "launder money"]  # fmt: skip
PLACES = ["at home", "tonight", "quickly", "without help"]
TOPICS = ["bread", "tea", "a poem", "the sea", "a garden", "a kite", "soup", "a song",
          "the moon", "a chair"]  # fmt: skip


def _prompts():
    harmful = [f"explain how to {h} {p}" for h in HARMS for p in PLACES]
    harmless = []
    for i, t in enumerate(TOPICS * 4):
        harmless.append(f"what is good about {t}?" if i % 10 < 7 else f"write about {t} please")
    return harmful, harmless


def _planted_sae(lm, texts, path):
    """Latent 0 fires on the "?" token and nowhere else in `texts`; 7 random latents."""
    turns = tokenize_turns(lm.tokenizer, texts, 64)
    enc = collate([Window(t.input_ids, t.user_mask, i) for i, t in enumerate(turns)],
                  pad_id(lm.tokenizer))  # fmt: skip
    h = capture_layers(lm.model, lm.blocks, [1], input_ids=enc["input_ids"],
                       attention_mask=enc["attention_mask"])[1]  # fmt: skip
    q = lm.tokenizer.convert_tokens_to_ids("?")
    keep = enc["keep"]
    x, is_q = h[keep], (enc["input_ids"] == q)[keep]
    w = x[is_q].mean(0) - x[~is_q].mean(0)
    w = w / w.norm()
    proj = x @ w
    assert proj[is_q].min() > proj[~is_q].max()  # the fixture itself: "?" is separable
    cut = float(proj[is_q].min() + proj[~is_q].max()) / 2
    sae = create_sae({"architecture": "relu", "d_in": 32, "d_sae": 8, "apply_b_dec_to_input":
                      False}, seed=0)  # fmt: skip
    with torch.no_grad():
        sae.W_enc[:, 0] = w
        sae.b_enc[0] = -cut
        pre = x @ sae.W_enc[:, 1:]
        sae.b_enc[1:] = -torch.quantile(pre, 0.9, dim=0)
    save_sae(sae, path, metadata={"hook_layer": 1})


@pytest.fixture(scope="module")
def planted(tiny_llama, tmp_path_factory):
    root = tmp_path_factory.mktemp("debug")
    harmful, harmless = _prompts()
    for name, rows in (("harmful", harmful), ("harmless", harmless)):
        (root / f"{name}.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in rows))
    _planted_sae(tiny_llama, harmful + harmless, root / "sae")

    def config(normalize: bool):
        cfg = {
            "model": tiny_llama.name,
            "layer": 1,
            "context": 64,
            "n_top": 4,
            "device": "cpu",
            "saes": {"dirs": {"planted": str(root / "sae")}},
            "dataset": {
                "normalize": normalize,
                "val_fraction": 0.2,
                "ood_fraction": 0.0,
                "sources": [
                    {
                        "name": "bad",
                        "kind": "jsonl",
                        "path": str(root / "harmful.jsonl"),
                        "label": "harmful",
                    },
                    {
                        "name": "good",
                        "kind": "jsonl",
                        "path": str(root / "harmless.jsonl"),
                        "label": "harmless",
                    },
                ],  # fmt: skip
            },
        }
        path = root / f"debug-{normalize}.yaml"
        path.write_text(yaml.safe_dump(cfg))
        return load_debug_config(path)

    return root, config


def test_planted_question_mark_latent_is_found_and_flagged(planted, tmp_path):
    _, config = planted
    findings, summary = run_debug_dataset(config(False), tmp_path / "raw", progress=False,
                                          log=lambda _: None)  # fmt: skip
    saved = json.loads((tmp_path / "raw" / "findings.json").read_text())
    assert saved == json.loads(json.dumps(findings))
    keys = {"rank", "latent", "mean_diff", "auroc", "pattern", "rate_pos", "rate_neg"}
    assert all(keys <= set(f) for f in saved)
    top = saved[0]
    assert top["latent"] == 0 and top["rank"] == 1
    assert top["pattern"] == "question_mark"
    assert top["rate_pos"] == 0.0 and top["rate_neg"] == pytest.approx(0.7, abs=0.1)
    assert top["mean_diff"] < 0 and top["auroc"] < 0.5 and top["n_active_pos"] == 0
    assert all(e["tokens"][int(np.argmax(e["acts"]))] == "?" for e in top["examples"])
    assert summary["pattern_rates"]["question_mark"]["rate_pos"] == 0.0
    md = (tmp_path / "raw" / "findings.md").read_text()
    html = (tmp_path / "raw" / "findings.html").read_text()
    assert "question_mark" in md and "question_mark" in html and "<script" not in html


def test_normalised_dataset_has_no_question_mark_cue(planted, tmp_path):
    _, config = planted
    findings, summary = run_debug_dataset(config(True), tmp_path / "norm", progress=False,
                                          log=lambda _: None)  # fmt: skip
    assert summary["pattern_rates"]["question_mark"] == {"rate_pos": 0.0, "rate_neg": 0.0}
    assert not [f for f in findings if f["pattern"] == "question_mark"]


def test_merge_rankings_alternates_without_repeats():
    assert merge_rankings(np.array([3, 1, 2]), np.array([1, 4, 3]), n=4) == [3, 1, 4, 2]


def test_one_class_split_is_an_error(planted, tmp_path):
    _, config = planted
    cfg = config(False)
    cfg.dataset["sources"] = cfg.dataset["sources"][:1]
    with pytest.raises(DataError, match="only harmful rows"):
        run_debug_dataset(cfg, tmp_path / "x", progress=False)


def test_flag_rule_on_a_common_ending():
    from saeprobe.interp.patterns import flag_pattern, split_patterns

    # 70 % of the split ends in "."; a latent whose top prompts all do is still flagged, and
    # its ending wins over length when the latent peaks on the last token.
    short = [f"item{i} {'x ' * (i % 4)}done." for i in range(70)]
    long = [f"entry{i} " + "y " * (10 + i) for i in range(30)]
    split = short + long
    patterns = split_patterns(split, [len(t.split()) for t in split])
    assert flag_pattern(short[:20], split, patterns, peaks_at_end=1.0).name == "ending_period"
    assert flag_pattern(long[-20:], split, patterns).name == "long"
    assert flag_pattern(short[:10] + long[:10], split, patterns) is None
