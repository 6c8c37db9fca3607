"""The latent-records directory that `saeprobe latents` writes and every later stage reads.

Layout (no pickle anywhere; arrays are plain `.npy`, metadata is JSON):

    latents.json            metadata: format version, the SAE (path, weights sha256, architecture,
                            d_sae), the store (path, model, layer, token range), settings, counts
    frequency.npy           [d_sae] float64: fraction of tokens on which each latent fires (> 0)
    window_frequency.npy    [d_sae] float64: fraction of context windows where it fires anywhere
    max_activation.npy      [d_sae] float32: largest activation seen (0 for a dead latent)
    histogram.npy           [d_sae, n_bins] int64: firing activations per log-spaced bin
    histogram_edges.npy     [n_bins + 1] float64: the bin edges (activation units)
    vocab.json              {token id: display string} for every token id in an example
    examples/<part>_<kind>_<field>.npy

An *example* is a span of at most `span` consecutive tokens of one context window, around the
token where the latent is largest in that window (or a random span, for non-activating ones).
`part` is `explain` or `heldout`: every context window belongs to exactly one part (a seeded hash
of its document id and window index), so an example an explainer saw never reappears, nor any
other span of its window, among the examples a scorer is tested on. `kind` is

    top        the windows with the largest activation, best first
    quantile   windows sampled uniformly among those where the latent fires, n_per_quantile from
               each of n_quantiles equal-count bands of their activation (band 0 = weakest)
    random     windows where the latent is exactly 0 everywhere

and `field` one of

    row       int64 [d_sae, n]       first store row of the span, -1 for an empty slot
    length    int16 [d_sae, n]       tokens in the span
    peak      int16 [d_sae, n]       index of the largest activation within the span
    value     float32 [d_sae, n]     the window's largest activation (0 for random)
    band      int8 [d_sae, n]        activation band (quantile kind only; -1 elsewhere)
    tokens    int32 [d_sae, n, span] token ids (-1 past `length`)
    acts      float16 [d_sae, n, span] the latent's activation at each token

Arrays are memory-mapped when read, so a page over one latent reads only its rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from saeprobe.errors import FormatError
from saeprobe.io_utils import atomic_write, atomic_write_json

FORMAT_VERSION = 1
META_FILE = "latents.json"
VOCAB_FILE = "vocab.json"
PARTS = ("explain", "heldout")
KINDS = ("top", "quantile", "random")
FIELDS = {
    "row": np.int64,
    "length": np.int16,
    "peak": np.int16,
    "value": np.float32,
    "band": np.int8,
    "tokens": np.int32,
    "acts": np.float16,
}


def save_array(path: Path, array: np.ndarray) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.save(fh, array, allow_pickle=False)

    atomic_write(path, write, fsync=False)


def example_file(out: Path, part: str, kind: str, field: str) -> Path:
    return out / "examples" / f"{part}_{kind}_{field}.npy"


@dataclass(frozen=True)
class Example:
    """One context span, ready to show: token strings and the latent's activation on each."""

    tokens: list[str]
    acts: list[float]
    value: float  # the window's largest activation (0 for a non-activating example)
    peak: int  # index in `tokens` of the largest activation
    row: int  # store row of the first token
    band: int = -1  # activation band for quantile examples

    @property
    def active(self) -> bool:
        return self.value > 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "tokens": self.tokens,
            "acts": [round(a, 4) for a in self.acts],
            "value": round(self.value, 4),
            "peak": self.peak,
            "row": self.row,
            "band": self.band,
        }


class LatentRecords:
    """Read access to a records directory (see the module docstring)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        meta_path = self.path / META_FILE
        if not meta_path.is_file():
            raise FormatError(
                f"{self.path} holds no {META_FILE}; run saeprobe latents --out {self.path} first"
            )
        try:
            self.meta: dict[str, Any] = json.loads(meta_path.read_text(encoding="utf-8"))
            vocab = json.loads((self.path / VOCAB_FILE).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            raise FormatError(
                f"{self.path} is an incomplete or corrupt latents directory; run saeprobe "
                "latents again into a fresh --out"
            ) from None
        if self.meta.get("format_version") != FORMAT_VERSION:
            raise FormatError(
                f"{self.path} was written by another saeprobe version (format "
                f"{self.meta.get('format_version')}); run saeprobe latents again"
            )
        self.vocab = {int(k): v for k, v in vocab.items()}
        self.frequency = self._load("frequency.npy")
        self.window_frequency = self._load("window_frequency.npy")
        self.max_activation = self._load("max_activation.npy")
        self.histogram = self._load("histogram.npy")
        self.histogram_edges = self._load("histogram_edges.npy")
        self._arrays: dict[tuple[str, str, str], np.ndarray] = {}

    def _load(self, name: str, mmap: bool = False) -> np.ndarray:
        path = self.path / name
        try:
            return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
        except (OSError, ValueError, EOFError):
            raise FormatError(
                f"{path} is missing or corrupt; run saeprobe latents again into a fresh --out"
            ) from None

    @property
    def d_sae(self) -> int:
        return int(self.meta["sae"]["d_sae"])

    @property
    def live(self) -> np.ndarray:
        """Indices of latents that fired at least once."""
        return np.flatnonzero(self.frequency > 0)

    def array(self, part: str, kind: str, field: str) -> np.ndarray:
        key = (part, kind, field)
        if key not in self._arrays:
            rel = example_file(Path("."), part, kind, field)
            self._arrays[key] = self._load(str(rel), mmap=True)
        return self._arrays[key]

    def examples(self, latent: int, part: str, kind: str) -> list[Example]:
        rows = self.array(part, kind, "row")[latent]
        lengths = self.array(part, kind, "length")[latent]
        peaks = self.array(part, kind, "peak")[latent]
        values = self.array(part, kind, "value")[latent]
        bands = self.array(part, kind, "band")[latent]
        tokens = self.array(part, kind, "tokens")[latent]
        acts = self.array(part, kind, "acts")[latent]
        out = []
        for j in np.flatnonzero(rows >= 0):
            n = int(lengths[j])
            out.append(
                Example(
                    tokens=[self.vocab.get(int(t), f"<{int(t)}>") for t in tokens[j, :n]],
                    acts=[float(a) for a in acts[j, :n]],
                    value=float(values[j]),
                    peak=int(peaks[j]),
                    row=int(rows[j]),
                    band=int(bands[j]),
                )
            )
        return out


def write_meta(out: Path, meta: dict[str, Any], vocab: dict[int, str]) -> None:
    """Written last: a directory without latents.json is visibly unfinished."""
    atomic_write_json(out / VOCAB_FILE, {str(k): v for k, v in sorted(vocab.items())})
    atomic_write_json(out / META_FILE, {"format_version": FORMAT_VERSION, **meta})
