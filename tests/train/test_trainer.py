import json

import pytest
import torch

from saeprobe.data.planted import PlantedConfig, PlantedDictionary, PlantedSource
from saeprobe.errors import ConfigError, DataError
from saeprobe.sae.io import load_sae
from saeprobe.train import RunSpec, TensorSource, TrainConfig, Trainer
from saeprobe.train.checkpoint import checkpoint_path
from saeprobe.train.schedule import lr_at, sparsity_scale_at
from tests.conftest import sae_config

D_IN = 16


def _source(batch=64):
    return PlantedSource(PlantedDictionary(PlantedConfig(d=D_IN, n_features=48)), batch, seed=0)


def _cfg(tmp_path=None, **kw):
    base = dict(
        steps=30, lr=3e-3, lr_warmup_steps=5, progress=False, log_every=5, dead_after_tokens=256
    )
    if tmp_path is not None:
        base["checkpoint_dir"] = tmp_path
    return TrainConfig(**(base | kw))


def _runs(*variants):
    return [RunSpec(name=v, sae=sae_config(v, d_in=D_IN, d_sae=32)) for v in variants]


class _Interrupted(Exception):
    pass


class _KilledAt:
    """Wraps a source and dies when `stop` is reached, like a process killed mid-run."""

    def __init__(self, source, stop):
        self.source, self.stop = source, stop

    @property
    def d_in(self):
        return self.source.d_in

    def batches(self, start=0):
        for step, b in enumerate(self.source.batches(start), start):
            if step == self.stop:
                raise _Interrupted
            yield b


ALL = ["relu", "gated", "jumprelu", "jumprelu_qf", "topk", "batchtopk"]


def test_resume_after_interruption_is_bitwise_exact(tmp_path):
    full = Trainer(_cfg(tmp_path / "a"), _runs(*ALL)).fit(_source())
    cfg_b = _cfg(tmp_path / "b", checkpoint_every=10)
    with pytest.raises(_Interrupted):
        Trainer(cfg_b, _runs(*ALL)).fit(_KilledAt(_source(), stop=17))
    resumed = Trainer(cfg_b, _runs(*ALL)).fit(_source(), resume=True)
    for name in full.saes:
        a, b = full.saes[name].state_dict(), resumed.saes[name].state_dict()
        for key in a:
            assert torch.equal(a[key], b[key]), f"{name}.{key}"


def test_resume_rejects_a_changed_config(tmp_path):
    Trainer(_cfg(tmp_path, checkpoint_every=10), _runs("relu")).fit(_source())
    with pytest.raises(ConfigError, match="different configuration.*lr"):
        Trainer(_cfg(tmp_path, lr=1e-2), _runs("relu")).fit(_source(), resume=True)


def test_resume_without_checkpoint_dir_is_an_error():
    with pytest.raises(ConfigError, match="--checkpoint-dir"):
        Trainer(_cfg(), _runs("relu")).fit(_source(), resume=True)


def test_several_saes_in_one_loop_equal_separate_runs():
    together = Trainer(_cfg(), _runs("relu", "topk")).fit(_source())
    alone = Trainer(_cfg(), _runs("topk")).fit(_source())
    for key, t in alone.saes["topk"].state_dict().items():
        assert torch.equal(together.saes["topk"].state_dict()[key], t)


def test_decoder_rows_stay_unit_norm():
    result = Trainer(_cfg(), _runs("relu", "jumprelu")).fit(_source())
    for sae in result.saes.values():
        assert torch.allclose(sae.W_dec.norm(dim=1), torch.ones(32), atol=1e-5)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nonfinite_batch_is_an_error_and_last_checkpoint_survives(tmp_path, bad):
    good = _source()

    class _Poisoned:
        d_in = D_IN

        def batches(self, start=0):
            for step, b in enumerate(good.batches(start), start):
                if step == 25:
                    b = b.clone()
                    b[3, 2] = bad
                yield b

    with pytest.raises(DataError, match="batch 25 contains NaN or inf"):
        Trainer(_cfg(tmp_path, checkpoint_every=10), _runs("relu")).fit(_Poisoned())
    from saeprobe.train.checkpoint import load_checkpoint

    assert load_checkpoint(tmp_path).step == 20


