"""``regret.py --lm-option``: backend options reach every served model the script builds.

The server is a named double of a ``/v1/completions`` server on loopback (``http.server``)
that records each request and how many were in flight at once; the real-server path is tested
in ``tests/mrt_env/test_lm_server.py`` and the realmodel tier.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from mrt_env.tinymath.loading import tiny_lm_path
from tests.benchmarks.scripts import load_script

regret = load_script("regret")
pytestmark = pytest.mark.filterwarnings("ignore:.*ignores the temperature")  # the double's


class CompletionsDouble(BaseHTTPRequestHandler):
    """``POST /v1/completions`` double: a response ends thinking with ``\\boxed{2}``, a forced
    answer is ``\\boxed{2}``; ``n`` choices; stop strings ignored. Records every body and the
    most requests in flight at once."""

    bodies: ClassVar[list[dict[str, Any]]] = []
    in_flight: ClassVar[list[int]] = [0, 0]  # now, most
    lock: ClassVar[threading.Lock] = threading.Lock()

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        cls = type(self)
        with cls.lock:
            cls.bodies.append(body)
            cls.in_flight[0] += 1
            cls.in_flight[1] = max(cls.in_flight)
        time.sleep(0.05)  # long enough for a concurrent client to overlap requests
        text = "1+1=2.</think>\\boxed{2}" if body["prompt"].endswith("<think>\n") else "\\boxed{2}"
        cut = text[: body["max_tokens"]]
        finish = "length" if len(cut) < len(text) else "stop"
        choices = [
            {"index": j, "text": cut, "finish_reason": finish} for j in range(body.get("n", 1))
        ]
        payload = {"id": "c", "object": "text_completion", "created": 0, "model": "m"}
        data = json.dumps({**payload, "choices": choices}).encode()
        with cls.lock:
            cls.in_flight[0] -= 1
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:  # quiet
        pass


@pytest.fixture
def server_url() -> Iterator[str]:
    CompletionsDouble.bodies.clear()
    CompletionsDouble.in_flight[:] = [0, 0]
    server = ThreadingHTTPServer(("127.0.0.1", 0), CompletionsDouble)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def _argv(tmp_path: Path, url: str, *options: str) -> list[str]:
    problems = tmp_path / "problems.jsonl"
    lines = [json.dumps({"id": f"q{i}", "problem": f"{i}+1", "answer": "2"}) for i in range(2)]
    problems.write_text("\n".join(lines) + "\n")
    return [
        "--policies", f"s=openai:{url}#m", "--prover", f"openai:{url}#m", "--template", "tiny",
        "--problems", str(problems), "--num-problems", "2", "--samples", "2", "--k", "2",
        "--token-budget", "24", "--budgets", "64", "--extensions", "0",
        "--run-dir", str(tmp_path / "runs"), "--name", "served", *options,
    ]  # fmt: skip


def test_lm_options_reach_the_served_policy_and_prover(tmp_path: Path, server_url: str) -> None:
    tokenizer = f"tokenizer={tiny_lm_path()}"  # text, not JSON
    argv = _argv(tmp_path, server_url, "--lm-option", "max_concurrency=1", "use_n=false")
    args = regret.parse_args(  # the flag repeats; a JSON object is a dict
        regret.Args, [*argv, "--lm-option", tokenizer, '--lm-option=extra_body={"top_k": 20}']
    )
    assert args.lm_option[-2:] == (tokenizer, 'extra_body={"top_k": 20}')
    results = regret.main(args)
    assert results["num_problems"] == {"s": 2}
    assert results["settings"]["lm_option"] == args.lm_option  # part of the run's hash
    bodies = CompletionsDouble.bodies
    forced = [b for b in bodies if not b["prompt"].endswith("<think>\n")]
    assert len(bodies) > len(forced) > 0  # the policy's responses and μ's forced answers
    assert all(b["top_k"] == 20 for b in bodies)  # extra_body, on policy and μ
    assert not [b for b in bodies if "n" in b]  # use_n=false: one request per forced answer
    assert len(forced) == 2 * 2 * 2  # 2 problems x 2 prefixes (empty, whole response) x K=2
    assert CompletionsDouble.in_flight[1] == 1  # max_concurrency=1


def test_without_options_the_served_model_overlaps_requests_and_asks_for_n(
    tmp_path: Path, server_url: str
) -> None:
    # the control of the test above: the server double sees what each option changes
    argv = _argv(tmp_path, server_url, "--lm-option", f"tokenizer={tiny_lm_path()}")
    regret.main(regret.parse_args(regret.Args, argv))
    assert [b for b in CompletionsDouble.bodies if b.get("n") == 2]
    assert not [b for b in CompletionsDouble.bodies if "top_k" in b]
    assert CompletionsDouble.in_flight[1] > 1


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["max_concurency=1"], "--lm-option: lm_options ['max_concurency'] are not options of"),
        (["max_concurrency"], "--lm-option: lm option 'max_concurrency' is not KEY=VALUE"),
        (["seed=1", "seed=2"], "--lm-option: lm option 'seed' is given twice"),
    ],
)
def test_a_bad_lm_option_stops_the_run_before_any_work(
    tmp_path: Path, server_url: str, options: list[str], message: str
) -> None:
    args = regret.parse_args(regret.Args, _argv(tmp_path, server_url, "--lm-option", *options))
    with pytest.raises(SystemExit, match=message.replace("[", r"\[").replace("]", r"\]")):
        regret.main(args)
    assert not CompletionsDouble.bodies and not (tmp_path / "runs").exists()


def test_analyze_traces_passes_lm_options_to_its_served_model(
    tmp_path: Path, server_url: str
) -> None:
    analyze = load_script("analyze_traces")
    argv = _argv(tmp_path, server_url)
    problems = argv[argv.index("--problems") + 1]
    traces = tmp_path / "traces.jsonl"
    lines = [{"problem_id": f"q{i}", "response": "1+1=2.</think>\\boxed{2}"} for i in range(2)]
    traces.write_text("".join(json.dumps(line) + "\n" for line in lines))
    common = [
        "--traces", str(traces), "--problems", problems, "--model", f"openai:{server_url}#m",
        "--template", "tiny", "--k", "2", "--budgets", "64", "--run-dir", str(tmp_path / "a"),
    ]  # fmt: skip
    with pytest.raises(SystemExit, match=r"--lm-option: lm_options \['max_concurency'\]"):
        analyze.main(analyze.parse_args(analyze.Args, [*common, "--lm-option", "max_concurency=1"]))
    assert not CompletionsDouble.bodies and not (tmp_path / "a").exists()  # before any work
    options = ["max_concurrency=1", "use_n=false", f"tokenizer={tiny_lm_path()}"]
    analyze.main(analyze.parse_args(analyze.Args, [*common, "--lm-option", *options]))
    assert CompletionsDouble.bodies and not [b for b in CompletionsDouble.bodies if "n" in b]
    assert CompletionsDouble.in_flight[1] == 1
