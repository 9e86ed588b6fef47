"""The study's model id falls back to the Hub's spelling, with a message (offline: the first load is faked to fail)."""

from __future__ import annotations

import logging

import pytest

from deepfake_lib.modeling import frontends, models


def test_study_id_falls_back_to_the_hub_spelling(monkeypatch, caplog):
    tiny = frontends.build_tiny_model(seed=0)
    tried = []

    def fake_load(source, **kwargs):
        tried.append(source)
        if source == models.STUDY_MODEL_ID:
            raise ValueError(f"{source}: cannot load a model config/feature extractor from this Hub id: 404")
        return models.LoadedModel(
            tiny.model, tiny.feature_extractor, source, [], dict(tiny.model.config.id2label)
        )

    monkeypatch.setattr(frontends, "_load_pretrained", fake_load)
    with caplog.at_level(logging.WARNING, logger=frontends.__name__):
        loaded = models.load_model(models.STUDY_MODEL_ID)
    assert tried == [models.STUDY_MODEL_ID, models.MODEL_ID_FALLBACKS[models.STUDY_MODEL_ID]]
    assert loaded.source == "motheecreator/Deepfake-audio-detection"
    assert any("motheecreator" in n and "mo-thecreator" in n for n in loaded.notes)
    assert "motheecreator" in caplog.text


def test_other_ids_and_a_failing_fallback_still_raise(monkeypatch):
    def failing(source, **kwargs):
        raise ValueError(f"{source}: not found")

    monkeypatch.setattr(frontends, "_load_pretrained", failing)
    with pytest.raises(ValueError, match="someone/else"):
        models.load_model("someone/else")
    with pytest.raises(ValueError, match="both"):
        models.load_model(models.STUDY_MODEL_ID)
