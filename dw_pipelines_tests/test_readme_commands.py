"""The README's commands, run as a newcomer runs them: `make demo`, then every shell block in a
fresh login shell from the project root, with nothing exported.

The project is copied to a temporary directory, so `.env`, `.dw` and the demo's S3 server are
this test's own, with `.venv` linked to the venv running the tests (`make` is told the install is
done). The environment holds only PATH, HOME and PYTHONPATH naming the copy: the venv's editable
install may point at another checkout, and the copy's code is the code under test. A block that
cannot run after `make demo` on a machine like this one says why in the README, with
`<!-- readme-test: skip: <reason> -->` on the line before it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SKIP = re.compile(r"<!--\s*readme-test:\s*skip:\s*(?P<reason>.+?)\s*-->")
FENCE = re.compile(r"^(?P<indent>\s*)```sh\s*$")
# What `make demo` must not print: Dagster's per-event DEBUG lines and warnings per command.
NOISE = ("DEBUG", "Warning:", "deprecated")


@dataclass(frozen=True)
class Block:
    line: int
    script: str
    skip: str | None


def readme_blocks(text: str) -> list[Block]:
    """The ```sh blocks of the README (indented ones too), each with its skip reason, if any."""
    lines = text.splitlines()
    blocks = []
    for number, line in enumerate(lines):
        fence = FENCE.match(line)
        if fence is None:
            continue
        end = next(i for i in range(number + 1, len(lines)) if lines[i].strip() == "```")
        before = next((lines[i] for i in range(number - 1, -1, -1) if lines[i].strip()), "")
        skip = SKIP.search(before)
        script = textwrap.dedent("\n".join(lines[number + 1 : end]))
        blocks.append(Block(number + 1, script, skip["reason"] if skip else None))
    return blocks


BLOCKS = readme_blocks((ROOT / "README.md").read_text())


@dataclass(frozen=True)
class DemoProject:
    root: Path
    env: dict[str, str]
    output: str


def plain_env(root: Path, home: Path) -> dict[str, str]:
    return {
        "PATH": f"{root / '.venv' / 'bin'}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "PYTHONPATH": str(root),
    }


@pytest.fixture(scope="module")
def demo_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoProject]:
    root = tmp_path_factory.mktemp("project")
    shutil.copytree(
        ROOT,
        root,
        dirs_exist_ok=True,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", ".venv-*", ".dw", ".env", "__pycache__", "*.egg-info", ".*_cache", "bench",
            ".tmp_dagster_home_*",
        ),
    )  # fmt: skip
    (root / ".venv").symlink_to(Path(sys.prefix))
    env = plain_env(root, tmp_path_factory.mktemp("home"))
    stamp = ".venv/.installed"
    try:
        done = subprocess.run(
            ["make", "-o", stamp, "demo"],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
        yield DemoProject(root, env, done.stdout + done.stderr)
    finally:
        server = root / ".dw" / "s3" / "server.json"
        pid = json.loads(server.read_text())["pid"] if server.exists() else None
        subprocess.run(["make", "-o", stamp, "clean"], cwd=root, env=env, capture_output=True)
        # The demo's S3 server outlives `make demo` by design; it must not outlive this test,
        # even if `make clean` could not stop it.
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_make_demo_prints_a_short_progress_log_and_the_summary(demo_project: DemoProject) -> None:
    output = demo_project.output

    assert [line for line in output.splitlines() if any(n in line for n in NOISE)] == []
    assert "demo_shop.orders: read 2000, inserted 2000" in output
    assert "Synced into the warehouse" in output
    summary = output[output.index("Synced into the warehouse") :]
    assert re.search(r"demo_shop\.orders\s+2000\s+incremental_merge\s+2000\s+2000\s+0\s+0", summary)
    assert len(output.splitlines()) < 100


def test_make_demo_writes_the_settings_every_command_reads_to_dot_env(
    demo_project: DemoProject,
) -> None:
    env_file = (demo_project.root / ".env").read_text()

    assert f"DAGSTER_HOME={demo_project.root / '.dw' / 'dagster'}\n" in env_file
    assert f"DW_DEMO_SHOP_URL=sqlite:///{demo_project.root / '.dw' / 'demo_shop.sqlite'}\n" in (
        env_file
    )
    assert "DW_S3_SECRET_ACCESS_KEY=" in env_file
    assert (demo_project.root / ".env").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize(
    "block", [pytest.param(b, id=f"README.md:{b.line}") for b in BLOCKS]
)  # fmt: skip
def test_a_readme_command_runs_in_a_plain_shell_after_make_demo(
    block: Block, demo_project: DemoProject
) -> None:
    if block.skip:
        pytest.skip(block.skip)
    done = subprocess.run(
        ["bash", "-lc", f"set -e\n{block.script}"],
        cwd=demo_project.root,
        env=demo_project.env,
        capture_output=True,
        text=True,
        timeout=600,
    )

    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]


def test_the_runs_of_readme_commands_land_in_the_instance_make_dev_shows(
    demo_project: DemoProject,
) -> None:
    home = demo_project.root / ".dw" / "dagster"
    window = next(b for b in BLOCKS if "window_start" in b.script)
    done = subprocess.run(
        ["bash", "-lc", window.script],
        cwd=demo_project.root,
        env=demo_project.env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]

    import dagster as dg

    with dg.DagsterInstance.from_config(str(home)) as instance:
        latest = instance.get_runs(limit=1)[0]
    assert latest.asset_selection == {dg.AssetKey(["demo_shop", "orders"])}
    assert latest.is_success
    assert not list(demo_project.root.glob(".tmp_dagster_home_*"))


def test_make_demo_a_second_time_syncs_the_shops_changes_and_rebuilds_the_marts(
    demo_project: DemoProject,
) -> None:
    """Last in this module: a newcomer's second `make demo` churns the shop (a day of business)
    and syncs only what changed; every check still passes and the marts are built again."""
    done = subprocess.run(
        ["make", "-o", ".venv/.installed", "demo"],
        cwd=demo_project.root,
        env=demo_project.env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    output = done.stdout + done.stderr

    assert done.returncode == 0, output[-4000:]
    summary = output[output.index("Synced into the warehouse") :]
    orders = re.search(r"demo_shop\.orders\s+(\d+)\s+incremental_merge\s+(\d+)\s+(\d+)", summary)
    assert orders is not None, summary
    rows, read, inserted = (int(n) for n in orders.groups())
    assert rows == 2000 + inserted and 0 < inserted <= read < 2000
    checks = re.search(r"Checks on the streams: (\d+) of (\d+) passed", output)
    assert checks is not None and checks.group(1) == checks.group(2), output[-2000:]
    assert [line for line in output.splitlines() if any(n in line for n in NOISE)] == []
