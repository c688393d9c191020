"""The `advad` command: data listing, clear one-line errors, exit codes."""

from __future__ import annotations

import pytest

from advad.cli import main
from advad.data import list_datasets


def test_data_list_names_every_dataset(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("ADVAD_DATA", str(tmp_path))
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    for name in list_datasets():
        assert name in out
    assert "breast-cancer  present" in out and "kdd99          missing" in out


def test_missing_dataset_file_is_one_clear_line(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("ADVAD_DATA", str(tmp_path))
    assert main(["fit", "--model", "iforest", "--data", "thyroid", "--out", str(tmp_path / "m.advad")]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert "odds/thyroid.mat" in err and str(tmp_path) in err and "advad data fetch thyroid" in err


def test_unknown_model_and_bad_param_syntax(capsys):
    assert main(["bench", "--models", "nope", "--datasets", "loop", "--no-progress"]) == 1
    assert "unknown model 'nope'" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="key=value"):
        main(["bench", "--models", "iforest", "--param", "oops"])


def test_misspelt_param_stops_the_sweep_before_any_run(capsys, tmp_path):
    args = ["bench", "--models", "iforest,ae", "--datasets", "loop", "--seeds", "1", "--budget", "smoke",
            "--param", "epoch=3", "--no-progress", "--out", str(tmp_path)]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "has no parameter(s) ['epoch']" in err and "'epochs'" in err
    assert not (tmp_path / "results.sqlite").exists()  # nothing ran, nothing was recorded


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "bench" in capsys.readouterr().out


def test_plot_discriminator_map_writes_png_and_summary(capsys, tmp_path):
    import json

    out = tmp_path / "map.png"
    assert main(["plot", "discriminator-map", "--datasets", "four-dot", "--epochs", "1", "--resolution", "9",
                 "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and (tmp_path / "map.npz").exists()
    assert set(summary["fit_seconds"]) == {"rcgan/four-dot", "alad/four-dot"}
    assert len(summary["four_dot_dots_vs_gaps"]["rcgan/dxz"]) == 2
    assert main(["plot", "discriminator-map", "--datasets", "thyroid", "--out", str(out)]) == 1
    assert "need 2-D data: thyroid" in capsys.readouterr().err
