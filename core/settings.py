"""All configuration in one object, read from the environment (FOOTFIT_*), a `.env` file and a TOML file.

The TOML file is `footfit.toml` in the working directory, or the path in FOOTFIT_CONFIG. Nested sections use
`__` in environment names, e.g. FOOTFIT_DEVICE__BOARD_URL=/dev/ttyACM0.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

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


class ServiceSettings(BaseModel):
    """The fit service (api/, docs/api.md): where it listens and the limits it enforces."""

    host: str = "127.0.0.1"
    port: int = 8000
    max_upload_bytes: int = Field(default=16 * 1024 * 1024, gt=0, description="larger request bodies get 413")
    retention_days_default: int = Field(default=730, gt=0, description="a new tenant's retention period")
    key_expiry_days_default: int = Field(default=365, gt=0, description="API keys expire after this by default")
    customer_session_minutes: int = Field(
        default=15, gt=0, le=24 * 60, description="the longest (and default) life of a customer session token, the "
                                                  "only credential a shopper's browser holds (docs/webshop-tryon.md)")
    passports_in_memory: int = Field(
        default=256, gt=0, description="per service process: the most recently used passports whose feet and model "
                                       "searches are kept in memory (answers to them are kept too); with the "
                                       "matcher, this bounds the process's memory (docs/deployment.md)")
    malloc_arenas: int = Field(
        default=2, ge=0, description="`footfit serve` bounds the C allocator's arenas per process to this (glibc; "
                                     "core/malloc.py): its default, 8 per core, kept ~340 MB more under concurrent "
                                     "requests; 0 leaves glibc's default")
    max_concurrent_requests: int = Field(
        default=15, gt=0, lt=40, description="requests inside the service at once, the rest wait (api/gate.py): "
                                             "below the database pool's 40 connections (each request holds one; "
                                             "background work and a catalogue reload take others) and the 40 "
                                             "worker threads")
    body_timeout_s: float = Field(
        default=30.0, gt=0, description="a request's whole body must arrive within this, else 408; a request waits "
                                        "for its body outside the gate (api/gate.py), holding no place")
    max_requests_per_key: int = Field(
        default=50, gt=0, description="requests of one API key (or customer session) in progress at once, from their "
                                      "arrival to their answer's start; more get 429 with Retry-After")
    max_requests_per_tenant: int = Field(
        default=100, gt=0, description="requests of all keys of one tenant in progress at once; more get 429")
    max_requests_per_address: int = Field(
        default=20, gt=0, description="requests without an API key (pages, schema) from one client address in "
                                      "progress at once; more get 429")
    mailing_jobs_queued_per_tenant: int = Field(
        default=10, gt=0, description="batch jobs (mailings, fit index refreshes) one tenant may have waiting to "
                                      "run; more get 409 (jobs of different tenants take turns, api/mailing.py)")
    runs_jobs: bool = Field(
        default=True, description="this process takes and runs the mailing jobs queued in the database (false: it "
                                  "only serves requests and queues jobs for the processes that do)")
    job_lease_s: float = Field(
        default=30.0, gt=0, description="a running job's lease (api/worker.py): renewed every third of it while its "
                                        "process runs it; a job whose process died is taken over when it runs out")
    job_poll_s: float = Field(
        default=1.0, gt=0, description="how often a process that runs jobs looks for one queued by another process")
    scan_lease_s: float = Field(
        default=30.0, gt=0, description="a kiosk scan waits this long for its rig's agent to take it, and an agent "
                                        "reports at least this often while it scans; else the scan fails with the "
                                        "reason and the rig is free (api/scans.py)")
    scan_retry_window_s: float = Field(
        default=600.0, gt=0, description="a failed kiosk scan keeps what it scanned (at the rig's agent) this long for "
                                         "a retry; then it is given up and nothing is kept")
    scan_rows_kept_days: int = Field(
        default=7, ge=1, description="an ended kiosk scan's row (its progress, message and the customer's loyalty "
                                     "id) is deleted by the privacy purge this many days after it ended; its passport "
                                     "stays")
    tryon_frame_ancestors: list[str] = Field(
        default=[], description="origins (https://shop.example) allowed to embed the webshop try-on page in a frame, "
                                "besides the service itself (docs/webshop-tryon.md)")


class AgentSettings(BaseModel):
    """The rig agent on a store's PC (`footfit agent`, cli/agent.py, docs/deployment.md)."""

    rigs: Literal["simulator", "hardware"] = Field(
        default="simulator", description="scans run on simulated rigs (the embedded default, one per scan in a child "
                                         "process that dies with the agent) or on the hardware of the `device` settings")
    simulator_faults: str = Field(default="", description="fault spec for simulated rigs (as `footfit scan --faults`), "
                                                          "for tests and demonstrations")
    wait_s: float = Field(default=20.0, gt=0, le=60, description="how long one ask for work waits at the service "
                                                                 "for a scan to come (a long poll)")
    report_every_s: float = Field(default=0.25, gt=0, description="progress and camera frames are sent at most this "
                                                                  "often")
    upload_retry_s: float = Field(default=2.0, gt=0, description="a passport the service did not take is sent again "
                                                                 "after this (doubling, up to a minute)")


