"""Per-prompt features: pooling over user tokens, SAE latents pooled per token, the cache."""

import numpy as np
import pytest
import torch

from saeprobe.errors import DataError
from saeprobe.features.cache import feature_key, load_features, save_features
from saeprobe.features.extract import extract_features
from saeprobe.features.pooling import Pooling
from saeprobe.lm.chat import tokenize_user_turn
from saeprobe.lm.hooks import capture_layers
from saeprobe.sae.io import save_sae
from saeprobe.sae.registry import create_sae

TEXTS = ["How do I bake bread at home?", "Describe a quiet morning by the sea, please.", "Hi"]
POOLS = [
    Pooling(),
    Pooling(method="mean"),
    Pooling(method="last"),
    Pooling(method="position", offset=1),
]


def test_pooling_reads_the_right_rows():
    values = torch.tensor([[9.0], [1.0], [3.0], [2.0], [7.0]])
    user = torch.tensor([[False, True, True, True, False]])
    layout = (user, torch.tensor([4]), torch.tensor([5]))  # closing token 4, 5 tokens
    expected = {
        "max": 3.0,
        "mean": 2.0,
        "last": 2.0,
        "position+1": 7.0,
        "position-2": 1.0,
        "eot+0": 7.0,
        "eot-4": 9.0,
        "resp-1": 7.0,
        "resp-5": 9.0,
    }
    for pool in [
        *POOLS[:3],
        Pooling(method="position", offset=1),
        Pooling(method="position", offset=-2),
        Pooling(method="position", anchor="end_of_user_turn", offset=0),
        Pooling(method="position", anchor="end_of_user_turn", offset=-4),
        Pooling(method="position", anchor="response_start", offset=-1),
        Pooling(method="position", anchor="response_start", offset=-5),
    ]:
        rows = pool.token_rows(*layout)[0]
        assert pool.pool(values[rows]).item() == expected[pool.name], pool.name


def test_position_past_a_prompt_end_is_an_error_not_padding():
    # Prompt 0 has 3 tokens in a batch 5 wide: its "+2" would be row 3, padding.
    user = torch.tensor([[False, True, False, False, False], [False, True, True, True, False]])
    layout = (user, torch.tensor([2, 4]), torch.tensor([3, 5]))
    with pytest.raises(
        DataError, match=r"position\+2: prompt 0 has 3 tokens.* -1\.\.\+1 .*not \+2"
    ):
        Pooling(method="position", offset=2).token_rows(*layout)
    with pytest.raises(DataError, match=r"position\+10: prompt 0 .* -1\.\.\+1 "):
        Pooling(method="position", offset=10).token_rows(*layout)
    with pytest.raises(DataError, match=r"resp-4: prompt 0 has 3 tokens.* -3\.\.-1 "):
        Pooling(method="position", anchor="response_start", offset=-4).token_rows(*layout)


@pytest.fixture(scope="module")
def topk_sae():
    return create_sae({"architecture": "topk", "d_in": 384, "d_sae": 96, "k": 8}, seed=1)


def test_features_equal_a_manual_single_prompt_computation(minilm, topk_sae):
    feats = extract_features(minilm, 3, TEXTS, {"t": topk_sae}, POOLS, batch_size=2, progress=False)
    assert feats.dense["max"].shape == (3, 384) and feats.latents["t"]["max"].shape == (3, 96)
    turn = tokenize_user_turn(minilm.tokenizer, TEXTS[1], 512)
    with torch.no_grad():
        h = capture_layers(
            minilm.model, minilm.blocks, [3], input_ids=torch.tensor([turn.input_ids])
        )[3][0]
        user = torch.tensor(turn.user_mask)
        z = topk_sae.encode(h[user])
        r = topk_sae.decode(z)
    last = int(torch.nonzero(user)[-1])
    np.testing.assert_allclose(feats.dense["mean"][1], h[user].mean(0).numpy(), atol=1e-5)
    np.testing.assert_allclose(feats.dense["position+1"][1], h[last + 1].numpy(), atol=1e-5)
    # Max-pooled latents are the max of per-token latents, not the SAE of a pooled residual.
    np.testing.assert_allclose(feats.latents["t"]["max"][1], z.max(0).values.numpy(), atol=1e-5)
    np.testing.assert_allclose(feats.reconstruction["t"]["last"][1], r[-1].numpy(), atol=1e-5)
    assert feats.n_user_tokens[1] == int(user.sum())


