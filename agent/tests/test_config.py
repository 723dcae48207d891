"""Settings: defaults < file (JSON or TOML) < RPIAAS_AGENT_* < flags; bad input names its source."""

from __future__ import annotations

import json
import string
from pathlib import Path

import pytest
import tomllib
from hypothesis import given
from hypothesis import strategies as st

from rpiaas_agent import Config, ConfigError, load_config
from rpiaas_agent._toml import TomlError, loads_flat
from rpiaas_agent.config import SETTINGS, read_config_file

ROOT = Path(__file__).resolve().parents[2]


def test_defaults() -> None:
    c = load_config({}, env={})
    assert c == Config()
    assert (c.host, c.port, c.token, c.disk_path, c.sysfs_root) == ("0.0.0.0", 8081, None, "/", "/sys")
    assert c.node_name  # the hostname when no name is configured


def test_layers_in_order(tmp_path: Path) -> None:
    f = tmp_path / "agent.toml"
    f.write_text('port = 9000\nname = "from-file"\ndisk_path = "/srv"\n')
    env = {"RPIAAS_AGENT_CONFIG": str(f), "RPIAAS_AGENT_NAME": "from-env", "RPIAAS_AGENT_PORT": "9100"}
    c = load_config({"port": "9200"}, env=env)
    assert (c.port, c.name, c.disk_path) == (9200, "from-env", "/srv")
    assert load_config({}, env=env).port == 9100
    # --config wins over RPIAAS_AGENT_CONFIG
    g = tmp_path / "other.json"
    g.write_text(json.dumps({"disk_path": "/data"}))
    assert load_config({}, env=env, config_file=str(g)).disk_path == "/data"


