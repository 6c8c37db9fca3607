"""How per-token vectors of one prompt become one vector.

Pooling runs over the user-turn tokens of the chat-formatted prompt (the user's own text; never
the template, its default system prompt, or special tokens), except `position`, which reads one
token at a fixed offset from an anchor so that template tokens can be chosen:

    max        max over user tokens, per dimension (the study's best)
    mean       mean over user tokens
    last       the last user token
    position   anchor + offset, where `anchor` is one of
        last_user_token   (default) the last user token: offset 1 = the first template token
                          after the user's text. Name `position+1`.
        end_of_user_turn  the token closing the user turn (`<|im_end|>` in ChatML,
                          `<end_of_turn>` in Gemma): offset 0 names the same token under any
                          template. Name `eot+0`.
        response_start    the first response token, one past the end of the formatted prompt
                          (which ends with the generation prompt): offset -1 = the last prompt
                          token, and the offset must be negative. This is the study's indexing;
                          in Gemma -5 is `<end_of_turn>`, in SmolLM2 it is -6, because
                          "assistant" is two tokens there. Name `resp-5`.

Names are stable and distinct per (method, anchor, offset): they key the feature cache and name
the output directories (`pooling-<name>`).

A position that falls outside a prompt's own tokens (before its start, or past its end into the
batch padding) is a DataError naming the prompt, the offset and the offsets that prompt allows;
it is never clipped. Callers check every prompt before the model runs (`Pooling.row`), so a bad
offset fails in seconds, not after the forward passes.

SAE latents are computed per token and pooled the same way: max-pooled latents, not the SAE of
a pooled residual.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, model_validator
from torch import Tensor

from saeprobe.errors import DataError

Anchor = Literal["last_user_token", "end_of_user_turn", "response_start"]
_NAME_PREFIX = {"last_user_token": "position", "end_of_user_turn": "eot", "response_start": "resp"}
_ANCHOR_WORDS = {
    "last_user_token": "its last user token",
    "end_of_user_turn": "the token closing its user turn",
    "response_start": "its first response token",
}


class Pooling(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    method: Literal["max", "mean", "last", "position"] = "max"
    offset: int = 0
    anchor: Anchor = "last_user_token"

    @model_validator(mode="after")
    def _check_anchor(self) -> Pooling:
        if self.anchor != "last_user_token" and self.method != "position":
            raise ValueError(
                f"anchor {self.anchor!r} applies only to method 'position'; "
                "remove the anchor or set method: position"
            )
        if self.anchor == "response_start" and self.offset >= 0:
            raise ValueError(
                f"anchor 'response_start' needs a negative offset (-1 = the last prompt token), "
                f"got {self.offset}; count back from the response, e.g. offset: -5"
            )
        return self

    @property
    def name(self) -> str:
        if self.method != "position":
            return self.method
        return f"{_NAME_PREFIX[self.anchor]}{self.offset:+d}"

    def row(self, last_user: int, end_of_turn: int, length: int, prompt: int) -> int:
        """The token row a `position` pooling reads in a prompt of `length` tokens.

        `prompt` only names the prompt in the error raised when the row is outside it.
        """
        anchor = {
            "last_user_token": last_user,
            "end_of_user_turn": end_of_turn,
            "response_start": length,
        }[self.anchor]
        row = anchor + self.offset
        if not 0 <= row < length:
            raise DataError(
                f"pooling {self.name}: prompt {prompt} has {length} tokens, so only offsets "
                f"{-anchor:+d}..{length - 1 - anchor:+d} from {_ANCHOR_WORDS[self.anchor]} are "
                f"inside it, not {self.offset:+d}; choose an offset that fits every prompt "
                "or remove that prompt"
            )
        return row

    def token_rows(self, user_mask: Tensor, end_of_turn: Tensor, lengths: Tensor) -> list[Tensor]:
        """Per prompt, the indices of the token rows this pooling reads.

        user_mask [B, T] marks user tokens; end_of_turn [B] is each prompt's closing-token index
        and lengths [B] its token count (padding excluded).
        """
        rows = []
        for i, mask in enumerate(user_mask):
            user = torch.nonzero(mask).flatten()
            if not len(user):
                raise DataError(f"prompt {i} has no user tokens after tokenisation; remove it")
            if self.method in ("max", "mean"):
                rows.append(user)
            elif self.method == "last":
                rows.append(user[-1:])
            else:
                at = self.row(int(user[-1]), int(end_of_turn[i]), int(lengths[i]), i)
                rows.append(torch.tensor([at]))
        return rows

    def pool(self, values: Tensor) -> Tensor:
        """[n_rows, d] of one prompt -> [d]."""
        if self.method == "max":
            return values.max(dim=0).values
        if self.method == "mean":
            return values.mean(dim=0)
        return values[0]
