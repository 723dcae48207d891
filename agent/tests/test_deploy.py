"""The agent's packaging, unit file, Dockerfile and install guide agree with the agent itself."""

from __future__ import annotations

import ast
import asyncio
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import tomllib

from rpiaas_agent import Config, __version__, create_app, prometheus, report
from rpiaas_agent import cli as agent_cli
from rpiaas_agent.config import CONFIG_ENV, ENV_PREFIX, SETTINGS
from rpiaas_agent.keys import CPU, POWER, TASKS, THROTTLE

from . import promtext
from .helpers import agent_command, fake_thermal_tree, fake_vcgencmd

ROOT = Path(__file__).resolve().parents[2]
AGENT = ROOT / "agent"
GUIDE = ROOT / "docs" / "testbed.md"
UNIT = AGENT / "systemd" / "rpiaas-agent.service"
DOCKERFILE = AGENT / "Dockerfile"
TEXTS = [GUIDE, AGENT / "README.md", UNIT, DOCKERFILE, AGENT / "config.example.toml"]


def _flags() -> set[str]:
    return {s for a in agent_cli._parser()._actions for s in a.option_strings} | {"--no-access-log"}


def test_package_metadata() -> None:
    meta = tomllib.loads((AGENT / "pyproject.toml").read_text())["project"]
    deps = {re.split(r"[<>=!~ ;\[]", d)[0].lower() for d in meta["dependencies"]}
    assert deps == {"aiohttp", "psutil"}
    assert meta["requires-python"] == ">=3.9"
    assert meta["scripts"] == {"rpiaas-agent": "rpiaas_agent.cli:main",
                               "rpiaas-agent-emulated": "rpiaas_agent.emulated:main"}


@pytest.mark.parametrize("path", sorted((AGENT / "rpiaas_agent").glob("*.py")), ids=lambda p: p.name)
def test_the_agent_is_python_3_9_syntax(path: Path) -> None:
    tree = ast.parse(path.read_text(), feature_version=(3, 9))
    future = [n for n in tree.body if isinstance(n, ast.ImportFrom) and n.module == "__future__"]
    assert future, f"{path.name}: needs `from __future__ import annotations` for 3.9"


def test_every_environment_variable_named_is_a_setting() -> None:
    for path in TEXTS:
        for var in re.findall(r"\bRPIAAS_AGENT_[A-Z0-9_]+", path.read_text()):
            assert var == CONFIG_ENV or var[len(ENV_PREFIX):].lower() in SETTINGS, f"{path.name}: {var}"


def _settings_table() -> dict[str, tuple[str, str]]:
    rows = re.findall(r"^\| `(\w+)` \| (`--[\w-]+`|\(none\)) \| ([^|]+) \|", GUIDE.read_text(), re.M)
    return {key: (flag.strip("`"), default.strip()) for key, flag, default in rows}


def test_the_guide_documents_every_setting_with_its_flag_and_default() -> None:
    table = _settings_table()
    assert set(table) == set(SETTINGS)
    defaults = Config()
    for key, (flag, default) in table.items():
        if key == "token":
            assert flag == "(none)" and "--token" not in _flags()
            continue
        assert flag == "--" + key.replace("_", "-") and flag in _flags(), key
        value = getattr(defaults, key)
        if default.startswith("`"):
            shown = json.dumps(value) if isinstance(value, bool) else str(value)
            assert default.strip("`").strip('"') == shown.strip('"'), key


def test_every_command_line_shown_parses() -> None:
    lines = [ln for path in TEXTS for ln in path.read_text().splitlines()]
    # lines that run the agent: "rpiaas-agent --...", "ExecStart=/usr/local/bin/rpiaas-agent --..."
    run = re.compile(r"^(?:\s*|ExecStart=)(?:sudo\s+)?(?:/\S*/)?rpiaas-agent\s+(--.*)$")
    commands = [m.group(1) for ln in lines if (m := run.match(ln))]
    assert len(commands) >= 3
    for tail in commands:
        for flag in re.findall(r"(?<![\w-])--[a-z][\w-]*", tail.split("#")[0].split("&")[0]):
            assert flag in _flags(), f"{flag} in {tail!r}"


def test_unit_file() -> None:
    unit = UNIT.read_text()
    exec_start = re.search(r"^ExecStart=(\S+) (.*)$", unit, re.M)
    assert exec_start and exec_start.group(1) == "/usr/local/bin/rpiaas-agent"
    assert exec_start.group(2).split() == ["--config", "/etc/rpiaas-agent/agent.toml"]
    assert re.search(r"^User=rpiaas-agent$", unit, re.M) and "SupplementaryGroups=video" in unit
    assert re.search(r"^WantedBy=multi-user.target$", unit, re.M)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_unit_file_verifies(tmp_path: Path) -> None:
    unit = tmp_path / "rpiaas-agent.service"
    unit.write_text(UNIT.read_text().replace("/usr/local/bin/rpiaas-agent", agent_command()[0]))
    r = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert "rpiaas-agent.service" not in r.stderr, r.stderr  # no warning about our unit


def test_dockerfile() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r"^FROM python:3\.\d+-slim", text, re.M)  # official, multi-arch (arm64, amd64)
    for src in re.findall(r"^COPY (.+) \S+$", text, re.M):
        for name in src.split():
            assert (AGENT / name).exists(), name
    assert re.search(r'^ENTRYPOINT \["rpiaas-agent"\]$', text, re.M)
    assert re.search(rf"^EXPOSE {Config().port}$", text, re.M)
    assert re.search(r"^USER (?!root)\w+$", text, re.M)


def _full_report(tmp_path: Path) -> dict[str, Any]:
    sysfs = fake_thermal_tree(tmp_path / "sys", {"cpu-thermal": "48300"})
    hwmon = tmp_path / "hwmon" / "hwmon0"  # an INA226 board as sysfs lays it out (not a device)
    hwmon.mkdir(parents=True)
    (hwmon / "name").write_text("ina226\n")
    (hwmon / "power1_input").write_text("2731000\n")
    app = create_app(Config(sysfs_root=str(sysfs), vcgencmd=str(fake_vcgencmd(tmp_path)),
                            power_source="hwmon", hwmon_path=str(hwmon.parent)))

    async def go() -> dict[str, Any]:
        app[POWER].latest = await app[POWER].read()
        app[THROTTLE].flags = await app[THROTTLE].read()
        app[CPU].sample()
        app[TASKS].kernel_ops_per_s = 2.5e6  # measured in the background when served
        info: dict[str, Any] = await report.collect(app)
        return info

    result: dict[str, Any] = asyncio.run(go())
    return result


def _shape(value: Any) -> Any:
    return {k: _shape(v) for k, v in value.items()} if isinstance(value, dict) else None


def test_the_guides_info_example_has_the_real_shape(tmp_path: Path) -> None:
    blocks = re.findall(r"```json\n(.*?)```", GUIDE.read_text(), re.S)
    example = json.loads(blocks[0])
    real = _full_report(tmp_path)
    assert _shape(example) == _shape(real)
    assert example["agent"]["version"] == __version__


def test_the_guide_lists_exactly_the_metrics(tmp_path: Path) -> None:
    families = promtext.parse(prometheus.render(_full_report(tmp_path)))
    # (the guide names the master's own metrics too, rpiaas_master_*: not the agent's)
    documented = {m for m in re.findall(r"`(rpiaas_[a-z0-9_]+)`", GUIDE.read_text())
                  if not m.startswith("rpiaas_master_")}
    assert documented == set(families)

