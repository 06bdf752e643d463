"""Judge experiments (Fig. 4/7L, 6, 8) on the test zoo: label bookkeeping with the lexical judge,
zero calls on a rerun, and partial results + resume when an OpenAI-compatible server fails."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from experiment_helpers import compose_cfg
from experiment_helpers import run as run_cfg

from saematch.judge import JudgeCallError
from saematch.matching import match, pair_cost
from saematch.zoo.describe import NEVER_ACTIVE
from saematch_experiments import judge_by_layer, mse_by_label, persistence_judge

KEY = "sk-test-not-a-real-key"


class FakeChatServer:
    """OpenAI-compatible /v1/chat/completions on 127.0.0.1 answering "Label: 3".

    After `fail_after` successful answers every request gets HTTP 503 (Retry-After: 0, so the
    client's retries run at once): a server that fails permanently mid-run.
    """

    def __init__(self, fail_after: int | None = None):
        self.fail_after, self.ok, self.failed = fail_after, 0, 0
        self.keys: set[str] = set()
        lock, srv = threading.Lock(), self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with lock:
                    srv.keys.add(self.headers.get("Authorization", ""))
                    fail = srv.fail_after is not None and srv.ok >= srv.fail_after
                    srv.failed += fail
                    srv.ok += not fail
                if fail:
                    body, status = b'{"error": "overloaded"}', 503
                else:
                    msg = {"role": "assistant", "content": "The topics match.\nLabel: 3"}
                    usage = {"prompt_tokens": 100, "completion_tokens": 7}
                    body = json.dumps({"choices": [{"message": msg}], "usage": usage}).encode()
                    status = 200
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                if fail:
                    self.send_header("Retry-After", "0")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def cache_root(test_zoo, tmp_path):
    """A private cache root (judge answers, matchings) that links the session's test zoo."""
    root = tmp_path / "cache"
    (root / "zoo").mkdir(parents=True)
    (root / "zoo" / Path(test_zoo.root).name).symlink_to(Path(test_zoo.root).resolve())
    return root


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    s = FakeChatServer()
    yield s
    s.close()


def run(module, test_zoo, tmp_path, cache_root, overrides):
    cfg = compose_cfg(module.__name__.split(".")[-1], overrides, test_zoo, tmp_path / "out")
    cfg.paths.cache_dir = str(cache_root)
    return run_cfg(cfg)


def out_dir(tmp_path, name):
    runs = (tmp_path / "out" / name).glob("run-*")
    return max(runs, key=lambda p: int(p.name.split("-")[1]))


def results_json(tmp_path, name):
    return json.loads((out_dir(tmp_path, name) / "results.json").read_text())


def check_summary(s, n_expected=None):
    """The bookkeeping every summary must satisfy."""
    assert sum(s["counts"].values()) + s["unparsed"] == s["judged"]
    assert s["judged"] + s["pending"] + s["missing"] + s["dead"] == s["n_steps"]
    if n_expected is not None:
        assert s["n_steps"] == n_expected
    if sum(s["counts"].values()):
        score = sum(k * c for k, c in zip((1, 2, 3), s["counts"].values(), strict=True))
        assert s["gpt_score"] == pytest.approx(score / sum(s["counts"].values()))


def test_judge_by_layer_lexical(test_zoo, tmp_path, cache_root):
    over = ["experiment.n_paths=25", "experiment.variants=[folded,unfolded,vanilla]"]
    res = run(judge_by_layer, test_zoo, tmp_path, cache_root, over)
    assert res["status"] == "ok" and res["n_paths"] == 25
    assert res["judge"]["kind"] == "lexical" and res["judge"]["proxy"]
    assert "NOT the paper's" in res["judge"]["note"]
    assert set(res["layers"]) == {str(t) for t in range(test_zoo.n_layers - 1)}
    for per_var in res["layers"].values():
        for s in per_var.values():
            check_summary(s, n_expected=25)
            assert s["pending"] == 0
    # the lexical judge is called once per judged pair (it has no cache)
    judged = sum(s["judged"] for v in res["layers"].values() for s in v.values())
    assert res["judge"]["counters"]["calls"] == judged
    # paths follow the folded matching: step 0 -> 1 pairs i with match(sae0, sae1).perm[i]
    out = out_dir(tmp_path, "judge_by_layer")
    assert (out / "judge_by_layer.png").stat().st_size > 0
    rows = [r for r in results_json(tmp_path, "judge_by_layer")["tables"]["judge_pairs"]
            if r["variant"] == "folded" and r["layer"] == 0]  # fmt: skip
    perm = match(test_zoo.load_sae(0), test_zoo.load_sae(1), mode="both", fold=True).perm
    assert [r["next_feature"] for r in rows] == [int(perm[r["feature"]]) for r in rows]
    # typed rows: the Labels of each LayerRow are its columns, the main metric first
    table = results_json(tmp_path, "judge_by_layer")["tables"]["judge_by_layer"]
    cols = ["variant", "layer", "next_layer", "gpt_score", "same", "maybe", "different"]
    assert list(table[0])[:7] == cols and len(table) == 3 * (test_zoo.n_layers - 1)
    for r in table:
        assert r["same"] + r["maybe"] + r["different"] + r["unparsed"] == r["judged"]
        s = res["layers"][str(r["layer"])][r["variant"]]
        assert (r["gpt_score"], r["same"]) == (s["gpt_score"], s["counts"]["SAME"])


def test_bad_variant_is_a_clear_error(test_zoo, tmp_path, cache_root):
    with pytest.raises(ValueError, match="variants"):
        run(judge_by_layer, test_zoo, tmp_path, cache_root, ["experiment.variants=[fold]"])


def test_rerun_makes_zero_http_calls(test_zoo, tmp_path, cache_root, server):
    over = ["judge=openai", f"judge.base_url={server.url}", "judge.model=fake-judge",
            "experiment.n_paths=8", "experiment.variants=[folded]"]  # fmt: skip
    first = run(judge_by_layer, test_zoo, tmp_path, cache_root, over)
    n_http = server.ok
    judged = first["overall"]["folded"]["judged"]
    assert n_http == first["judge"]["counters"]["calls"] > 0
    assert first["overall"]["folded"]["counts"]["SAME"] == judged  # every answer "Label: 3"
    assert not first["judge"]["proxy"]
    second = run(judge_by_layer, test_zoo, tmp_path, cache_root, over)
    assert server.ok == n_http  # zero HTTP calls
    assert second["judge"]["counters"]["calls"] == 0
    assert second["judge"]["counters"]["cache_hits"] == judged
    assert second["overall"] == first["overall"]
    assert server.keys == {f"Bearer {KEY}"}
    assert KEY not in (out_dir(tmp_path, "judge_by_layer") / "results.json").read_text()


def test_failing_server_keeps_partial_answers_and_rerun_resumes(
    test_zoo, tmp_path, cache_root, server
):
    over = ["judge=openai", f"judge.base_url={server.url}", "judge.model=fake-judge",
            "experiment.n_paths=40", "experiment.variants=[folded]"]  # fmt: skip
    server.fail_after = 4
    with pytest.raises(JudgeCallError, match="rerun"):
        run(judge_by_layer, test_zoo, tmp_path, cache_root, over)
    part = results_json(tmp_path, "judge_by_layer")
    assert part["status"] == "partial" and "Rerun" in part["error"]
    overall = part["results"]["overall"]["folded"]
    check_summary(overall)
    assert server.ok == 4 and server.failed > 0
    assert overall["judged"] >= 4 and overall["pending"] > 0
    server.fail_after = None
    done = run(judge_by_layer, test_zoo, tmp_path, cache_root, over)
    assert done["status"] == "ok" and done["overall"]["folded"]["pending"] == 0
    c = done["judge"]["counters"]
    assert c["cache_hits"] == overall["judged"]  # the answers kept from the failed run
    assert c["calls"] == server.ok - 4 > 0  # only the missing pairs were asked
    assert done["overall"]["folded"]["judged"] == overall["judged"] + overall["pending"]


def test_mse_by_label_lexical(test_zoo, tmp_path, cache_root):
    res = run(mse_by_label, test_zoo, tmp_path, cache_root,
              ["experiment.pairs=[0,2]", "experiment.n_pairs=40"])  # fmt: skip
    assert res["pairs"] == [0, 2] and res["status"] == "ok"
    rows = results_json(tmp_path, "mse_by_label")["tables"]["mse_by_label_pairs"]
    for t, s in res["layers"].items():
        t = int(t)
        a, b = test_zoo.load_sae(t), test_zoo.load_sae(t + 1)
        perm = match(a, b).perm
        mse = pair_cost(a.fold(), b.fold(), perm, "decoder")
        da, db = test_zoo.descriptions(t), test_zoo.descriptions(t + 1)
        live = sum(
            da[i] != NEVER_ACTIVE and db[int(perm[i])] != NEVER_ACTIVE for i in range(len(perm))
        )
        check_summary(s)
        assert s["judged"] == min(40, live) > 0
        for name, n in s["counts"].items():
            st = s["mse_by_label"][name]
            assert st["n"] == n
            if n:
                q = [st[k] for k in ("min", "q05", "q25", "median", "q75", "q95", "max")]
                assert np.all(np.diff(q) >= 0)
        sel = [r for r in rows if r["layer"] == t]
        assert len(sel) == s["judged"]
        assert np.allclose([r["mse"] for r in sel], mse[[r["feature"] for r in sel]])
        assert all(r["next_feature"] == perm[r["feature"]] for r in sel)
    assert (out_dir(tmp_path, "mse_by_label") / "mse_by_label.png").exists()


def test_persistence_judge_lexical(test_zoo, tmp_path, cache_root):
    res = run(persistence_judge, test_zoo, tmp_path, cache_root,
              ["experiment.start_layers=[0,1]", "experiment.n_features=20"])  # fmt: skip
    L = test_zoo.n_layers
    for s in (0, 1):
        by = res["start_layers"][str(s)]
        assert set(by["exact"]) == {str(x) for x in range(s + 1, L)}
        for m in ("exact", "composition"):
            for summ in by[m].values():
                check_summary(summ, n_expected=20)
        # at distance 1 the exact LAP is the adjacent matching: same images, same labels
        one = str(s + 1)
        assert by["exact"][one]["agreement"] == 1.0
        assert by["exact"][one]["counts"] == by["composition"][one]["counts"]
    assert res["judge"]["kind"] == "lexical"
