"""Run outputs: local files first (results.json, CSV, PNG/PDF), W&B second."""

from .loggers import local_recorder, wandb_recorder
from .recorder import RunRecorder
from .results import to_jsonable, write_csv, write_json_atomic
from .secrets import REDACTED, is_secret_key, redact
from .wandb_logger import resolve_mode
from .wandb_reader import find_offline_runs, iter_records, read_offline_run

__all__ = [
    "REDACTED",
    "RunRecorder",
    "find_offline_runs",
    "is_secret_key",
    "local_recorder",
    "iter_records",
    "read_offline_run",
    "redact",
    "resolve_mode",
    "to_jsonable",
    "wandb_recorder",
    "write_csv",
    "write_json_atomic",
]
