"""RunRecorder: local files first, W&B second; redaction; offline .wandb reader."""

import csv
import json
import struct
import zlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from saematch.tracking import (
    REDACTED,
    RunRecorder,
    is_secret_key,
    read_offline_run,
    redact,
    to_jsonable,
)
from saematch.tracking import wandb_reader as wr

ROWS = [
    {"layer": 0, "delta_loss": 0.25, "ev": 0.875},
    {"layer": 1, "delta_loss": 0.5, "ev": 0.75},
    {"layer": 2, "delta_loss": 1.0, "ev": 0.5},
]
CONFIG = {"sae_set": "tiny", "n_tokens": 128, "judge": {"api_key": "sk-abc", "model": "m"}}


def _figure():
    fig, ax = plt.subplots()
    ax.plot([0, 1, 2], [1.0, 2.0, 3.0])
    return fig


def _record(run_dir, logger="none", **wandb_kwargs):
    rec = RunRecorder(run_dir, CONFIG, logger=logger, wandb_kwargs=wandb_kwargs)
    rec.add_table("pruning", ROWS)
    rec.log_metrics({"layer": 3, "matching_score": 0.625})
    rec.add_figure("curve", _figure())
    (run_dir / "matchings").mkdir()
    (run_dir / "matchings" / "perm_0_1.json").write_text("[1, 0]")
    rec.add_artifact("matchings", run_dir / "matchings", type="matching")
    path = rec.finish({"mean_ev": 0.7, "per_set": {"code": np.float32(0.5)}, "token": "t0k"})
    return path, json.loads(path.read_text())


# ---- secrets -----------------------------------------------------------------------------
def test_secret_keys_by_whole_word():
    for key in ["api_key", "apiKey", "WANDB_API_KEY", "hf_token", "token", "password", "secret",
                "client_secret", "private_key", "credentials"]:  # fmt: skip
        assert is_secret_key(key), key
    for key in ["n_tokens", "max_tokens", "key", "keys", "layer", "tokenizer", "monkey"]:
        assert not is_secret_key(key), key


def test_redact_nested_and_env_values(monkeypatch):
    monkeypatch.setenv("MY_SERVICE_TOKEN", "supersecretvalue123")
    cfg = {
        "a": {"b": [{"password": "p", "ok": 1}, {"c": {"OPENAI_API_KEY": "sk"}}]},
        "url": "https://x/?t=supersecretvalue123",
        "n_tokens": 5,
    }
    out = redact(cfg)
    assert out["a"]["b"][0] == {"password": REDACTED, "ok": 1}
    assert out["a"]["b"][1]["c"]["OPENAI_API_KEY"] == REDACTED
    assert out["url"] == f"https://x/?t={REDACTED}"
    assert out["n_tokens"] == 5
    assert cfg["a"]["b"][0]["password"] == "p"  # input untouched


def test_to_jsonable_numpy_torch_nan():
    out = to_jsonable(
        {"a": np.float32(0.5), "b": torch.tensor([1, 2]), "c": float("nan"), "d": (1,)}
    )
    assert out == {"a": 0.5, "b": [1, 2], "c": None, "d": [1]}


# ---- local files -------------------------------------------------------------------------
def test_local_files_without_wandb(tmp_path):
    path, res = _record(tmp_path)
    assert path == tmp_path / "results.json"
    assert res["status"] == "ok"
    assert res["wandb"] == {"mode": "none", "ok": True}
    assert res["config"]["judge"]["api_key"] == REDACTED
    assert res["results"]["token"] == REDACTED
    assert res["results"]["per_set"]["code"] == 0.5
    assert res["tables"]["pruning"] == ROWS
    assert res["metrics"] == [{"layer": 3, "matching_score": 0.625}]
    assert res["artifacts"]["matchings"] == {"path": "matchings", "type": "matching"}
    assert json.loads((tmp_path / "config.json").read_text())["judge"]["api_key"] == REDACTED
    assert "sk-abc" not in path.read_text()
    with open(tmp_path / "pruning.csv") as f:
        rows = list(csv.DictReader(f))
    assert [{k: float(v) for k, v in r.items()} for r in rows] == ROWS
    for ext, magic in (("png", b"\x89PNG"), ("pdf", b"%PDF")):
        assert (tmp_path / f"curve.{ext}").read_bytes().startswith(magic)
    assert plt.get_fignums() == []  # add_figure closed it
    assert not (tmp_path / "wandb").exists()
    assert not list(tmp_path.glob(".*tmp"))  # atomic writes leave no temp files


