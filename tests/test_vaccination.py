"""Vaccinated training: fabrication errors drawn for every batch, seeded, recorded; the plain path is unchanged."""

from __future__ import annotations

import json

import numpy as np
import pytest

from quaton_fab.optics.perturbation import VACCINATION_SETS, ErrorMagnitudes
from quaton_fab.training import ConfigError, Trainer, TrainConfig, preset


def tiny(**overrides):
    values = dict(train_samples=64, val_samples=32, test_samples=32, epochs=1, neurons=16, layers=2,
                  spacing_m=10e-6, batch_size=32)
    values.update(overrides)
    return preset("tiny", **values)


VACC = {"set": "2pp", "magnitudes": VACCINATION_SETS["2pp"].to_dict()}


def test_plain_config_and_design_record_are_unchanged():
    config = tiny()
    assert config.vaccinate is None and "vaccinate" not in config.to_dict()
    assert TrainConfig.from_dict(config.to_dict()) == config
    vaccinated = config.replace(vaccinate=VACC)
    assert vaccinated.to_dict()["vaccinate"] == VACC
    assert TrainConfig.from_dict(vaccinated.to_dict()) == vaccinated


def test_vaccinated_training_is_seeded_recorded_and_differs_from_plain(tmp_path):
    plain = Trainer(tiny(), tmp_path / "plain").fit().design
    runs = [Trainer(tiny(vaccinate=VACC), tmp_path / f"v{i}").fit().design for i in range(2)]
    assert np.array_equal(runs[0].level_indices, runs[1].level_indices)  # same seed, same draws
    assert runs[0].metrics["test"] == runs[1].metrics["test"]
    assert not np.array_equal(runs[0].level_indices, plain.level_indices)
    runs[0].save(tmp_path / "saved")
    training = json.loads((tmp_path / "saved" / "design.json").read_text())["training"]
    assert training["vaccinate"] == VACC
    record = training["vaccination"]
    assert record["set"] == "2pp" and record["magnitudes"]["height-noise"] == {"sigma": pytest.approx(20.0),
                                                                               "unit": "nm"}
    assert "seed" in record["draws"]
    assert "vaccination" not in plain.training and "vaccinate" not in plain.training
    other_seed = Trainer(tiny(vaccinate=VACC, seed=1), tmp_path / "s1").fit().design
    assert not np.array_equal(other_seed.level_indices, runs[0].level_indices)


def test_vaccinated_run_resumes_to_the_uninterrupted_result(tmp_path):
    from quaton_fab.training import TrainingInterrupted

    config = tiny(vaccinate=VACC, train_samples=96)
    full = Trainer(config, tmp_path / "full").fit().design

    class StopAfterOne:
        def __init__(self, trainer):
            self.trainer = trainer

        def on_epoch_start(self, *args):
            pass

        def on_step(self, *args):
            self.trainer.request_stop()

        def on_eval(self, *args):
            pass

        def on_epoch_end(self, *args):
            pass

    trainer = Trainer(config, tmp_path / "cut")
    trainer.callbacks = StopAfterOne(trainer)
    with pytest.raises(TrainingInterrupted):
        trainer.fit()
    resumed = Trainer(config, tmp_path / "cut").fit(resume=True).design
    assert np.array_equal(resumed.level_indices, full.level_indices)


@pytest.mark.parametrize("vaccinate,needle", [
    ({"set": "2pp", "magnitudes": {"height_noise_m": -1.0}}, "height-noise"),
    ({"set": "2pp", "magnitudes": {"warp": 1.0}}, "unknown"),
    ({"set": "2pp"}, "vaccinate must be"),
    ("2pp", "vaccinate must be"),
])
def test_bad_vaccination_settings_are_refused(vaccinate, needle):
    with pytest.raises(ConfigError, match=needle):
        tiny(vaccinate=vaccinate)


def test_vaccination_needs_the_relief_model():
    with pytest.raises(ConfigError, match="relief model"):
        tiny(model="thin", vaccinate={"set": None, "magnitudes": ErrorMagnitudes(shift_m=1e-7).to_dict()})


def test_cli_vaccinate_options(tmp_path):
    from typer.testing import CliRunner

    from quaton_fab.cli.app import app

    runner = CliRunner()
    base = ["train", "--preset", "tiny", "--neurons", "16", "--layers", "2", "--spacing", "10um", "--epochs", "1",
            "--train-samples", "32", "--val-samples", "16", "--test-samples", "16"]
    result = runner.invoke(app, [*base, "--vaccinate-shift", "1px", "--vaccinate-height-noise", "30nm",
                                 "--out", str(tmp_path / "v")])
    assert result.exit_code == 0, result.output
    mags = json.loads((tmp_path / "v" / "design.json").read_text())["training"]["vaccinate"]["magnitudes"]
    assert mags["shift_m"] == pytest.approx(0.78e-6) and mags["height_noise_m"] == pytest.approx(30e-9)
    assert mags["index"] == 0.0
    bad = runner.invoke(app, [*base, "--vaccinate", "2pp", "--vaccinate-rotation", "-1", "--out", str(tmp_path / "b")])
    assert bad.exit_code == 2 and len(bad.output.strip().splitlines()) == 1 and "rotation" in bad.output
