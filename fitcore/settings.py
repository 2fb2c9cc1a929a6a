"""All configuration in one object, read from the environment (FOOTFIT_*), a `.env` file and a TOML file.

The TOML file is `footfit.toml` in the working directory, or the path in FOOTFIT_CONFIG. Nested sections use
`__` in environment names, e.g. FOOTFIT_DEVICE__BOARD_URL=/dev/ttyACM0.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

_CHECKOUT = Path(__file__).resolve().parents[1]


class DeviceSettings(BaseModel):
    """Where the scanner's devices are. Serial ports are pyserial URLs: a tty path, a pseudo-terminal link,
    `socket://host:port`, or `sim://name` for an in-process simulated device."""

    board_url: str = "/dev/ttyACM0"
    plate_url: str = "/dev/ttyACM1"
    camera_url: str = "0"  # a device index, a V4L2 path or an http(s) MJPEG URL
    board_baud: int = 115200
    plate_baud: int = 921600
    command_timeout_s: float = 2.0
    command_retries: int = 3
    reconnect_window_s: float = 15.0
    camera_read_timeout_s: float = 5.0


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="FOOTFIT_", env_nested_delimiter="__", env_file=".env", extra="ignore"
    )

    data_dir: Path = Field(default=Path("var"), description="calibrations, scans, the SQLite database")
    shared_dir: Path = Field(default=_CHECKOUT.parent / "shared", description="the project's shared data")
    database_url: str = ""  # empty: SQLite file under data_dir
    scan_profile: str = "store"
    device: DeviceSettings = DeviceSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = Path(os.environ.get("FOOTFIT_CONFIG", "footfit.toml"))
        return (
            init_settings,
            env_settings,
            dotenv_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=toml_path),
        )

    @property
    def sqlite_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'footfit.sqlite'}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