def test_context_manager_records_failure(tmp_path):
    with pytest.raises(RuntimeError), RunRecorder(tmp_path, {"x": 1}) as rec:
        rec.log_metrics({"layer": 0, "ev": 0.5})
        raise RuntimeError("boom")
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["status"] == "failed" and res["error"] == "RuntimeError: boom"
    assert res["metrics"] == [{"layer": 0, "ev": 0.5}]


# ---- W&B failures lose nothing ------------------------------------------------------------
def test_wandb_init_failure_is_recorded(tmp_path, monkeypatch):
    import wandb

    monkeypatch.setenv("WANDB_MODE", "offline")

    def broken_init(**kwargs):
        raise ConnectionError("no route to api.wandb.ai")

    monkeypatch.setattr(wandb, "init", broken_init)
    with pytest.warns(RuntimeWarning, match="W&B init failed"):
        path, res = _record(tmp_path, logger="wandb", project="p")
    assert res["wandb"]["ok"] is False
    assert "ConnectionError: no route to api.wandb.ai" in res["wandb"]["error"]
    assert res["tables"]["pruning"] == ROWS
    assert (tmp_path / "pruning.csv").exists() and (tmp_path / "curve.pdf").exists()


class _FailingRun:
    id, dir = "fake", None

    def __init__(self):
        self.finished = False

    def define_metric(self, *args, **kwargs):
        pass

    def log(self, row):
        raise OSError("disk full")

    def finish(self, exit_code=0):
        self.finished = True


def test_wandb_log_failure_is_recorded_and_run_closed(tmp_path, monkeypatch):
    import wandb

    run = _FailingRun()
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setattr(wandb, "init", lambda **kw: run)
    with pytest.warns(RuntimeWarning, match="W&B log_table failed: OSError: disk full"):
        _, res = _record(tmp_path, logger="wandb")
    assert res["wandb"]["ok"] is False and len(res["wandb"]["errors"]) == 1
    assert res["tables"]["pruning"] == ROWS and res["metrics"][0]["matching_score"] == 0.625
    assert run.finished


def test_disabled_mode_writes_no_wandb_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    _, res = _record(tmp_path, logger="wandb", mode="disabled")
    assert res["wandb"]["mode"] == "disabled" and res["wandb"]["ok"] is True
    assert not (tmp_path / "wandb").exists()


