"""Replacing a saved SAE leaves a complete SAE at the path whatever fails: the old one when the
swap fails, the new (or old) one when the process dies between the swap's two renames."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from saeprobe.errors import FormatError
from saeprobe.sae import create_sae
from saeprobe.sae.io import load_sae, save_sae
from tests.conftest import sae_config

ROOT = Path(__file__).resolve().parents[2]


def _same(a, b) -> bool:
    return all(torch.equal(t, b.state_dict()[k]) for k, t in a.state_dict().items())


def test_a_failed_swap_keeps_the_old_sae(tmp_path, monkeypatch):
    target = tmp_path / "s"
    old, new = (create_sae(sae_config("relu"), seed=s) for s in (0, 1))
    save_sae(old, target)
    real = os.replace

    def refuse_moving_in(src, dst):
        if Path(dst) == target:
            raise OSError("disk full")
        return real(src, dst)

    monkeypatch.setattr(os, "replace", refuse_moving_in)
    with pytest.raises(OSError, match="disk full"):
        save_sae(new, target)
    monkeypatch.undo()
    assert _same(load_sae(target), old)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]  # nothing left behind


def test_a_crash_between_the_renames_loses_nothing(tmp_path):
    target = tmp_path / "s"
    old, new = (create_sae(sae_config("topk"), seed=s) for s in (0, 1))
    save_sae(old, target)
    save_file(new.state_dict(), tmp_path / "new.safetensors")  # the child saves exactly this SAE
    # The child dies (no cleanup, no handlers) the moment the new SAE is renamed into place.
    child = textwrap.dedent(
        f"""
        import os
        from pathlib import Path
        from safetensors.torch import load_file
        from saeprobe.sae import create_sae
        from saeprobe.sae.io import save_sae
        sae = create_sae({sae_config("topk")!r})
        sae.load_state_dict(load_file({str(tmp_path / "new.safetensors")!r}))
        real, target = os.replace, Path({str(target)!r})
        def die_moving_in(src, dst):
            if Path(dst) == target:
                os._exit(3)
            return real(src, dst)
        os.replace = die_moving_in
        save_sae(sae, target)
        """
    )
    r = subprocess.run([sys.executable, "-c", child], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 3, r.stderr
    loaded = load_sae(target)  # the new SAE was complete before the swap began
    assert _same(loaded, new)
    save_sae(old, target)  # and the next save cleans up what the crash left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.safetensors", "s"]


def test_an_untrained_batchtopk_is_refused_before_its_threshold_exists(tmp_path):
    sae = create_sae(sae_config("batchtopk"), seed=0)
    with pytest.raises(FormatError, match="threshold") as err:
        save_sae(sae, tmp_path / "b")
    assert "\n" not in str(err.value)
    assert not (tmp_path / "b").exists()
