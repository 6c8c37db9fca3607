"""The built-in prompt set is packaged data; the loader keeps the public names and the default
config wraps harmless prompts in the jailbreak wrappers too."""

from collections import Counter

from saeprobe.data.prompts import default_dataset_config, default_prompts
from saeprobe.data.prompts.default_prompts import load_prompt_data


def test_packaged_prompt_data_loads_into_the_public_names():
    data = load_prompt_data()
    assert tuple(data["shapes"]) == default_prompts.SHAPES and len(default_prompts.SHAPES) == 16
    n_harmful = len(default_prompts.HARMFUL_ACTIONS) + len(default_prompts.HARMFUL_REQUESTS)
    assert len(default_prompts.HARMFUL_PROMPTS) == n_harmful >= 300
    assert len(default_prompts.HARMLESS_PROMPTS) >= 300
    assert not set(default_prompts.HARMFUL_PROMPTS) & set(default_prompts.HARMLESS_PROMPTS)
    assert "weapons and explosives" in data["harmful_actions"]


def test_both_classes_use_the_shapes_equally_often():
    def shapes(prompts):
        heads = Counter()
        for p in prompts:
            for s in default_prompts.SHAPES:
                head, _, tail = s.partition("{vp}")
                if p.startswith(head) and p.endswith(tail):
                    heads[s] += 1
                    break
        return heads

    n = len(default_prompts.HARMFUL_ACTIONS)
    harmful = shapes(default_prompts.HARMFUL_PROMPTS[:n])
    harmless = shapes(default_prompts.HARMLESS_PROMPTS[: len(default_prompts.HARMLESS_ACTIONS)])
    assert set(harmful) == set(harmless) == set(default_prompts.SHAPES)
    assert max(harmful.values()) - min(harmful.values()) <= 1


def test_default_config_wraps_harmless_prompts():
    assert default_dataset_config().jailbreaks_on_harmless
