"""Judges: the paper prompt, label parsing, and the OpenAI-compatible client against a real
local HTTP server (retries, timeouts, resume after failure, cache, concurrency, secrets)."""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from saematch.judge import (
    SYSTEM_PROMPT,
    JudgeCallError,
    build_judge,
    format_user_message,
    parse_label,
)
from saematch.judge.embedding import EmbeddingJudge
from saematch.judge.lexical import LexicalJudge
from saematch.judge.openai import OpenAIJudge

# The paper text lives in shared/ beside the checkout (CI copies it there too).
PAPER = Path(__file__).resolve().parents[2] / "shared/paper/mechanistic_permutability_iclr2025.txt"
SECRET = "sk-test-SECRET-0123456789"


class FakeOpenAI:
    """A real OpenAI-compatible server on 127.0.0.1: scripted failures, then answers."""

    def __init__(self):
        self.requests: list[dict] = []
        self.queue: list[tuple] = []  # per-request behaviours consumed in order
        self.fail_if: set[str] = set()  # user-message substrings answered with 500 forever
        self.answers: dict[str, str] = {}  # first description -> answer text
        self.delay = 0.0
        self.answered: Counter = Counter()
        self.in_flight = self.max_in_flight = 0
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with fake.lock:
                    fake.requests.append(
                        {"path": self.path, "headers": dict(self.headers), "body": body}
                    )
                    step = fake.queue.pop(0) if fake.queue else ("answer",)
                    fake.in_flight += 1
                    fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
                try:
                    self._respond(step, body["messages"][-1]["content"])
                except (BrokenPipeError, ConnectionResetError):
                    pass
                finally:
                    with fake.lock:
                        fake.in_flight -= 1

            def _respond(self, step, user):
                if step[0] == "sleep":
                    time.sleep(step[1])
                    step = ("answer",)
                if any(s in user for s in fake.fail_if):
                    step = ("status", 500, {})
                if step[0] == "status":
                    self._send(step[1], {"error": {"message": f"boom {SECRET}"}}, step[2])
                    return
                time.sleep(fake.delay)
                first = re.match(r'Explanation 1: "(.*)"', user).group(1)
                text = fake.answers.get(first, "Evaluation: similar.\nLabel: 3")
                with fake.lock:
                    fake.answered[user] += 1
                usage = {"prompt_tokens": 100, "completion_tokens": 7, "total_tokens": 107}
                msg = {"role": "assistant", "content": text}
                self._send(200, {"choices": [{"index": 0, "message": msg}], "usage": usage})

            def _send(self, status, obj, headers=None):
                data = json.dumps(obj).encode()
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()


@pytest.fixture
def server():
    s = FakeOpenAI()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


@pytest.fixture
def make_judge(server, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)

    def make(**kw):
        args = dict(
            base_url=server.url,
            model="judge-test",
            cache_dir=tmp_path / "cache",
            backoff_base=0.01,
            max_retries=3,
            timeout=5.0,
        )
        return OpenAIJudge(**{**args, **kw})

    return make


PAIRS = [(f"feature text {i}", f"other text {i}") for i in range(6)]


# --- the prompt -------------------------------------------------------------------------


def test_system_prompt_is_the_papers_verbatim():
    assert SYSTEM_PROMPT.splitlines()[0] == (
        "You will receive two text explanations of an LLM features in the following format:"
    )
    if not PAPER.is_file():
        pytest.skip("paper text not available")
    text = PAPER.read_text()
    quote = text[text.index('evaluation: """') + len('evaluation: """') :]
    quote = quote[: quote.index('"""')].replace("Published as a conference paper at ICLR 2025", "")
    assert " ".join(SYSTEM_PROMPT.split()) == " ".join(quote.split())


def test_user_message_format_and_missing_descriptions():
    assert format_user_message(" a b ", "c") == 'Explanation 1: "a b"\nExplanation 2: "c"'
    for bad in (None, "", "  "):
        with pytest.raises(ValueError, match="non-empty"):
            format_user_message("x", bad)


