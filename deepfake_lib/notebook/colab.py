"""The Colab route: one ``params_file`` parameter, and a run folder on Google Drive checked first.

- :func:`read_params_file` reads a parameter YAML from a path or an http(s) URL exactly as
  ``make demo PARAMS=`` does (:func:`deepfake_lib.notebook.series.read_params_yaml`): every key must
  be a parameter, and values are typed like :meth:`ExperimentConfig.from_yaml` types them.
- :func:`apply_params_file` puts those values into a notebook's namespace, after the parameters
  cell: the file replaces the cell's values; a value papermill injected with ``-p`` wins.
- :func:`check_drive` runs before anything writes: a run folder under Colab's Drive mount point
  needs Drive mounted, and mounting fails once a notebook has written there unmounted.
"""

from __future__ import annotations

import os
import sys
import tempfile
import urllib.request
from collections.abc import Callable, MutableMapping
from pathlib import Path
from typing import Any

from deepfake_lib.config import ConfigError, ExperimentConfig, resolve_path
from deepfake_lib.notebook.series import display_path, injected_parameter_names, read_params_yaml

__all__ = [
    "DRIVE_MOUNT_POINT",
    "DriveNotMountedError",
    "apply_params_file",
    "check_drive",
    "read_params_file",
]

DRIVE_MOUNT_POINT = "/content/drive"
"""Where Colab mounts Google Drive (``drive.mount``)."""
MOUNT_CELL = 'from google.colab import drive; drive.mount("/content/drive")'


class DriveNotMountedError(RuntimeError):
    """The run folder is on Google Drive, and Drive is not mounted (or cannot be)."""


def read_params_file(source: str, *, timeout_s: float = 30.0) -> dict[str, Any]:
    """Parameter values from a YAML file ``source``: a path (relative to the project root) or an
    ``http(s)://`` URL (downloaded, then read the same way). Raises :class:`ConfigError` naming
    a key that is no parameter, or ``params_file`` itself (a file cannot chain another)."""
    if source.startswith(("http://", "https://")):
        with urllib.request.urlopen(source, timeout=timeout_s) as response:  # noqa: S310 (http(s) only)
            body = response.read()
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "params.yaml"
            path.write_bytes(body)
            values = read_params_yaml(path)
    else:
        values = read_params_yaml(resolve_path(source))
    if "params_file" in values:
        raise ConfigError(f"{source}: a params file cannot set params_file")
    return values


def apply_params_file(namespace: MutableMapping[str, Any]) -> str:
    """In a notebook (``globals()``): apply the parameter file named by ``params_file``.

    Values of the file replace the parameters cell's; names papermill injected (``-p``) keep their
    injected value. Returns a line saying what was applied (nothing when ``params_file`` is empty).
    """
    cfg = ExperimentConfig.from_params(namespace)
    if not cfg.params_file:
        return "params_file: none (the parameters cell's values apply)"
    values = read_params_file(cfg.params_file)
    injected = set(injected_parameter_names(namespace.get("In") or namespace.get("_ih") or [])) - {
        "params_file"
    }
    applied = {k: v for k, v in values.items() if k not in injected}
    namespace.update(applied)
    ExperimentConfig.from_params(namespace)  # the result must still be a valid configuration
    kept = sorted(set(values) & injected)
    return f"params_file {cfg.params_file}: {len(applied)} values applied ({', '.join(sorted(applied))})" + (
        f"; kept the injected {', '.join(kept)}" if kept else ""
    )


def _is_mounted(mount_point: Path) -> bool:
    return os.path.ismount(mount_point) or (mount_point / "MyDrive").is_dir()


def check_drive(
    run_dir: str | os.PathLike[str],
    *,
    mount_point: str | os.PathLike[str] = DRIVE_MOUNT_POINT,
    in_colab: bool | None = None,
    mount: Callable[[str], None] | None = None,
) -> str:
    """Check, before anything is written, that ``run_dir`` can be used; returns a status line.

    A run folder under ``mount_point`` (Colab's Drive mount) needs Drive mounted: on Colab an
    unmounted Drive is mounted here (``mount``, default ``google.colab.drive.mount``: it asks for
    permission) when the mount point is empty; when a notebook already wrote there unmounted, the
    mount would fail ("Mountpoint must not already contain files"), and
    :class:`DriveNotMountedError` says how to clear it. Outside Colab a Drive path is refused.
    A run folder elsewhere is used as is (on Colab, the line says that the runtime forgets it).
    """
    colab = ("google.colab" in sys.modules) if in_colab is None else in_colab
    point = Path(mount_point)
    run = str(run_dir)
    if not run.startswith(str(point)):
        where = f"run folder {display_path(resolve_path(run))}"
        if colab:
            return (
                f"{where}: on this Colab runtime's own disk, which it forgets when it disconnects; for a run "
                f"folder that notebook 04 can read later, set run_dir under {point}/MyDrive (Colab_setup.md)."
            )
        return f"{where}: on this machine's disk."
    if not colab:
        raise DriveNotMountedError(
            f"run_dir {run} is on Colab's Google Drive mount point, but this is not Colab"
        )
    if _is_mounted(point):
        return f"Google Drive is mounted; run folder {run}."
    if point.exists() and any(point.iterdir()):
        raise DriveNotMountedError(
            f"run_dir {run} is on Google Drive, but Drive is NOT mounted, and {point} already holds files that a "
            f"notebook wrote there before Drive was mounted; drive.mount would fail with 'Mountpoint must not "
            f"already contain files'. Move anything you need elsewhere, delete the folder (!rm -rf {point}), then "
            f"run this cell again (it mounts Drive)."
        )
    if mount is None:
        from google.colab import drive  # type: ignore[import-not-found]

        mount = drive.mount
    mount(str(point))
    if not _is_mounted(point):
        raise DriveNotMountedError(
            f"Google Drive is NOT mounted at {point}; run `{MOUNT_CELL}` in a cell, then this one"
        )
    return f"Google Drive mounted at {point}; run folder {run}."
