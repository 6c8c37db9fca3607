import pytest

from saeprobe.lm import precision


@pytest.mark.parametrize(
    ("flags", "fast"),
    [
        ({"avx2", "fma"}, False),
        # Measured on a 2-core Xeon with AVX512-BF16 and no AMX: autocast made SmolLM2 1.6x slower.
        ({"avx512f", "avx512_bf16"}, False),
        ({"avx512_bf16", "amx_bf16", "amx_tile"}, True),
    ],
)
def test_auto_autocast_is_on_only_where_bf16_matmul_is_fast_on_cpu(monkeypatch, flags, fast):
    monkeypatch.setattr(precision, "_cpu_flags", lambda: frozenset(flags))
    assert precision.fast_bf16("cpu") is fast
    assert precision.resolve_autocast(None, "cpu") is fast
    assert precision.resolve_autocast(True, "cpu") is True
