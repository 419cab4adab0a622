"""The wheel ships both apps with templates, static files and migrations, and nothing else."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_contains_the_apps_and_nothing_of_the_project(tmp_path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--outdir",
            str(tmp_path),
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {name.split("/")[0] for name in names if "/" in name}
    assert {"webhooks", "realtime"} <= top_level
    assert not top_level & {"project", "orders", "tests", "templates", "bench"}
    assert "manage.py" not in names
    assert "webhooks/migrations/0001_initial.py" in names
    assert "webhooks/py.typed" in names and "realtime/py.typed" in names
    # webhooks_send renders its deliveries from these.
    assert "webhooks/samples/stripe/payment_intent.succeeded.json" in names
    assert "webhooks/samples/twilio/manifest.json" in names
    for app in ("webhooks", "realtime"):
        for folder in ("templates", "static"):
            source = (
                sorted(
                    str(path.relative_to(ROOT))
                    for path in (ROOT / app / folder).rglob("*")
                    if path.is_file()
                )
                if (ROOT / app / folder).exists()
                else []
            )
            assert set(source) <= set(names), (
                f"{app}/{folder} files missing from the wheel"
            )
