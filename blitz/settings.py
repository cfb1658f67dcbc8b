"""Process-wide settings: where blitz keeps its state and how it reaches the outside.

One settings tree, read once by the CLI (environment ``BLITZ_*``) and handed to components
through their constructors; nothing else reads the environment. Per-repository settings live in
``blitz.toml`` (:mod:`blitz.config`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from blitz.environment import SECRETS, absolute_home, database_url, default_home
from blitz.errors import ConfigError
from blitz.notify_config import NotifyConfig

if TYPE_CHECKING:
    from blitz.llm.models import ProviderConfig
    from blitz.speech.endpoint import SpeechEndpoint


DEFAULT_SPEECH_URL = "http://127.0.0.1:8766/v1"
"""Where ``blitz speech serve`` listens unless told otherwise."""


class DaemonNotify(NotifyConfig):
    """The daemon's own ``[notify]`` (``BLITZ_NOTIFY``, a JSON object): its sinks hear of every
    project's events, and it says how hard delivery tries (for every sink)."""

    max_attempts: int = Field(default=8, ge=1)
    """Attempts per delivery before the sink is reported failing and the delivery given up."""
    backoff: float = Field(default=5.0, gt=0, allow_inf_nan=False)
    """Seconds before the second attempt; each next wait doubles, up to ``backoff_max``."""
    backoff_max: float = Field(default=600.0, gt=0, allow_inf_nan=False)
    max_age: float = Field(default=86400.0, gt=0, allow_inf_nan=False)
    """Seconds after its event a notification is still worth sending (older ones, written
    while no daemon ran, are dropped when one starts)."""
    slack_api_url: str = ""
    """The Slack Web API the bot posts through ("": Slack's own; a fake in tests)."""


class ExecutorSettings(BaseModel):
    """The daemon's ``[executor]`` (``BLITZ_EXECUTOR``, a JSON object): where attempts run. One
    executor per daemon, shared by every project."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Literal["local", "ray", "auto"] = "local"
    """``local``: in the daemon's process; ``ray``: on a Ray cluster's ``blitz worker`` nodes;
    ``auto``: ``ray`` when an address is known (``address`` or ``RAY_ADDRESS``), else ``local``."""
    address: str = ""
    """The Ray cluster's address (``HEAD:PORT`` or ``ray://HEAD:PORT``); "": ``RAY_ADDRESS``."""


