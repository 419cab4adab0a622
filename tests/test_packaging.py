"""The wheel ships both apps with templates, static files and migrations, and nothing else."""

from __future__ import annotations

import email
import re
import subprocess
import sys
import tarfile
import tomllib
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


def build(kind: str, outdir: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "build", f"--{kind}", "--no-isolation"]
        + ["--outdir", str(outdir)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=300,
    )
    (artifact,) = outdir.glob("*.tar.gz" if kind == "sdist" else "*.whl")
    return artifact


def test_sdist_holds_the_apps_and_no_part_of_the_tests(tmp_path) -> None:
    sdist = build("sdist", tmp_path)
    with tarfile.open(sdist) as archive:
        names = [name.split("/", 1)[1] for name in archive.getnames() if "/" in name]
    top_level = {name.split("/")[0] for name in names}
    assert top_level == {
        "webhooks",
        "realtime",
        "README.md",
        "LICENSE",
        "pyproject.toml",
        "PKG-INFO",
        ".gitignore",  # hatchling adds it to every sdist
    }
    assert not [name for name in names if name.startswith("tests")]
    assert "webhooks/testing.py" in names
    assert "realtime/static/realtime/live.js" in names


def test_wheel_metadata_names_the_project_for_an_index_page(tmp_path) -> None:
    wheel = build("wheel", tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        (path,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        metadata = email.message_from_bytes(archive.read(path))
    assert metadata["Name"] == "django-webhook-inbox"
    assert metadata["Author"]
    assert "webhooks" in metadata["Keywords"].split(",")
    urls = dict(value.split(", ", 1) for value in metadata.get_all("Project-URL"))
    assert {"Homepage", "Source", "Issues", "Documentation"} <= set(urls)
    assert all(url.startswith("https://") for url in urls.values())
    classifiers = metadata.get_all("Classifier")
    for expected in (
        "Framework :: Django :: 5.2",
        "Programming Language :: Python :: 3.11",
        "Intended Audience :: Developers",
        "Development Status :: 4 - Beta",
        "Typing :: Typed",
    ):
        assert expected in classifiers
    requirements = metadata.get_all("Requires-Dist")
    (cryptography,) = [r for r in requirements if r.startswith("cryptography")]
    assert "<" not in cryptography  # a library leaves the upper bound to the project
    extras = set(metadata.get_all("Provides-Extra"))
    assert {"server", "redis"} <= extras
    # An index page has no repository beside it: images must be absolute URLs.
    description = metadata.get_payload()
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", description)
    assert images and all(image.startswith("https://") for image in images)


def test_readme_extras_table_names_every_extra_the_package_declares() -> None:
    declared = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
            "optional-dependencies"
        ]
    )
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("| extra | installs | for |") :]
    table = table[: table.index("\n\n")]
    listed = set(re.findall(r"^\| `\[(\w+)\]` \|", table, flags=re.MULTILINE))
    assert listed == {"server", "redis", "tasks", "celery", "metrics", "otel"}
    assert declared <= listed