def test_d_in_mismatch_is_a_clear_error():
    runs = [RunSpec(name="r", sae=sae_config("relu", d_in=D_IN + 1, d_sae=32))]
    with pytest.raises(DataError, match="d_in=17 but the activations have width 16"):
        Trainer(_cfg(), runs).fit(_source())


def test_duplicate_run_names_are_rejected():
    with pytest.raises(ConfigError, match="duplicate run names"):
        Trainer(_cfg(), _runs("relu") + _runs("relu"))


def test_inputs_are_normalised_and_scale_is_folded_at_save(tmp_path):
    data = (
        PlantedDictionary(PlantedConfig(d=D_IN, n_features=48)).sample(
            4096, torch.Generator().manual_seed(0)
        )
        * 50.0
    )
    result = Trainer(_cfg(normalization_batches=8), _runs("relu")).fit(TensorSource(data, 256))
    assert result.scale == pytest.approx(50.0, rel=0.1)
    result.save("relu", tmp_path / "sae")
    raw = load_sae(tmp_path / "sae")
    x = data[:100]
    assert torch.allclose(raw(x), result.saes["relu"](x / result.scale) * result.scale, atol=1e-3)


def test_finetune_from_saved_sae_with_reinit(tmp_path):
    first = Trainer(_cfg(), _runs("jumprelu")).fit(_source())
    first.save("jumprelu", tmp_path / "base")
    spec = RunSpec(
        name="ft",
        sae=sae_config("jumprelu", d_in=D_IN, d_sae=32),
        init_from=tmp_path / "base",
        reinit_fraction=0.25,
    )
    tuned = Trainer(_cfg(steps=1, lr=1e-12, lr_warmup_steps=0), [spec]).fit(_source())
    base = first.saes["jumprelu"].W_dec
    same = torch.nn.functional.cosine_similarity(tuned.saes["ft"].W_dec, base, dim=1) > 0.999
    assert int((~same).sum()) == 8  # exactly 25 % of 32 latents re-initialised


def test_finetune_from_wrong_width_is_rejected(tmp_path):
    Trainer(_cfg(), _runs("relu")).fit(_source()).save("relu", tmp_path / "base")
    spec = RunSpec(
        name="ft", sae=sae_config("relu", d_in=D_IN, d_sae=64), init_from=tmp_path / "base"
    )
    with pytest.raises(ConfigError, match="d_sae=32"):
        Trainer(_cfg(), [spec]).fit(_source())


def test_metrics_jsonl_is_written_and_trimmed_on_resume(tmp_path):
    metrics = tmp_path / "m.jsonl"
    cfg = _cfg(tmp_path / "ck", checkpoint_every=10, metrics_path=metrics)
    with pytest.raises(_Interrupted):
        Trainer(cfg, _runs("topk")).fit(_KilledAt(_source(), stop=17))
    assert [json.loads(x)["step"] for x in metrics.read_text().splitlines()] == [5, 10, 15]
    Trainer(cfg, _runs("topk")).fit(_source(), resume=True)
    records = [json.loads(x) for x in metrics.read_text().splitlines()]
    assert [r["step"] for r in records] == [5, 10, 15, 20, 25, 30]
    assert {"loss", "fvu", "l0", "mse", "dead_fraction", "lr"} <= set(records[-1])


def test_schedules_known_values():
    cfg = TrainConfig(steps=100, lr_warmup_steps=10, lr_decay_steps=20, sparsity_warmup_steps=50)
    assert lr_at(0, cfg, 1.0) == pytest.approx(0.1)
    assert lr_at(5, cfg, 1.0) == pytest.approx(0.55)
    assert lr_at(50, cfg, 1.0) == 1.0
    assert lr_at(90, cfg, 1.0) == pytest.approx(0.5)
    assert sparsity_scale_at(24, cfg) == pytest.approx(0.5)
    assert sparsity_scale_at(80, cfg) == 1.0