def executor_choice(chosen: ExecutorSettings, ray_address: str) -> tuple[str, dict[str, object]]:
    """The executor's name and options for ``chosen``, ``RAY_ADDRESS`` being ``ray_address``;
    a ConfigError when ``ray`` is chosen without an address."""
    address = chosen.address or ray_address
    name = chosen.name
    if name == "auto":
        name = "ray" if address else "local"
    if name == "local":
        return "local", {}
    if not address:
        raise ConfigError(
            "the ray executor needs the cluster's address: --ray-address, [executor] address "
            "(BLITZ_EXECUTOR) or RAY_ADDRESS"
        )
    return "ray", {"address": address}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BLITZ_", extra="ignore", env_ignore_empty=True)
    """An empty variable is an unset one (``ANTHROPIC_API_KEY=""`` hides no
    ``CLAUDE_CODE_OAUTH_TOKEN``)."""

    home: Path = Field(default_factory=default_home)
    """All state lives here: the database, worktrees, locks, pull request descriptions."""

    database_url: str = ""
    """Any SQLAlchemy URL; empty means SQLite at ``<home>/blitz.db``."""

    max_parallel: int = Field(default=8, ge=1)
    """Attempts running at once across all goals and projects."""

    github_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices(*SECRETS["github_token"])
    )
    github_api_url: str = ""
    """Overrides the project's GitHub API URL (GitHub Enterprise, or a fake in tests)."""
    publish_retry_for: float = Field(default=300.0, ge=0)
    """Seconds a process keeps retrying a failed push or pull request (with backoff) before
    it leaves the goal succeeded with publishing pending (``blitz publish`` retries it)."""

    model: str = ""
    """Default model for every role, as provider:model (``BLITZ_MODEL``)."""
    planner_model: str = ""
    recovery_model: str = ""
    agent_model: str = ""

    anthropic_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices(*SECRETS["anthropic_api_key"])
    )
    """An Anthropic API key, or a Claude subscription's token (``claude setup-token`` prints it;
    Claude Code takes it, through the model proxy, but Anthropic's API does not)."""
    anthropic_base_url: str = Field(
        default="", validation_alias=AliasChoices("BLITZ_ANTHROPIC_BASE_URL", "ANTHROPIC_BASE_URL")
    )
    openai_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices(*SECRETS["openai_api_key"])
    )
    openai_base_url: str = Field(
        default="", validation_alias=AliasChoices("BLITZ_OPENAI_BASE_URL", "OPENAI_BASE_URL")
    )
    compatible_base_url: str = ""
    """Base URL of an OpenAI-compatible server for ``openai-compatible:`` models."""
    compatible_api_key: SecretStr | None = None
    prices_file: Path | None = None
    """A TOML file of model prices (USD per million tokens) that overrides the built-in table:
    ``["anthropic:claude-sonnet-4-6"] input = 3.0, output = 15.0, cached_input = 0.3``."""
    model_timeout: float | None = Field(default=None, gt=0)
    """Seconds a model call's stream may stay silent (``BLITZ_MODEL_TIMEOUT``); unset is 300 for
    servers of one's own (CPU inference) and 120 for Anthropic and OpenAI."""
    model_call_timeout: float = Field(default=3600.0, gt=0)
    """Seconds a whole model call may take, however steadily it streams
    (``BLITZ_MODEL_CALL_TIMEOUT``)."""

    local_servers: dict[str, str] | None = None
    """Where to look for local model servers, shorthand -> base URL
    (``BLITZ_LOCAL_SERVERS='{"ollama": "http://127.0.0.1:11435/v1"}'``); unset: Ollama,
    llama.cpp, vLLM and LM Studio on this machine, each on its usual port."""

    scenario: str = ""
    """A scenario file for the scripted planner and backend (``BLITZ_SCENARIO``)."""

    lease_seconds: float = Field(default=30.0, gt=0)
    """How long a process holds a goal without renewing its lease (it renews every third of
    that); a process frozen or cut off longer loses the goal to any other that claims it."""

    notify: DaemonNotify = Field(default_factory=DaemonNotify)
    """Notifications every project's events send (``BLITZ_NOTIFY='{"webhook_url_env": ...}'``);
    a project adds its own in blitz.toml's ``[notify]``."""

    executor: ExecutorSettings = Field(default_factory=ExecutorSettings)
    """Where the daemon runs attempts (``BLITZ_EXECUTOR='{"name": "ray", "address": ...}'``)."""
    ray_address: str = Field(default="", validation_alias=AliasChoices("RAY_ADDRESS"))
    """Ray's own ``RAY_ADDRESS``: the cluster ``[executor] name = "auto"`` connects to."""

    stt_url: str = DEFAULT_SPEECH_URL
    """The speech-to-text server's OpenAI-shaped API (``BLITZ_STT_URL``, its ``/v1``: it serves
    ``/audio/transcriptions``); the default is ``blitz speech serve``'s."""
    stt_model: str = "whisper-1"
    stt_api_key: SecretStr | None = None
    """``BLITZ_STT_API_KEY``; unset, OpenAI's key (``OPENAI_API_KEY``) when the URL is OpenAI's."""
    tts_url: str = DEFAULT_SPEECH_URL
    """The text-to-speech server's OpenAI-shaped API (``BLITZ_TTS_URL``: ``/audio/speech``)."""
    tts_model: str = "tts-1"
    tts_voice: str = "joe"
    tts_api_key: SecretStr | None = None
    """``BLITZ_TTS_API_KEY``; unset, OpenAI's key when the URL is OpenAI's."""
    speech_timeout: float = Field(default=30.0, gt=0, allow_inf_nan=False)
    """Seconds one speech request may take, transcribing or speaking (``BLITZ_SPEECH_TIMEOUT``)."""
    speech_api_key: SecretStr | None = None
    """The key ``blitz speech serve`` asks of its clients (``BLITZ_SPEECH_API_KEY``); unset, it
    makes one for the run and prints it."""

    crash_at: str = ""
    """Fault injection for tests: kill this process (SIGKILL) at the named point, once."""

    @field_validator("home", mode="after")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return absolute_home(value)

    def executor_options(self) -> tuple[str, dict[str, object]]:
        """The daemon's executor, as a name and its options (:func:`executor_choice`)."""
        return executor_choice(self.executor, self.ray_address)

    @property
    def db_url(self) -> str:
        return database_url(self.home, self.database_url)

    @property
    def worktrees(self) -> Path:
        return self.home / "worktrees"

    @property
    def locks(self) -> Path:
        return self.home / "locks"

    @property
    def tools(self) -> Path:
        """Where ``blitz backends install`` puts agent CLIs (npm packages), and runs find them."""
        return self.home / "tools"

    def goal_dir(self, goal_id: str) -> Path:
        return self.home / "goals" / goal_id

    def provider_env(self) -> dict[str, str]:
        """Provider keys and base URLs, for agent CLIs that call the providers themselves."""
        env = {
            "ANTHROPIC_API_KEY": self.anthropic_api_key.get_secret_value()
            if self.anthropic_api_key
            else "",
            "ANTHROPIC_BASE_URL": self.anthropic_base_url,
            "OPENAI_API_KEY": self.openai_api_key.get_secret_value() if self.openai_api_key else "",
            "OPENAI_BASE_URL": self.openai_base_url,
        }
        return {k: v for k, v in env.items() if v}

    def secrets(self) -> list[str]:
        """The secrets set here (the GitHub token, the providers' keys), for redaction."""
        found = (getattr(self, name) for name in SECRETS)
        return [secret.get_secret_value() for secret in found if secret is not None]

    def speech_endpoints(self) -> tuple[SpeechEndpoint, SpeechEndpoint]:
        """The speech-to-text and text-to-speech services, for :mod:`blitz.speech`'s clients."""
        from blitz.speech.endpoint import SpeechEndpoint

        def key(own: SecretStr | None, url: str) -> str:
            if own is not None:
                return own.get_secret_value()
            if self.openai_api_key is not None and SpeechEndpoint.is_openai(url):
                return self.openai_api_key.get_secret_value()
            return ""

        stt = SpeechEndpoint(
            url=self.stt_url,
            model=self.stt_model,
            api_key=key(self.stt_api_key, self.stt_url),
            timeout=self.speech_timeout,
        )
        tts = SpeechEndpoint(
            url=self.tts_url,
            model=self.tts_model,
            voice=self.tts_voice,
            api_key=key(self.tts_api_key, self.tts_url),
            timeout=self.speech_timeout,
        )
        return stt, tts

    def provider_config(self) -> ProviderConfig:
        """The providers' keys, endpoints and timeouts, for :func:`blitz.llm.build_model`."""
        from blitz.llm.models import ProviderConfig  # pydantic-ai: only when models are used

        def secret(value: SecretStr | None) -> str:
            return value.get_secret_value() if value is not None else ""

        return ProviderConfig(
            anthropic_api_key=secret(self.anthropic_api_key),
            anthropic_base_url=self.anthropic_base_url,
            openai_api_key=secret(self.openai_api_key),
            openai_base_url=self.openai_base_url,
            compatible_base_url=self.compatible_base_url,
            compatible_api_key=secret(self.compatible_api_key),
            timeout=self.model_timeout,
            call_timeout=self.model_call_timeout,
        )
