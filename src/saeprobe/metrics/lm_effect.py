"""Downstream effect of splicing a reconstruction (an SAE) into a model's residual stream.

For a causal LM, layer L's output is replaced by `fn(hidden)` and we measure next-token loss:

    ce_clean, ce_spliced, ce_zero_ablation   mean cross-entropy per predicted token (nats)
    delta_lm_loss     = ce_spliced - ce_clean
    ce_loss_recovered = (ce_zero - ce_spliced) / (ce_zero - ce_clean)   1 = perfect, 0 = no better
                                                                        than deleting the layer
    kl_divergence     = mean per-token KL(clean || spliced) of the next-token distributions

Every quantity is a token-weighted sum over the whole evaluation set divided once at the end;
a mean of per-batch means would over-weight batches of short texts. Position t predicts token
t + 1 and counts only when both are real (attended) tokens, so padding never enters the loss.

Encoders have no LM head; for them the LM fields are None with a reason, and `embedding_cosine`
is the mean over texts of cos(clean, spliced) sentence embeddings, pooled as sentence-transformers
pools all-MiniLM-L6-v2: the attention-masked mean of `last_hidden_state`.

The reconstruction replaces only the positions of a splice mask (attended tokens, minus any a
`splice_mask_fn` excludes such as BOS or other special tokens, which an SAE is usually not trained
on, and minus positions a batch's own boolean "splice_mask" leaves out); elsewhere the clean
hidden state is kept. With `outlier_factor` (the harvest's `--outlier-factor`) positions whose
residual norm at the layer exceeds that multiple of the batch's median over the splice mask are
kept clean too, since the harvest never stored them and the SAE never saw their like. Zero
ablation zeroes exactly the same positions, so ce_loss_recovered compares like with like.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from saeprobe.activations.windows import Window, collate, pad_id
from saeprobe.errors import DataError, SaeprobeError
from saeprobe.lm.hooks import splice
from saeprobe.lm.models import LoadedModel

Reconstruction = Callable[[Tensor], Tensor]
# (input_ids [B, T], attention_mask [B, T]) -> bool [B, T], True where the reconstruction is used.
SpliceMaskFn = Callable[[Tensor, Tensor], Tensor]

# Below this many nats the zero-ablation baseline is indistinguishable from the clean model and
# the recovered fraction would be noise divided by noise.
RECOVERED_DENOMINATOR_EPS = 1e-6
KL_CHUNK_ROWS = 256
LM_FIELDS = (
    "ce_clean",
    "ce_spliced",
    "ce_zero_ablation",
    "delta_lm_loss",
    "ce_loss_recovered",
    "kl_divergence",
)
ENCODER_REASON = "encoder model: no LM head, so next-token loss is undefined; see embedding_cosine"


# ----- splice masks --------------------------------------------------------------------------
def exclude_positions(*positions: int) -> SpliceMaskFn:
    """Keep the clean hidden state at these absolute positions (e.g. 0 for BOS with right padding)."""

    def mask_fn(input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        mask = torch.ones_like(input_ids, dtype=torch.bool)
        for p in positions:
            mask[:, p] = False
        return mask

    return mask_fn


def exclude_token_ids(token_ids: Iterable[int]) -> SpliceMaskFn:
    """Keep the clean hidden state wherever the token is one of `token_ids`; padding-side proof."""
    ids = torch.tensor(sorted(set(token_ids)), dtype=torch.long)

    def mask_fn(input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        return ~torch.isin(input_ids, ids.to(input_ids.device))

    return mask_fn


def exclude_special_tokens(tokenizer) -> SpliceMaskFn:
    """Keep BOS/CLS/SEP/EOS/... clean: the SAE was trained on ordinary tokens only."""
    return exclude_token_ids(tokenizer.all_special_ids)


# ----- tokenisation --------------------------------------------------------------------------
def tokenize_batches(
    tokenizer, texts: Sequence[str], batch_size: int = 8, max_length: int = 128
) -> Iterator[dict[str, Tensor]]:
    """Batches of `input_ids`/`attention_mask`, padded on the right by hand.

    Right padding keeps every text's position ids starting at 0, so a text's loss does not depend
    on its batch-mates; padding by hand also works for tokenizers without a pad token (the pad id
    is never seen: attention and loss both mask it).
    """
    if batch_size < 1 or max_length < 2:
        raise DataError(
            f"batch_size={batch_size}, max_length={max_length}; use batch_size >= 1 and "
            "max_length >= 2 (next-token loss needs two tokens)"
        )
    pad = pad_id(tokenizer)
    for i in range(0, len(texts), batch_size):
        rows = tokenizer(list(texts[i : i + batch_size]), truncation=True, max_length=max_length)
        windows = [Window(r, [True] * len(r), j) for j, r in enumerate(rows["input_ids"])]
        enc = collate(windows, pad)
        yield {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}


# ----- per-batch pieces ----------------------------------------------------------------------
def next_token_mask(attention_mask: Tensor) -> Tensor:
    """bool [B, T-1]: position t predicts t+1 and counts only if both are real tokens."""
    m = attention_mask.bool()
    return m[:, :-1] & m[:, 1:]


def _valid_logits(logits: Tensor, valid: Tensor) -> Tensor:
    """Logits [N, V] of the counted positions, in float32 so bf16 models do not lose precision."""
    return logits[:, :-1][valid].float()


def token_cross_entropy(logits: Tensor, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
    """Per-token next-token cross-entropy [N] over the counted positions."""
    valid = next_token_mask(attention_mask)
    labels = input_ids[:, 1:][valid]
    return F.cross_entropy(_valid_logits(logits, valid), labels, reduction="none")


def token_kl(clean_logits: Tensor, spliced_logits: Tensor, attention_mask: Tensor) -> Tensor:
    """Per-token KL(clean || spliced) [N] of the next-token distributions."""
    valid = next_token_mask(attention_mask)
    clean, spliced = _valid_logits(clean_logits, valid), _valid_logits(spliced_logits, valid)
    # float64, a chunk of rows at a time: a good SAE's KL is small enough that float32 rounding
    # over a 50k vocabulary shifts it by ~1e-3 relative, and [N, V] float64 at once is large.
    out = []
    for start in range(0, clean.shape[0], KL_CHUNK_ROWS):
        log_p = F.log_softmax(clean[start : start + KL_CHUNK_ROWS].double(), dim=-1)
        log_q = F.log_softmax(spliced[start : start + KL_CHUNK_ROWS].double(), dim=-1)
        out.append(F.kl_div(log_q, log_p, log_target=True, reduction="none").sum(-1))
    return torch.cat(out) if out else clean.new_zeros(0, dtype=torch.float64)


def mean_pool(hidden: Tensor, attention_mask: Tensor) -> Tensor:
    """Sentence embeddings [B, D]: mean of `hidden` over attended tokens (sentence-transformers)."""
    m = attention_mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1)


def masked_replacement(fn: Reconstruction, mask: Tensor, layer: int) -> Reconstruction:
    """A splice function that applies `fn` to the rows of `mask` only and keeps the rest clean.

    `fn` receives a [n_rows, d_model] matrix of just those rows, so padding and excluded tokens
    never reach the SAE (they would also sway batch-level rules such as BatchTopK's).
    """

    def replace(hidden: Tensor) -> Tensor:
        rows = hidden[mask]
        if rows.shape[0] == 0:
            return hidden
        new = _checked_call(fn, rows, layer)
        out = hidden.clone()
        out[mask] = new.to(hidden.dtype)
        return out

    return replace


def _checked_call(fn: Reconstruction, rows: Tensor, layer: int) -> Tensor:
    """`fn(rows)`, turning shape failures into one-line errors that name the fix."""
    fix = f"build fn from an SAE whose d_in equals the model's d_model ({rows.shape[-1]})"
    try:
        new = fn(rows)
    except SaeprobeError:
        raise
    except (RuntimeError, ValueError, IndexError) as err:
        first = (str(err).splitlines() or [type(err).__name__])[0][:120]
        raise SaeprobeError(
            f"the reconstruction fn failed on layer {layer} activations of shape "
            f"{tuple(rows.shape)} ({first}); {fix}"
        ) from None
    if not isinstance(new, Tensor) or new.shape != rows.shape:
        got = tuple(new.shape) if isinstance(new, Tensor) else type(new).__name__
        raise SaeprobeError(
            f"the reconstruction fn returned {got} for layer {layer} input of shape "
            f"{tuple(rows.shape)}; it must return the input's shape: {fix}"
        )
    return new


# ----- accumulation --------------------------------------------------------------------------
@dataclass
class LMEffectAccumulator:
    """Token-weighted (LM) and text-weighted (embedding) sums in float64, divided once at the end."""

    is_causal_lm: bool
    n_tokens: int = 0
    n_texts: int = 0
    n_spliced_positions: int = 0
    n_outlier_positions: int = 0
    ce_clean_sum: float = 0.0
    ce_spliced_sum: float = 0.0
    ce_zero_sum: float = 0.0
    kl_sum: float = 0.0
    cos_sum: float = 0.0

    def add_lm_batch(
        self,
        input_ids: Tensor,
        attention_mask: Tensor,
        clean_logits: Tensor,
        spliced_logits: Tensor,
        zero_logits: Tensor,
    ) -> None:
        ce_clean = token_cross_entropy(clean_logits, input_ids, attention_mask)
        self.n_tokens += ce_clean.numel()
        self.n_texts += input_ids.shape[0]
        self.ce_clean_sum += float(ce_clean.double().sum())
        ce = token_cross_entropy(spliced_logits, input_ids, attention_mask)
        self.ce_spliced_sum += float(ce.double().sum())
        ce = token_cross_entropy(zero_logits, input_ids, attention_mask)
        self.ce_zero_sum += float(ce.double().sum())
        kl = token_kl(clean_logits, spliced_logits, attention_mask)
        self.kl_sum += float(kl.double().sum())

    def add_embedding_batch(
        self, attention_mask: Tensor, clean_hidden: Tensor, spliced_hidden: Tensor
    ) -> None:
        # float64 so that an identity splice gives a cosine of 1 to ~1e-15, not float32 noise.
        clean = mean_pool(clean_hidden.double(), attention_mask)
        spliced = mean_pool(spliced_hidden.double(), attention_mask)
        self.n_tokens += int(attention_mask.sum())
        self.n_texts += attention_mask.shape[0]
        self.cos_sum += float(F.cosine_similarity(clean, spliced, dim=-1).sum())

    def result(self) -> dict:
        counts = {
            "n_tokens": self.n_tokens,
            "n_texts": self.n_texts,
            "n_spliced_positions": self.n_spliced_positions,
            "n_outlier_positions": self.n_outlier_positions,
        }
        if not self.is_causal_lm:
            return {**self._encoder_fields(), **counts}
        return {**self._lm_fields(), **counts}

    def _encoder_fields(self) -> dict:
        if self.n_texts == 0:
            raise DataError("no texts were evaluated; pass at least one non-empty batch")
        lm_none = dict.fromkeys(LM_FIELDS)
        return {
            **lm_none,
            "ce_loss_recovered_reason": ENCODER_REASON,
            "embedding_cosine": self.cos_sum / self.n_texts,
            "lm_loss_reason": ENCODER_REASON,
        }

    def _lm_fields(self) -> dict:
        if self.n_tokens == 0:
            raise DataError(
                "no next-token positions were evaluated (every text has fewer than 2 tokens); "
                "pass longer texts"
            )
        n = self.n_tokens
        ce_clean, ce_spliced = self.ce_clean_sum / n, self.ce_spliced_sum / n
        ce_zero = self.ce_zero_sum / n
        recovered, recovered_reason = _recovered(ce_clean, ce_spliced, ce_zero)
        return {
            "ce_clean": ce_clean,
            "ce_spliced": ce_spliced,
            "ce_zero_ablation": ce_zero,
            "delta_lm_loss": ce_spliced - ce_clean,
            "ce_loss_recovered": recovered,
            "ce_loss_recovered_reason": recovered_reason,
            "kl_divergence": self.kl_sum / n,
            "embedding_cosine": None,
            "lm_loss_reason": None,
        }


def _recovered(
    ce_clean: float, ce_spliced: float, ce_zero: float
) -> tuple[float | None, str | None]:
    denominator = ce_zero - ce_clean
    if abs(denominator) < RECOVERED_DENOMINATOR_EPS:
        return None, (
            f"zero ablation barely changes the loss (ce_zero - ce_clean = {denominator:.2e}), "
            "so the recovered fraction is undefined"
        )
    return (ce_zero - ce_spliced) / denominator + 0.0, None  # + 0.0 turns -0.0 into 0.0


# ----- driver --------------------------------------------------------------------------------
def _batch_tensors(batch: Mapping[str, Tensor], device: torch.device) -> tuple[Tensor, Tensor]:
    if "input_ids" not in batch:
        raise DataError(
            f"a batch has keys {sorted(batch)} but no 'input_ids'; pass tokenizer output"
        )
    input_ids = torch.as_tensor(batch["input_ids"]).to(device)
    if input_ids.ndim != 2:
        raise DataError(
            f"input_ids has shape {tuple(input_ids.shape)}; pass a [batch, seq] tensor per batch"
        )
    mask = batch.get("attention_mask")
    mask = torch.ones_like(input_ids) if mask is None else torch.as_tensor(mask).to(device)
    if mask.shape != input_ids.shape:
        raise DataError(
            f"attention_mask shape {tuple(mask.shape)} differs from input_ids "
            f"{tuple(input_ids.shape)}; pass both from the same tokenizer call"
        )
    return input_ids, mask


def splice_positions(
    input_ids: Tensor, attention_mask: Tensor, splice_mask_fn: SpliceMaskFn | None
) -> Tensor:
    """bool [B, T]: attended positions the reconstruction replaces."""
    mask = attention_mask.bool()
    if splice_mask_fn is None:
        return mask
    chosen = torch.as_tensor(splice_mask_fn(input_ids, attention_mask)).to(mask.device)
    if chosen.shape != mask.shape:
        raise DataError(
            f"splice_mask_fn returned shape {tuple(chosen.shape)} for input_ids "
            f"{tuple(input_ids.shape)}; it must return a [batch, seq] boolean mask"
        )
    return mask & chosen.bool()


def outlier_positions(hidden: Tensor, where: Tensor, factor: float) -> Tensor:
    """bool [B, T]: positions of `where` whose norm exceeds `factor` x their median norm (the
    harvest's rule, applied to one batch at one layer)."""
    norms = hidden.float().norm(dim=-1)
    if not where.any():
        return torch.zeros_like(where)
    return where & (norms > factor * norms[where].median())


def _clean_forward(
    lm: LoadedModel, layer: int, input_ids: Tensor, attention_mask: Tensor
) -> tuple[Tensor, Tensor]:
    """The clean output and the clean residual at `layer`, from one forward pass."""
    seen: list[Tensor] = []

    def record(hidden: Tensor) -> Tensor:
        seen.append(hidden)
        return hidden

    with splice(lm.blocks, layer, record):
        out = _forward(lm, input_ids, attention_mask)
    return out, seen[0]


def _forward(lm: LoadedModel, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
    """Logits (causal LM) or last_hidden_state (encoder).

    Only input_ids and attention_mask are passed: token_type_ids from a BERT-style tokenizer are
    all zeros (the default) for single texts, and causal LMs may reject them.
    """
    out = lm.model(input_ids=input_ids, attention_mask=attention_mask)
    return out.logits if lm.is_causal_lm else out.last_hidden_state


def lm_effect(
    lm: LoadedModel,
    layer: int,
    fn: Reconstruction,
    batches: Iterable[Mapping[str, Tensor]],
    splice_mask_fn: SpliceMaskFn | None = None,
    outlier_factor: float | None = None,
) -> dict:
    """JSON-serialisable effect of splicing `fn` at `layer` over all `batches` (see module doc)."""
    return lm_effects(lm, layer, {"fn": fn}, batches, splice_mask_fn, outlier_factor)["fn"]


@torch.no_grad()
def lm_effects(
    lm: LoadedModel,
    layer: int,
    fns: Mapping[str, Reconstruction],
    batches: Iterable[Mapping[str, Tensor]],
    splice_mask_fn: SpliceMaskFn | None = None,
    outlier_factor: float | None = None,
) -> dict[str, dict]:
    """`lm_effect` of each of `fns`, sharing the clean and zero-ablated passes: for n SAEs a
    causal LM runs 2 + n forward passes per batch instead of 3n."""
    lm.check_layers([layer])
    device = next(lm.model.parameters()).device
    accs = {name: LMEffectAccumulator(lm.is_causal_lm) for name in fns}
    was_training = lm.model.training
    lm.model.eval()  # dropout would make clean and spliced runs differ for no reason
    try:
        for batch in batches:
            input_ids, attention_mask = _batch_tensors(batch, device)
            where = splice_positions(input_ids, attention_mask, splice_mask_fn)
            if "splice_mask" in batch:  # e.g. the harvest's own kept-token mask
                where &= torch.as_tensor(batch["splice_mask"]).to(where.device).bool()
            clean, hidden = _clean_forward(lm, layer, input_ids, attention_mask)
            n_outliers = 0
            if outlier_factor is not None:
                outliers = outlier_positions(hidden, where, outlier_factor)
                n_outliers = int(outliers.sum())
                where &= ~outliers
            zero = None
            if lm.is_causal_lm:
                with splice(lm.blocks, layer, masked_replacement(torch.zeros_like, where, layer)):
                    zero = _forward(lm, input_ids, attention_mask)
            for name, fn in fns.items():
                acc = accs[name]
                acc.n_outlier_positions += n_outliers
                acc.n_spliced_positions += int(where.sum())
                with splice(lm.blocks, layer, masked_replacement(fn, where, layer)):
                    spliced = _forward(lm, input_ids, attention_mask)
                if zero is None:
                    acc.add_embedding_batch(attention_mask, clean, spliced)
                else:
                    acc.add_lm_batch(input_ids, attention_mask, clean, spliced, zero)
    finally:
        lm.model.train(was_training)
    return {name: acc.result() for name, acc in accs.items()}