def test_wandb_mode_env_overrides_config(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    _, res = _record(tmp_path, logger="wandb", mode="online")
    assert res["wandb"]["mode"] == "disabled"
    assert not (tmp_path / "wandb").exists()


# ---- real offline W&B run, read back ----------------------------------------------------
def test_offline_wandb_roundtrip(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    _, res = _record(tmp_path, logger="wandb", project="p", name="n", group="g", tags=["t"])
    assert res["wandb"]["ok"] is True, res["wandb"]
    assert res["wandb"]["dir"].startswith("wandb/offline-run-")

    run = read_offline_run(tmp_path)
    assert (run["project"], run["name"], run["group"], run["tags"]) == ("p", "n", "g", ["t"])
    assert run["run_id"] == res["wandb"]["run_id"]
    assert run["exit_code"] == 0
    assert run["config"] == res["config"]  # redacted on both sides
    # per-layer history rows, keyed name/column against `layer`
    per_layer = [r for r in run["history"] if "pruning/ev" in r]
    got = [{"layer": r["layer"], "delta_loss": r["pruning/delta_loss"], "ev": r["pruning/ev"]}
           for r in per_layer]  # fmt: skip
    assert got == res["tables"]["pruning"] == ROWS
    assert run["tables"]["tables/pruning"] == ROWS
    assert any(r.get("matching_score") == 0.625 and r["layer"] == 3 for r in run["history"])
    for key, value in res["results"].items():
        assert run["summary"][key] == value
    assert any(r.get("figures/curve", {}).get("_type") == "image-file" for r in run["history"])
    arts = {a["name"]: a for a in run["artifacts"]}
    assert arts["matchings"]["type"] == "matching"
    assert arts["matchings"]["files"] == ["perm_0_1.json"]


def _silent_server():
    """A 127.0.0.1 port that accepts connections and never answers (a hung proxy)."""
    import socket

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    return srv, srv.getsockname()[1]


def _refusing_port():
    """A 127.0.0.1 port nothing listens on (connections are refused)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return None, s.getsockname()[1]


@pytest.mark.parametrize("server", [_refusing_port, _silent_server], ids=["refused", "silent"])
def test_online_without_a_server_logs_offline_within_seconds(tmp_path, monkeypatch, caplog, server):
    """mode=online with a key and no network used to stall 90 s in silence (wandb's init
    timeout), then log nothing; now a seconds-long check moves the run offline, in one line."""
    import logging
    import time

    from saematch.tracking import find_offline_runs

    srv, port = server()
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("WANDB_API_KEY", "0123456789" * 4)
    t0 = time.monotonic()
    try:
        with caplog.at_level(logging.WARNING, logger="saematch.tracking"):
            _, res = _record(tmp_path, logger="wandb", mode="online", project="p")
    finally:
        if srv is not None:
            srv.close()
    assert time.monotonic() - t0 < 30
    assert res["wandb"]["mode"] == "offline" and res["wandb"]["ok"] is True, res["wandb"]
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("saematch.tracking")]
    assert len(lines) == 1 and f"127.0.0.1:{port} does not answer" in lines[0]
    assert "logging offline instead" in res["wandb"]["fallback"]
    assert len(find_offline_runs(tmp_path)) == 1


# ---- reader format edge cases -------------------------------------------------------------
def _chunk(kind, body):
    return struct.pack("<IHB", zlib.crc32(body, zlib.crc32(bytes([kind]))), len(body), kind) + body


def test_reader_reassembles_across_blocks_and_checks_crc(tmp_path):
    head = struct.pack("<4sHB", b":W&B", 0xBEE1, 0)
    small, big = b"a" * 10, bytes(range(256)) * 200  # 51,200 bytes: FIRST + LAST
    first_len = wr.BLOCK - len(head) - 7 - len(small) - 7 - 7
    data = head + _chunk(1, small) + _chunk(2, big[:first_len])
    assert len(data) == wr.BLOCK - 7
    data += _chunk(4, big[first_len:]) + _chunk(1, b"end")
    path = tmp_path / "run-x.wandb"
    path.write_bytes(data)
    assert list(wr.iter_raw_records(path)) == [small, big, b"end"]

    path.write_bytes(data[:-1])  # truncated tail: stop quietly
    assert list(wr.iter_raw_records(path)) == [small, big]
    bad = bytearray(data)
    bad[len(head) + 7] ^= 0xFF
    path.write_bytes(bytes(bad))
    with pytest.raises(ValueError, match="bad CRC"):
        list(wr.iter_raw_records(path))
    path.write_bytes(b"not a wandb file")
    with pytest.raises(ValueError, match="not a W&B run file"):
        list(wr.iter_raw_records(path))


def test_reader_missing_run_is_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="offline-run"):
        read_offline_run(tmp_path)


def test_reader_skips_block_trailer_padding(tmp_path):
    head = struct.pack("<4sHB", b":W&B", 0xBEE1, 0)
    filler = b"f" * (wr.BLOCK - len(head) - 7 - 3)  # leaves 3 bytes: too few for a header
    data = head + _chunk(1, filler) + b"\x00" * 3 + _chunk(1, b"next")
    path = tmp_path / "run-y.wandb"
    path.write_bytes(data)
    assert list(wr.iter_raw_records(path)) == [filler, b"next"]
