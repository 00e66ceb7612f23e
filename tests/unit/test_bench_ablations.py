"""The benchmark's ablations switch off what they say they do."""

from __future__ import annotations

import pytest

from bench.runner import ABLATIONS, Ablation, missing_settings
from quizbot.config import Settings


@pytest.mark.parametrize("ablation", ABLATIONS, ids=lambda a: a.variant)
def test_each_ablation_sets_a_real_setting_away_from_its_default(ablation: Ablation) -> None:
    # A misspelt setting would be skipped, and one equal to the default would run the
    # bot as it is: either way the report would credit a measure with nothing.
    assert ablation.drop_indexes or ablation.overrides
    assert missing_settings(ablation.overrides) == []
    for name, value in ablation.overrides.items():
        assert Settings.model_fields[name].default != value, name


def test_the_variants_have_distinct_names() -> None:
    names = [a.variant for a in ABLATIONS]
    assert len(names) == len(set(names))


def test_missing_settings_names_the_unknown_ones() -> None:
    assert missing_settings({"db_pool_size": 1, "no_such_setting": True}) == ["no_such_setting"]