# --- parsing ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("Label: 2", 2),
        ("3", 3),
        ("**SAME**", 3),
        ("same.", 3),
        ("(1)", 1),
        ("Evaluation: both are about code.\nLabel: 3", 3),
        ("## Label\n**2**", 2),
        ("Label: 2\n...on reflection...\nLabel: 3", 3),  # the last explicit marker wins
        ("Label: 1 even though both are SAME-ish", 1),  # marker beats words
        ("Score: 1/3", 1),
        ("Rating = DIFFERENT", 1),
        ("The answer is MAYBE.", 2),
        ("3 - comparable, about the same things", 3),
        ("2\n\nThe two explanations overlap partially.", 2),
        ("These are clearly DIFFERENT topics.", 1),
        ("They are SAME or maybe DIFFERENT", None),  # two distinct upper-case labels
        ("These are the same thing", None),  # lower-case prose is not a label
        ("I would say 2.5", None),
        ("Label: 10", None),
        ("Evaluation: Both explanation are from different fields and are not comparable", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_label(text, label):
    assert parse_label(text) == label


# --- the OpenAI-compatible judge against a live local server ------------------------------


def test_request_format_auth_header_and_no_secret_anywhere(server, make_judge, tmp_path, caplog):
    judge = make_judge()
    res = judge.judge("words about cats", "feline mentions")
    assert (res.label, res.cached) == (3, False)
    (req,) = server.requests
    assert req["path"] == "/v1/chat/completions"
    assert req["headers"]["Authorization"] == f"Bearer {SECRET}"
    assert req["body"]["model"] == "judge-test"
    assert req["body"]["temperature"] == 0
    assert req["body"]["messages"] == [
        {"role": "system", "content": SYSTEM_PROMPT},
        {
            "role": "user",
            "content": 'Explanation 1: "words about cats"\nExplanation 2: "feline mentions"',
        },
    ]
    assert judge.counters.as_dict() | {} == {
        "calls": 1,
        "cache_hits": 0,
        "requests": 1,
        "retries": 0,
        "failures": 0,
        "unparsed": 0,
        "prompt_tokens": 100,
        "completion_tokens": 7,
    }
    files = list((tmp_path / "cache").rglob("*"))
    assert any(f.suffix == ".json" for f in files)
    for f in files:
        if f.is_file():
            assert SECRET not in f.read_text()
    assert SECRET not in repr(judge) and SECRET not in caplog.text
    # a server error that echoes the key: the raised error redacts it
    server.fail_if.add("leak")
    with pytest.raises(JudgeCallError) as err:
        make_judge(max_retries=0).judge("leak", "x")
    assert "HTTP 500" in str(err.value.__cause__) and SECRET not in str(err.value.__cause__)


def test_500_and_429_then_success(server, make_judge):
    server.queue = [("status", 500, {}), ("status", 429, {"Retry-After": "0"})]
    judge = make_judge()
    t0 = time.perf_counter()
    assert judge.judge("a", "b").label == 3
    assert time.perf_counter() - t0 < 1.0
    c = judge.counters
    assert (c.requests, c.retries, c.calls, c.failures) == (3, 2, 1, 0)


def test_timeout_then_success_and_timeout_giving_up(server, make_judge):
    server.queue = [("sleep", 0.6)]
    judge = make_judge(timeout=0.2)
    assert judge.judge("a", "b").label == 3
    assert (judge.counters.requests, judge.counters.retries) == (2, 1)
    server.queue = [("sleep", 0.6), ("sleep", 0.6)]
    with pytest.raises(JudgeCallError, match="failed after retries.*rerun to resume") as err:
        make_judge(timeout=0.2, max_retries=1).judge("c", "d")
    assert "timed out" in str(err.value.__cause__)


def test_non_retryable_status_fails_at_once(server, make_judge):
    server.queue = [("status", 400, {})]
    judge = make_judge()
    with pytest.raises(JudgeCallError):
        judge.judge("a", "b")
    assert (judge.counters.requests, judge.counters.failures) == (1, 1)


def test_permanent_failure_keeps_finished_results_and_rerun_resumes(server, make_judge):
    server.fail_if.add("feature text 3")
    judge = make_judge(max_concurrency=1, max_retries=1)
    with pytest.raises(JudgeCallError, match="1 judge call"):
        judge.judge_many(PAIRS)
    first = dict(server.answered)
    assert len(first) >= 3 and all(n == 1 for n in first.values())  # 0, 1, 2 (at least)
    server.fail_if.clear()
    again = make_judge(max_concurrency=1)
    results = again.judge_many(PAIRS)
    assert [r.label for r in results] == [3] * 6
    assert again.counters.cache_hits == len(first)
    assert again.counters.calls == 6 - len(first)
    assert all(n == 1 for n in server.answered.values())  # nothing answered twice
    assert len(server.answered) == 6


def test_second_run_is_served_from_cache(server, make_judge):
    first = make_judge().judge_many(PAIRS)
    n = len(server.requests)
    assert n == 6
    judge = make_judge()  # a new instance, e.g. another run directory, same cache
    second = judge.judge_many(PAIRS)
    assert len(server.requests) == n
    assert [r.label for r in second] == [r.label for r in first]
    assert all(r.cached for r in second) and not any(r.cached for r in first)
    assert (judge.counters.calls, judge.counters.cache_hits) == (0, 6)


def test_unparseable_answer_is_none_and_cached(server, make_judge):
    server.answers["odd"] = "I cannot decide between these."
    judge = make_judge()
    res = judge.judge("odd", "thing")
    assert res.label is None and res.raw == "I cannot decide between these."
    assert judge.counters.unparsed == 1
    again = make_judge().judge("odd", "thing")
    assert (again.label, again.cached, len(server.requests)) == (None, True, 1)


def test_concurrency_limit_and_duplicates(server, make_judge):
    server.delay = 0.05
    pairs = [(f"t{i}", "u") for i in range(12)] + [("t0", "u")] * 3
    judge = make_judge(max_concurrency=4)
    res = judge.judge_many(pairs)
    assert len(res) == 15 and len(server.requests) == 12  # duplicates asked once
    assert 1 < server.max_in_flight <= 4


def test_openai_endpoint_needs_a_key(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ValueError, match=r"\$OPENAI_API_KEY is not set"):
        OpenAIJudge(base_url="https://api.openai.com/v1")


# --- offline judges and the factory -------------------------------------------------------


def test_lexical_judge():
    j = LexicalJudge(thresholds=(0.15, 0.4))
    assert j.judge("Python function definitions", "function definitions in Python").label == 3
    assert j.judge("python import statements", "python class definitions").label == 2
    assert j.judge("references to universities", "the term pi in math").label == 1
    res = j.judge("the of and", "python")
    assert res.label is None and "undefined" in res.raw
    assert j.counters.calls == 4 and j.counters.unparsed == 1


def test_embedding_judge_with_injected_encoder():
    vocab = ["cat", "dog", "code", "loop"]

    def encode(texts):
        return [[t.split().count(w) for w in vocab] for t in texts]

    j = EmbeddingJudge(thresholds=(0.4, 0.9), encode=encode)
    res = j.judge_many([("cat dog", "dog cat"), ("cat dog", "cat code"), ("cat", "loop")])
    assert [r.label for r in res] == [3, 2, 1]
    assert res[1].raw == "cosine=0.5000"
    with pytest.raises(ValueError, match="t_maybe <= t_same"):
        EmbeddingJudge(thresholds=(0.9, 0.5), encode=encode)


def test_embedding_judge_without_sentence_transformers():
    try:
        import sentence_transformers  # noqa: F401

        pytest.skip("sentence-transformers is installed")
    except ImportError:
        pass
    with pytest.raises(ImportError, match="pip install sentence-transformers"):
        EmbeddingJudge().judge("a", "b")


def test_build_judge(server, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    lex = build_judge("lexical", model=None, thresholds=[0.1, 0.2], max_concurrency=8)
    assert isinstance(lex, LexicalJudge) and lex.thresholds == (0.1, 0.2)
    assert build_judge("lexical", thresholds=[]).thresholds == (0.15, 0.4)
    oa = build_judge(
        "openai", model="m", base_url=server.url, timeout_s=3, cache_dir=tmp_path, max_retries=0
    )
    assert isinstance(oa, OpenAIJudge) and oa.timeout == 3 and oa.retry.max_retries == 0
    assert oa.judge("x", "y").label == 3
    emb = build_judge(
        "embedding", model="m", thresholds=[0.2, 0.3], encode=lambda t: [[1.0]] * len(t)
    )
    assert emb.judge("x", "y").label == 3
    with pytest.raises(ValueError, match="unknown judge kind 'gpt'"):
        build_judge("gpt")
    with pytest.raises(ValueError, match="needs model"):
        build_judge("hf_local")
