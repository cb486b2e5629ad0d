"""The settings table: one source for variables, flags, the dataclass and the README."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from click.testing import CliRunner

from realtime.cli import main
from realtime.config import SETTINGS, Settings, settings_markdown

ROOT = Path(__file__).resolve().parent.parent


def test_table_matches_settings_defaults() -> None:
    """Every table entry is a Settings field with the same default, and nothing else is."""
    fields = {f.name: f.default for f in dataclasses.fields(Settings)}
    assert fields == {s.name: s.default for s in SETTINGS}


def test_readme_lists_every_setting() -> None:
    """The README's settings section is the generated table."""
    assert settings_markdown() in (ROOT / "README.md").read_text()


def test_every_setting_is_a_serve_flag() -> None:
    """`realtime serve --help` names every setting's flag and variable."""
    text = CliRunner().invoke(main, ["serve", "--help"], terminal_width=200).output
    for setting in SETTINGS:
        assert "--" + setting.name.replace("_", "-") in text
        assert setting.env in text


def test_environment_parsing() -> None:
    """Variables are parsed to their types; overrides win; bad values name the variable."""
    settings = Settings.from_env({"REALTIME_PORT": "9000", "REALTIME_TRUSTED_AUTHORS": "no",
                                  "REALTIME_DATA_DIR": "/tmp/x"}, host="::1")
    assert settings.port == 9000 and settings.trusted_authors is False
    assert settings.data_dir == Path("/tmp/x") and settings.host == "::1"
    with pytest.raises(ValueError, match="REALTIME_PORT"):
        Settings.from_env({"REALTIME_PORT": "eighty"})
    with pytest.raises(ValueError, match="REALTIME_DEFAULT_MODERATION"):
        Settings.from_env({"REALTIME_DEFAULT_MODERATION": "sometimes"})
    with pytest.raises(ValueError, match="REALTIME_LOGIN_MAX_FAILURES"):
        Settings.from_env({"REALTIME_LOGIN_MAX_FAILURES_PER_IP": "0"})