def test_cache_round_trip_and_key_sensitivity(minilm, topk_sae, tmp_path):
    feats = extract_features(minilm, 3, TEXTS, {"t": topk_sae}, POOLS[:2], progress=False)
    save_features(tmp_path / "f.safetensors", feats)
    back = load_features(tmp_path / "f.safetensors")
    np.testing.assert_array_equal(back.latents["t"]["max"], feats.latents["t"]["max"])
    np.testing.assert_array_equal(back.n_user_tokens, feats.n_user_tokens)
    save_sae(topk_sae, tmp_path / "sae")
    key = feature_key(minilm, 3, 512, POOLS[:2], TEXTS, {"t": tmp_path / "sae"})
    assert key == feature_key(minilm, 3, 512, POOLS[:2], TEXTS, {"t": tmp_path / "sae"})
    assert key != feature_key(minilm, 2, 512, POOLS[:2], TEXTS, {"t": tmp_path / "sae"})
    assert key != feature_key(
        minilm, 3, 512, POOLS[:2], [*TEXTS[:2], "Hi!"], {"t": tmp_path / "sae"}
    )
    # Each anchor has its own name, so features at one are never read back for another.
    anchors = ("last_user_token", "end_of_user_turn", "response_start")
    pools = [[Pooling(method="position", anchor=a, offset=-1)] for a in anchors]
    keys = {feature_key(minilm, 3, 512, p, TEXTS, {"t": tmp_path / "sae"}) for p in pools}
    assert len(keys) == 3


def test_sae_for_another_width_is_rejected(minilm):
    narrow = create_sae({"architecture": "relu", "d_in": 16, "d_sae": 32})
    with pytest.raises(DataError, match="d_in=16 but minilm has d_model=384"):
        extract_features(minilm, 3, TEXTS, {"narrow": narrow}, POOLS[:1], progress=False)


def test_empty_prompt_is_rejected(minilm):
    with pytest.raises(DataError, match="prompt is empty"):
        extract_features(minilm, 3, ["ok", "   "], {}, POOLS[:1], progress=False)


def test_per_token_rows_come_from_the_same_pass_and_round_trip(minilm, topk_sae, tmp_path):
    from saeprobe.errors import FormatError
    from saeprobe.features.cache import load_tokens, save_tokens, tokens_path

    eot = Pooling(method="position", anchor="end_of_user_turn", offset=0)
    pools = [Pooling(), eot]
    feats = extract_features(
        minilm, 3, TEXTS, {"t": topk_sae}, pools, batch_size=2, progress=False, per_token=True
    )
    tokens = feats.tokens
    assert tokens.residual.dtype == np.float16 and tokens.n_prompts == 3
    for i, text in enumerate(TEXTS):
        turn = tokenize_user_turn(minilm.tokenizer, text, 512)
        user = [j for j, m in enumerate(turn.user_mask) if m]
        rows = slice(tokens.offsets[i], tokens.offsets[i + 1])
        # The user's tokens, then the token closing the turn, in prompt order.
        assert tokens.positions[rows].tolist() == [*user, turn.end_of_turn]
        assert tokens.is_user[rows].tolist() == [True] * len(user) + [False]
        with torch.no_grad():
            h = capture_layers(
                minilm.model, minilm.blocks, [3], input_ids=torch.tensor([turn.input_ids])
            )[3][0]
        expected = h[tokens.positions[rows]].numpy()
        np.testing.assert_allclose(tokens.residual[rows], expected, rtol=2e-3, atol=2e-3)
        # Pooled features are those of the same rows: eot+0 is the last row, max the user max.
        np.testing.assert_allclose(feats.dense["eot+0"][i], expected[-1], atol=1e-5)
    latents = tokens.latents["t"]
    dense_z = latents.columns(np.arange(96))
    user_only = [
        np.flatnonzero(tokens.is_user[tokens.offsets[i] : tokens.offsets[i + 1]]) for i in range(3)
    ]
    for i in range(3):
        block = dense_z[tokens.offsets[i] : tokens.offsets[i + 1]]
        np.testing.assert_allclose(
            block[user_only[i]].max(0), feats.latents["t"]["max"][i], atol=2e-3
        )
    assert (np.count_nonzero(dense_z, axis=1) <= 8).all()  # TopK k=8 stays sparse
    path = tokens_path(tmp_path / "key.safetensors")
    assert path.name == "key.tokens-v1.safetensors"
    save_tokens(path, tokens)
    back = load_tokens(path)
    np.testing.assert_array_equal(back.residual, tokens.residual)
    np.testing.assert_array_equal(back.latents["t"].columns([5, 1]), latents.columns([5, 1]))
    with pytest.raises(FormatError, match=r"no per-token activations at .*enable per_token") as err:
        load_tokens(tmp_path / "pooled-only.tokens-v1.safetensors")
    assert "\n" not in str(err.value)
