"""What ``blitz status`` and ``blitz events`` read of the settings without pydantic
(:mod:`blitz.environment`) is what :class:`blitz.settings.Settings` reads: the home, the store's
URL and the secrets, from the same variables, whichever way they are set."""

from __future__ import annotations

import os
import typing
from pathlib import Path

import pytest
from pydantic import SecretStr

from blitz.environment import SECRETS, read_environment
from blitz.settings import Settings


def test_every_secret_setting_is_known_to_the_light_reader() -> None:
    secret = {
        name
        for name, field in Settings.model_fields.items()
        if SecretStr in typing.get_args(field.annotation)
    }
    assert secret == set(SECRETS)


ENVIRONMENTS: list[dict[str, str]] = [
    {},
    {"BLITZ_HOME": "~/somewhere/../state"},
    {"blitz_home": "HOME_REL", "BLITZ_DATABASE_URL": "postgresql://u@db/blitz"},
    {"BLITZ_HOME": "", "BLITZ_DATABASE_URL": ""},  # empty: unset
    {"GITHUB_TOKEN": "ghp_one", "ANTHROPIC_API_KEY": "sk-ant-two", "OPENAI_API_KEY": "sk-three"},
    {"BLITZ_GITHUB_TOKEN": "ghp_own", "GITHUB_TOKEN": "ghp_other"},  # the first alias wins
    {"ANTHROPIC_API_KEY": "", "CLAUDE_CODE_OAUTH_TOKEN": "sk-ant-oat-four"},
    {
        "blitz_compatible_api_key": "c-5",
        "BLITZ_STT_API_KEY": "s-6",
        "BLITZ_TTS_API_KEY": "t-7",
        "BLITZ_SPEECH_API_KEY": "k-8",
    },
]


@pytest.mark.parametrize("environ", ENVIRONMENTS)
def test_the_light_reader_reads_what_the_settings_read(
    environ: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # a relative home is relative to here
    monkeypatch.setenv("HOME", str(tmp_path))
    names = {n.lower() for names in SECRETS.values() for n in names} | {
        "blitz_home",
        "blitz_database_url",
    }
    for name in list(os.environ):
        if name.lower() in names:
            monkeypatch.delenv(name)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    found = read_environment()
    assert found.home == settings.home
    assert found.database_url == settings.db_url
    assert sorted(found.secrets) == sorted(settings.secrets())
