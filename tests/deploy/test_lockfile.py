"""requirements.lock, the pins the Docker image installs: every dependency of pyproject.toml,
within its specifier and hash-checked, compiled for the image's Python."""

from __future__ import annotations

import re
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.deploy.artefacts import LOCK, ROOT, final_stage


def lock_entries() -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) from requirements.lock."""
    text = LOCK.read_text(encoding="utf-8")
    entries: dict[str, tuple[str, list[str]]] = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text.split("\n\n", 1)[1]):
        logical = re.sub(r"\\\n\s*", " ", block.split("#", 1)[0]).strip()
        if not logical:
            continue
        first, *options = logical.split()
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==([A-Za-z0-9.+!_-]+)", first)
        assert match, f"not pinned with ==: {first}"
        hashes = [o.removeprefix("--hash=sha256:") for o in options if o.startswith("--hash=")]
        assert hashes and all(re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes), f"{first}: sha256 hashes needed"
        assert len(hashes) == len(options), f"{first}: unexpected options {options}"
        entries[canonicalize_name(match.group(1))] = (match.group(2), hashes)
    return entries


def test_lock_pins_every_dependency_within_pyproject_specifiers() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    entries = lock_entries()
    needed = [Requirement(r) for r in pyproject["project"]["dependencies"] + pyproject["build-system"]["requires"]]
    for requirement in needed:
        name = canonicalize_name(requirement.name)
        assert name in entries, f"{requirement.name} is missing from requirements.lock"
        version = entries[name][0]
        assert requirement.specifier.contains(version, prereleases=True), f"{name}=={version} vs {requirement}"
    assert "greenlet" in entries, "SQLAlchemy[asyncio] needs greenlet"
    dev = {canonicalize_name(Requirement(r).name) for r in pyproject["project"]["optional-dependencies"]["dev"]}
    assert not dev & set(entries), f"dev tools do not belong in the image: {sorted(dev & set(entries))}"


def test_lock_targets_the_image_python() -> None:
    header = LOCK.read_text(encoding="utf-8").split("\n\n", 1)[0]
    target = re.search(r"--python-version (3\.\d+)", header)
    assert target, "the lock's header records how it was compiled"
    assert final_stage().base.startswith(f"python:{target.group(1)}-"), "recompile the lock for the image's Python"
