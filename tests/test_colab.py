"""The Colab route: one params_file, Drive checked before anything writes, the model-id fallback."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from deepfake_lib.config import ConfigError, ExperimentConfig
from deepfake_lib.notebook import colab

ROOT = Path(__file__).resolve().parents[1]


def test_params_file_is_read_like_make_demo_reads_it():
    from deepfake_lib.notebook.series import read_params_yaml

    values = colab.read_params_file(str(ROOT / "params" / "colab_t4.yaml"))
    assert values == read_params_yaml(ROOT / "params" / "colab_t4.yaml")
    assert values["learning_rate"] == pytest.approx(3e-5) and isinstance(values["learning_rate"], float)


def test_params_file_from_a_url_and_bad_keys(monkeypatch, tmp_path):
    body = (ROOT / "params" / "colab_t4.yaml").read_bytes()

    class Response(io.BytesIO):
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    seen = []
    monkeypatch.setattr(
        colab.urllib.request, "urlopen", lambda url, timeout: seen.append(url) or Response(body)
    )
    url = "https://example.org/colab_t4.yaml"
    assert colab.read_params_file(url) == colab.read_params_file(
        str(ROOT / "params" / "colab_t4.yaml")
    ) and seen == [url]
    bad = tmp_path / "bad.yaml"
    bad.write_text("epohcs: 3\n")
    with pytest.raises(ConfigError, match="epohcs"):
        colab.read_params_file(str(bad))
    chained = tmp_path / "chained.yaml"
    chained.write_text("params_file: other.yaml\n")
    with pytest.raises(ConfigError, match="cannot set params_file"):
        colab.read_params_file(str(chained))


def test_apply_params_file_replaces_the_cell_but_papermill_injections_win(tmp_path):
    params = tmp_path / "p.yaml"
    params.write_text("epochs: 3\nbatch_size: 4\nrun_dir: runs/x\n")
    namespace = {"epochs": 16, "batch_size": 16, "run_dir": "runs/demo", "params_file": str(params)}
    line = colab.apply_params_file(namespace)
    assert namespace["epochs"] == 3 and namespace["batch_size"] == 4 and namespace["run_dir"] == "runs/x"
    assert "3 values applied" in line
    injected = "# Parameters\nbatch_size = 8\nparams_file = '" + str(params) + "'\n"
    namespace = {"epochs": 16, "batch_size": 8, "params_file": str(params), "In": ["", injected]}
    line = colab.apply_params_file(namespace)
    assert (
        namespace["batch_size"] == 8 and namespace["epochs"] == 3 and "kept the injected batch_size" in line
    )
    assert "none" in colab.apply_params_file({"params_file": ""})
    assert ExperimentConfig().params_file == ""


def test_drive_check_says_clearly_when_drive_is_not_mounted(tmp_path):
    point = tmp_path / "drive"
    run_dir = f"{point}/MyDrive/runs/x"
    assert "this machine's disk" in colab.check_drive("runs/demo", mount_point=point, in_colab=False)
    assert "forgets" in colab.check_drive("runs/demo", mount_point=point, in_colab=True)
    with pytest.raises(colab.DriveNotMountedError, match="not Colab"):
        colab.check_drive(run_dir, mount_point=point, in_colab=False)
    mounted = []
    status = colab.check_drive(
        run_dir,
        mount_point=point,
        in_colab=True,
        mount=lambda p: mounted.append(p) or (Path(p) / "MyDrive").mkdir(parents=True),
    )
    assert mounted == [str(point)] and "mounted" in status
    assert "is mounted" in colab.check_drive(run_dir, mount_point=point, in_colab=True, mount=lambda p: None)
    stray = tmp_path / "stray"
    (stray / "MyDriveTypo").mkdir(parents=True)  # a notebook wrote here before mounting
    with pytest.raises(
        colab.DriveNotMountedError, match="NOT mounted.*Mountpoint must not already contain files"
    ):
        colab.check_drive(f"{stray}/MyDrive/runs/x", mount_point=stray, in_colab=True, mount=lambda p: None)
    with pytest.raises(colab.DriveNotMountedError, match="NOT mounted"):
        colab.check_drive(
            run_dir.replace(str(point), str(tmp_path / "empty")),
            mount_point=tmp_path / "empty",
            in_colab=True,
            mount=lambda p: None,
        )


def test_the_colab_drive_file_is_colab_t4_with_the_run_folder_on_drive():
    from deepfake_lib.notebook.series import read_params_yaml

    t4 = read_params_yaml(ROOT / "params" / "colab_t4.yaml")
    drive = read_params_yaml(ROOT / "params" / "colab_t4_drive.yaml")
    assert drive["run_dir"].startswith(colab.DRIVE_MOUNT_POINT + "/MyDrive/")
    assert {k: v for k, v in drive.items() if k != "run_dir"} == {
        k: v for k, v in t4.items() if k != "run_dir"
    }
    guide = (ROOT / "Colab_setup.md").read_text()
    assert "params/colab_t4_drive.yaml" in guide and "NOT mounted" in guide