class LearningSettings(BaseModel):
    """The learning job and the advice built on it (api/learning.py, docs/learning.md, "The service")."""

    pooled: bool = Field(
        default=True, description="learn the shoes' corrections, the categories' ideals and the keep model from every "
                                  "tenant's feedback together (product knowledge, no personal data); false: each "
                                  "tenant's own. Customers' preferences always stay in their tenant")
    interval_hours: float = Field(
        default=24.0, ge=0, description="the service runs the learning job when the last run is this old (0: never; "
                                        "`footfit learn` runs it by hand)")
    held_out_share: float = Field(
        default=0.2, gt=0, lt=0.5, description="the most recent feedback set aside to judge a newly learned state "
                                               "against the one in use: it is adopted only if it predicts them better")
    min_events: int = Field(default=100, ge=10, description="fewer usable feedback events: the job learns nothing")
    fits_keep_chance: float = Field(
        default=0.45, gt=0, lt=1, description="with learning, a shoe fits the customer when its advised size is "
                                              "kept with at least this chance (below it the advice says the model "
                                              "does not fit); below 0.5 because 'does not fit' is right only when no "
                                              "size of the model is kept (chosen on the learning benchmark's even "
                                              "seeds, docs/fit-quality.md)")
    ab_holdout_share: float = Field(
        default=0.1, ge=0, le=0.5, description="customers (a stable hash of tenant and customer) who get the "
                                               "geometry's advice without learning, the A/B holdout the KPIs compare")


class BatchSettings(BaseModel):
    """Batch work over many passports (the fit index, mailings: api/batch.py) on Dask."""

    scheduler_address: str = Field(
        default="", description="a running Dask scheduler to send batch work to (e.g. tcp://10.0.0.5:8786; its "
                                "workers need footfit installed); empty: a LocalCluster on this machine")
    local_workers: int = Field(default=1, ge=1, le=64, description="worker processes of the LocalCluster")
    threads_per_local_worker: int = Field(
        default=0, ge=0, le=256, description="numba threads of each LocalCluster worker; 0: the machine's cores "
                                             "shared out among the workers")
    chunk_passports: int = Field(
        default=4096, ge=16, le=65536, description="passports per chunk of the fit index: the unit of batch work "
                                                  "and of the index's storage")


class MeshLimits(BaseModel):
    """What one mesh or point-cloud file may hold (core/mesh.py). A file's header and counts are checked against
    these before anything is read, so an upload cannot make footfit allocate more than they allow."""

    max_points: int = Field(default=100_000, gt=0, description="points of one foot's point cloud, as uploaded with "
                                                               "a passport (a store scan has 12-27 k)")
    max_vertices: int = Field(default=500_000, gt=0, description="vertices of a mesh, e.g. a shoe interior scan (the "
                                                                 "foot template has 44 k)")
    max_triangles: int = Field(default=1_000_000, gt=0, description="triangles of a mesh, its polygons split into "
                                                                    "triangles (the foot template has 89 k)")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="FOOTFIT_", env_nested_delimiter="__", env_file=".env", extra="ignore"
    )

    data_dir: Path = Field(default=Path("var"), description="calibrations, scans, the SQLite database")
    shared_dir: Path = Field(default=_CHECKOUT.parent / "shared", description="the project's shared data")
    database_url: str = ""  # empty: SQLite file under data_dir
    scan_profile: str = "store"
    device: DeviceSettings = DeviceSettings()
    service: ServiceSettings = ServiceSettings()
    learning: LearningSettings = LearningSettings()
    batch: BatchSettings = BatchSettings()
    agent: AgentSettings = AgentSettings()
    mesh: MeshLimits = MeshLimits()

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
