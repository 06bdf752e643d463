"""Feature descriptions: dict/JSON, Neuronpedia bulk exports in their published layout, and the
Neuronpedia API client against a real local HTTP server (cache, retries, 404, key header)."""

from __future__ import annotations

import gzip
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from saematch.descriptions import (
    DictDescriptions,
    NeuronpediaAPI,
    NeuronpediaExport,
    RetryPolicy,
    build_descriptions,
    load_json_descriptions,
    pick_explanation,
    save_json_descriptions,
)
from saematch.descriptions.http import RateLimiter, parse_retry_after

MODEL, SOURCE = "gemma-2-2b", "20-gemmascope-res-16k"


def row(index, description, type_name="oai_token-act-pair", model="gpt-4o-mini", layer=SOURCE):
    return {
        "modelId": MODEL,
        "layer": layer,
        "index": index,
        "description": description,
        "typeName": type_name,
        "explanationModelName": model,
        "authorId": "x",
    }


def write_export(root, batches):
    folder = root / MODEL / SOURCE / "explanations"
    folder.mkdir(parents=True)
    for b, rows in enumerate(batches):
        with gzip.open(folder / f"batch-{b}.jsonl.gz", "wt", encoding="utf-8") as fh:
            for r in rows:
                fh.write(json.dumps(r) + "\n")
    return folder


def test_pick_explanation_rule():
    exps = [
        row(0, "zeta", model="gpt-4o-mini"),
        row(0, "alpha", model="gpt-4o"),
        row(0, "  ", model="claude"),  # empty: never picked
        row(0, "beta", type_name="np_max-act-logits", model="claude"),
    ]
    assert pick_explanation(exps) == "beta"  # smallest (typeName, model, description)
    assert pick_explanation(exps, prefer_models=["nope", "gpt-4o-mini"]) == "zeta"
    assert pick_explanation(exps, prefer_types=["oai_token-act-pair"]) == "alpha"
    assert pick_explanation(list(reversed(exps))) == "beta"  # order-independent
    assert pick_explanation([row(0, "")]) is None and pick_explanation([]) is None


def test_neuronpedia_export_layout(tmp_path):
    write_export(
        tmp_path,
        [
            [row("0", "dates in text"), row(1, "python keywords"), row(3, "b dup")],
            [
                row(3, "a dup"),
                row(2, "   "),
                row(4, "other layer", layer="21-gemmascope-res-16k"),
                row("5", "cats", model="gpt-4o"),
                row(5, "felines", model="gpt-4o-mini"),
            ],
        ],
    )
    src = NeuronpediaExport(tmp_path, MODEL, SOURCE)
    with pytest.warns(UserWarning, match=r"3 of 7 features have no description.*\[2, 4, 6\]"):
        got = src.get_many([0, 1, 2, 3, "4", 5, 6])
    assert got == {
        0: "dates in text",
        1: "python keywords",
        2: None,
        3: "a dup",
        4: None,
        5: "cats",
        6: None,
    }
    assert src.missing == {2, 4, 6} and len(src) == 4
    pref = NeuronpediaExport(tmp_path, MODEL, SOURCE, prefer_models=["gpt-4o-mini"])
    assert pref.get(5) == "felines"
    with pytest.raises(FileNotFoundError, match="batch-\\*.jsonl.gz"):
        NeuronpediaExport(tmp_path, MODEL, "0-gemmascope-res-16k").get(0)


def test_dict_and_json_descriptions(tmp_path):
    d = DictDescriptions({"0": "zero", 2: "two", 3: ""})
    assert (d.get(0), d.get("2"), d.get(3), d.get(9)) == ("zero", "two", None, None)
    assert d.missing == {3, 9}
    path = save_json_descriptions({10: "ten", 2: "two"}, tmp_path / "sae" / "descriptions.json")
    assert list(json.loads(path.read_text())) == ["2", "10"]
    loaded = build_descriptions("json", path=path)
    assert loaded.get_many([2, 10]) == {2: "two", 10: "ten"}
    (tmp_path / "bad.json").write_text(json.dumps({"feat": "x"}))
    with pytest.raises(ValueError, match="feature indices"):
        load_json_descriptions(tmp_path / "bad.json")
    with pytest.raises(FileNotFoundError):
        load_json_descriptions(tmp_path / "none.json")
    with pytest.raises(ValueError, match="unknown description source"):
        build_descriptions("wiki")


