"""Token ids back to text: the store's tokenizer, and display strings for single tokens."""

from __future__ import annotations

from collections.abc import Iterable

from saeprobe.errors import SaeprobeError


def load_tokenizer(model: str):
    """The tokenizer of `model` (an alias, a local path or a cached hub id), offline."""
    from transformers import AutoTokenizer

    from saeprobe.lm.models import resolve

    source = resolve(model)
    try:
        return AutoTokenizer.from_pretrained(source, local_files_only=True)
    except (OSError, ValueError) as err:
        first = str(err).splitlines()[0][:120]
        raise SaeprobeError(
            f"cannot load the tokenizer of {model!r} ({first}); the store's model must be an "
            "alias, a local directory or in the Hugging Face cache"
        ) from None


def token_strings(tokenizer, ids: Iterable[int]) -> dict[int, str]:
    """Each id decoded alone (leading spaces kept), for display next to its activation."""
    out = {}
    for i in sorted(set(int(t) for t in ids)):
        if i < 0:
            continue
        out[i] = tokenizer.decode(
            [i], skip_special_tokens=False, clean_up_tokenization_spaces=False
        )
    return out