def test_checkpoint_write_is_atomic(tmp_path):
    Trainer(_cfg(tmp_path, checkpoint_every=10), _runs("relu")).fit(_source())
    assert [p.name for p in tmp_path.iterdir()] == [checkpoint_path(tmp_path).name]


def test_bf16_autocast_trains_with_fp32_thresholds():
    result = Trainer(_cfg(autocast_bf16=True), _runs("jumprelu", "topk")).fit(_source())
    sae = result.saes["jumprelu"]
    assert sae.threshold.dtype == torch.float32
    assert all(torch.isfinite(p).all() for p in sae.parameters())


def test_threshold_lr_scale_slows_only_the_thresholds():
    def trained(scale):
        spec = RunSpec(
            name="j", sae=sae_config("jumprelu", d_in=D_IN, d_sae=32, threshold_lr_scale=scale)
        )
        return Trainer(_cfg(steps=10), [spec]).fit(_source()).saes["j"]

    init = 0.001  # threshold_init default
    fast, slow = trained(1.0), trained(1e-6)
    assert (slow.threshold - init).abs().max() < 1e-6 < (fast.threshold - init).abs().max()


def test_max_grad_norm_bounds_what_adam_sees():
    # Clipped to a norm far below Adam's eps, an update is at most lr * norm / eps per step: the
    # parameters stay put. Unclipped, the same steps move the thresholds by about lr each.
    def trained(max_grad_norm):
        spec = RunSpec(name="j", sae=sae_config("jumprelu", d_in=D_IN, d_sae=32))
        cfg = _cfg(steps=10, max_grad_norm=max_grad_norm)
        return Trainer(cfg, [spec]).fit(_source()).saes["j"]

    init = 0.001  # threshold_init default
    clipped, free = trained(1e-14), trained(None)
    assert (clipped.threshold - init).abs().max() < 1e-6 < (free.threshold - init).abs().max()


def test_default_clips_every_early_step(monkeypatch):
    # The default clip binds from the first step (the gradient norms here are far above 0.01),
    # so Adam sees gradient directions, as SAELens' clip at 1.0 in its units does: unclipped,
    # saeprobe's BatchTopK trained 2 % worse than SAELens' at equal steps (docs/benchmarks.md).
    seen = []
    clip = torch.nn.utils.clip_grad_norm_

    def spy(params, max_norm, *args, **kw):
        norm = clip(params, max_norm, *args, **kw)
        seen.append((max_norm, float(norm)))
        return norm

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", spy)
    spec = RunSpec(name="b", sae=sae_config("batchtopk", d_in=D_IN, d_sae=32))
    cfg = TrainConfig(steps=5, progress=False)
    Trainer(cfg, [spec]).fit(_source())
    assert TrainConfig().max_grad_norm == 0.01
    assert len(seen) == 5 and all(m == 0.01 < norm for m, norm in seen), seen
    seen.clear()
    Trainer(cfg.model_copy(update={"max_grad_norm": None}), [spec]).fit(_source())
    assert seen == []


def test_an_unclipped_checkpoint_is_not_resumed_clipped(tmp_path):
    # A checkpoint written before clipping was the default carries no max_grad_norm; resuming it
    # under the new default would change the run half-way.
    spec = _runs("topk")
    Trainer(_cfg(tmp_path, max_grad_norm=None, checkpoint_every=10), spec).fit(_source())
    with pytest.raises(ConfigError, match=r"max_grad_norm: None -> 0\.01"):
        Trainer(_cfg(tmp_path, checkpoint_every=10), spec).fit(_source(), resume=True)


def test_max_grad_norm_off_from_the_command_line_or_yaml():
    assert TrainConfig(max_grad_norm="off").max_grad_norm is None
    assert TrainConfig(max_grad_norm=False).max_grad_norm is None  # YAML 1.1's bare `off`
    assert TrainConfig(max_grad_norm="0.5").max_grad_norm == 0.5
    with pytest.raises(ValueError, match="neither a number nor 'off'"):
        TrainConfig(max_grad_norm="lots")


def test_max_grad_norm_must_be_positive():
    with pytest.raises(ValueError, match="max_grad_norm"):
        TrainConfig(max_grad_norm=0)