class FakeNeuronpedia:
    """`GET /api/feature/{model}/{source}/{index}` on 127.0.0.1 with scripted failures."""

    def __init__(self):
        self.hits: list[tuple[str, str | None]] = []
        self.fail: dict[int, list[tuple[int, dict]]] = {}  # index -> statuses to send first
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                fake.hits.append((self.path, self.headers.get("x-api-key")))
                m = re.fullmatch(rf"/api/feature/{MODEL}/{SOURCE}/(\d+)", self.path)
                idx = int(m.group(1)) if m else -1
                if fake.fail.get(idx):
                    status, headers = fake.fail[idx].pop(0)
                    return self._send(status, {"error": "busy"}, headers)
                if idx < 0 or idx == 7:
                    return self._send(404, {"message": "Feature not found"})
                exps = [row(idx, f"desc {idx} b"), row(idx, f"desc {idx} a")]
                if idx == 8:
                    exps = []
                body = {"modelId": MODEL, "layer": SOURCE, "index": str(idx), "explanations": exps}
                body["activations"] = [{"tokens": ["x"] * 50}]  # bulky field, not cached
                self._send(200, body)

            def _send(self, status, obj, headers=None):
                data = json.dumps(obj).encode()
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()


@pytest.fixture
def neuronpedia():
    s = FakeNeuronpedia()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


def test_neuronpedia_api_cache_retry_and_missing(neuronpedia, tmp_path, monkeypatch):
    monkeypatch.setenv("NEURONPEDIA_API_KEY", "np-secret")
    neuronpedia.fail[3] = [(503, {}), (429, {"Retry-After": "0"})]

    def make():
        return NeuronpediaAPI(
            MODEL,
            SOURCE,
            base_url=neuronpedia.url,
            cache_dir=tmp_path / "np",
            max_requests_per_s=None,
            retry=RetryPolicy(max_retries=3, backoff_base=0.01),
        )

    api = make()
    with pytest.warns(UserWarning, match="2 of 4 features"):
        got = api.get_many([1, 3, 7, 8])
    assert got == {1: "desc 1 a", 3: "desc 3 a", 7: None, 8: None}
    assert api.requests == 6 and len(neuronpedia.hits) == 6  # 4 features + 2 retries
    assert {key for _, key in neuronpedia.hits} == {"np-secret"}
    cached = tmp_path / "np" / MODEL / SOURCE
    assert sorted(p.name for p in cached.glob("*.json")) == ["1.json", "3.json", "7.json", "8.json"]
    assert "activations" not in (cached / "1.json").read_text()
    assert "np-secret" not in "".join(p.read_text() for p in cached.glob("*.json"))
    again = make()  # a rerun: zero requests, same answers (404 remembered as missing)
    assert again.get_many([1, 3]) == {1: "desc 1 a", 3: "desc 3 a"}
    assert again.get(7) is None
    assert (again.requests, again.cache_hits, len(neuronpedia.hits)) == (0, 3, 6)


def test_neuronpedia_api_gives_up_clearly(neuronpedia, tmp_path, monkeypatch):
    monkeypatch.delenv("NEURONPEDIA_API_KEY", raising=False)
    neuronpedia.fail[4] = [(500, {})] * 3
    api = NeuronpediaAPI(
        MODEL,
        SOURCE,
        base_url=neuronpedia.url,
        cache_dir=tmp_path,
        retry=RetryPolicy(max_retries=1, backoff_base=0.01),
    )
    with pytest.raises(RuntimeError, match="failed after 2 attempts; last error: HTTP 500"):
        api.get(4)
    assert neuronpedia.hits[0][1] is None  # no key set: no header
    assert not list(tmp_path.rglob("4.json"))  # failures are not cached


def test_retry_after_and_rate_limiter():
    import email.utils
    import time

    assert parse_retry_after("2") == 2.0 and parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    past = parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT")
    assert past < 0 and RetryPolicy().wait(0, past) == 0
    ahead = parse_retry_after(email.utils.formatdate(time.time() + 30, usegmt=True))
    assert 28 < ahead <= 30
    assert RetryPolicy(backoff_base=0.5, backoff_max=3).wait(3, None) == 3
    assert RetryPolicy(backoff_base=0.5).wait(1, None) == 1.0
    assert RetryPolicy(backoff_max=3).wait(0, 100.0) == 3
    lim = RateLimiter(50.0)
    t0 = time.perf_counter()
    for _ in range(6):
        lim.acquire()
    assert time.perf_counter() - t0 >= 0.09  # 5 intervals of 20 ms