def test_json_and_toml_files_agree(tmp_path: Path) -> None:
    values = {"host": "127.0.0.1", "port": 8082, "name": "pi-01", "sample_interval_s": 2.5,
              "access_log": True, "log_level": "debug", "vcgencmd": ""}
    j = tmp_path / "a.json"
    j.write_text(json.dumps(values))
    t = tmp_path / "a.toml"
    t.write_text("# the agent\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items()))
    assert read_config_file(j) == read_config_file(t) == values


def test_the_example_config_file_loads() -> None:
    example = read_config_file(ROOT / "agent" / "config.example.toml")
    assert example["port"] == 8081 and set(example) <= set(SETTINGS)


def test_environment_types() -> None:
    c = load_config({}, env={"RPIAAS_AGENT_ACCESS_LOG": "yes", "RPIAAS_AGENT_SAMPLE_INTERVAL_S": "0.5",
                             "RPIAAS_AGENT_MAX_BODY_BYTES": "1_000", "RPIAAS_AGENT_LOG_LEVEL": "WARNING"})
    assert (c.access_log, c.sample_interval_s, c.max_body_bytes, c.log_level) == (True, 0.5, 1000, "warning")


@pytest.mark.parametrize(("source", "message"), [
    ({"flags": {"port": "80a"}}, "--port: expected an integer from 0 to 65535, got '80a'"),
    ({"flags": {"port": "70000"}}, "--port: expected an integer from 0 to 65535, got 70000"),
    ({"env": {"RPIAAS_AGENT_SAMPLE_INTERVAL_S": "0"}}, "RPIAAS_AGENT_SAMPLE_INTERVAL_S: expected a number"),
    ({"env": {"RPIAAS_AGENT_ACCESS_LOG": "maybe"}}, "RPIAAS_AGENT_ACCESS_LOG: expected true or false"),
    ({"env": {"RPIAAS_AGENT_TOKEN": "two words"}}, "RPIAAS_AGENT_TOKEN: expected a token without spaces"),
    ({"env": {"RPIAAS_AGENT_LOG_LEVEL": "loud"}}, "RPIAAS_AGENT_LOG_LEVEL: expected one of debug"),
    ({"flags": {"token": "abc"}}, "token: not accepted as a flag"),
    ({"flags": {"host": ""}}, "--host: expected a printable string (not empty, "),
])
def test_bad_values_name_their_source(source: dict[str, dict[str, str]], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(source.get("flags", {}), env=source.get("env", {}))
    assert str(err.value).startswith(message)


@pytest.mark.parametrize(("name", "text", "message"), [
    ("a.toml", 'prot = 8081\n', "a.toml: prot: unknown setting"),
    ("a.toml", 'port = "eighty"\n', "a.toml: port: expected an integer"),
    ("a.toml", 'port = 80\nport = 81\n', "a.toml: invalid TOML"),
    ("a.toml", '[agent]\nport = 80\n', "a.toml: agent: unknown setting"),
    ("a.json", '{"port": 80,}', "a.json:1: invalid JSON"),
    ("a.json", '[1, 2]', "a.json: expected a table of settings, got list"),
    ("a.json", '{"access_log": 1}', "a.json: access_log: expected true or false"),
])
def test_bad_files_name_the_file_and_key(tmp_path: Path, name: str, text: str, message: str) -> None:
    (tmp_path / name).write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config({}, env={}, config_file=str(tmp_path / name))
    assert str(err.value).startswith(f"{tmp_path}/{message}"), err.value


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config({}, env={}, config_file=str(tmp_path / "nope.toml"))


def test_unknown_environment_variable_is_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    assert load_config({}, env={"RPIAAS_AGENT_TOKN": "x"}).token is None
    assert "RPIAAS_AGENT_TOKN" in caplog.text


def test_token_sources(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    secret = tmp_path / "token"
    secret.write_text("file-token\n")
    secret.chmod(0o600)
    assert load_config({"token_file": str(secret)}, env={}).token == "file-token"
    # the latest source that names a token wins, whether as a token or a file
    env = {"RPIAAS_AGENT_TOKEN": "env-token"}
    assert load_config({"token_file": str(secret)}, env=env).token == "file-token"
    f = tmp_path / "a.toml"
    f.write_text(f'token_file = "{secret}"\n')
    assert load_config({}, env=env, config_file=str(f)).token == "env-token"
    secret.chmod(0o644)
    load_config({"token_file": str(secret)}, env={})
    assert "readable by every user" in caplog.text
    secret.write_text("\n")
    with pytest.raises(ConfigError, match=r"token_file: .*expected a token"):
        load_config({"token_file": str(secret)}, env={})
    with pytest.raises(ConfigError, match="token_file: cannot read"):
        load_config({"token_file": str(tmp_path / "none")}, env={})


def test_public_settings_hide_the_token() -> None:
    c = Config(token="very-secret")
    assert "very-secret" not in json.dumps(c.public()) and "very-secret" not in repr(c)
    assert c.public()["token_set"] is True


# ---------------------------------------------------------------- the flat TOML reader (Python < 3.11)
def test_flat_toml_reader() -> None:
    text = ("# comment\n\nhost = '127.0.0.1'  # literal\nport = 8_081\nname = \"pi \\\"#1\\\" \\u00e9\"\n"
            "sample_interval_s = 1.5e0\naccess_log = false\n\"quoted key\" = -3\n")
    assert loads_flat(text) == tomllib.loads(text)


@pytest.mark.parametrize("text", [
    "[agent]\n", "port = [1]\n", "port = 0x10\n", "port = 08\n", "name = \"open\n",
    "name = '''x'''\n", "port = 1 2\n", "port\n", "a = 1\na = 2\n", "d = 1979-05-27\n",
    "s = \"bad \\q escape\"\n", "x = inf\n",
])
def test_flat_toml_reader_refuses_what_it_does_not_read(text: str) -> None:
    with pytest.raises(TomlError, match="line "):
        loads_flat(text)


_keys = st.text(string.ascii_letters + string.digits + "_-", min_size=1, max_size=12)
_values = st.one_of(
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    # TOML forbids raw DEL and surrogates; json.dumps escapes the other control characters
    st.text(st.characters(codec="utf-8", exclude_characters="\x7f"), max_size=20),
)


@given(st.dictionaries(_keys, _values, max_size=8))
def test_flat_toml_reader_agrees_with_tomllib(data: dict[str, object]) -> None:
    # json.dumps writes TOML-compatible basic strings, integers and floats (repr forms)
    def dump(v: object) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, float):
            return repr(v)
        return json.dumps(v, ensure_ascii=False)

    text = "".join(f"{k} = {dump(v)}  # note\n" for k, v in data.items())
    assert loads_flat(text) == tomllib.loads(text) == data
