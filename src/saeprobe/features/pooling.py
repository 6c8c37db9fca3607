"""How per-token vectors of one prompt become one vector.

Pooling runs over the user-turn tokens of the chat-formatted prompt (the user's own text; never
the template or special tokens), except `position`, which indexes relative to the last user
token so that template tokens after the turn (Gemma's `<end_of_turn>`) can be chosen:

    max        max over user tokens, per dimension (the study's best)
    mean       mean over user tokens
    last       the last user token
    position   last user token + offset (offset 1 = the first template token after the turn),
               clipped to the sequence

SAE latents are computed per token and pooled the same way: max-pooled latents, not the SAE of
a pooled residual.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict
from torch import Tensor


class Pooling(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    method: Literal["max", "mean", "last", "position"] = "max"
    offset: int = 0

    @property
    def name(self) -> str:
        return f"position{self.offset:+d}" if self.method == "position" else self.method

    def token_rows(self, user_mask: Tensor) -> list[Tensor]:
        """Per prompt, the indices of the token rows this pooling reads."""
        rows = []
        for mask in user_mask:
            user = torch.nonzero(mask).flatten()
            if self.method in ("max", "mean"):
                rows.append(user)
            else:
                at = int(user[-1]) + (self.offset if self.method == "position" else 0)
                rows.append(torch.tensor([min(max(at, 0), mask.shape[0] - 1)]))
        return rows

    def pool(self, values: Tensor) -> Tensor:
        """[n_rows, d] of one prompt -> [d]."""
        if self.method == "max":
            return values.max(dim=0).values
        if self.method == "mean":
            return values.mean(dim=0)
        return values[0]
