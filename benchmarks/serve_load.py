"""Load on the served MRTMath-v0: N concurrent OpenEnv clients vs the in-process vector env.

Starts `mrt-gym serve` on 127.0.0.1 (tiny LM as μ), then for each N in --clients: N client
threads, each with its own WebSocket session, step full TinyMath trajectories (a scripted plan:
a wrong result, the right one, the answer) for --seconds; then MRTMathVectorEnv(N) in this
process does the same work (same plan, same settings, its μ batched over the N rows) for the
same time. Prints steps/s of both and their ratio, p50/p99 step latency, errors, and the
server's RSS before the clients and after they left. Repeated --repeats times; the median and
the spread (min-max) are printed. The load average is printed beside every figure.

    python benchmarks/serve_load.py                      # N = 1, 4, 16; 3 x 10 s each
    python benchmarks/serve_load.py --clients 16 --seconds 30 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mrt_env.openenv.client import MRTMathEnv  # noqa: E402
from mrt_env.openenv.models import MRTAction  # noqa: E402
from mrt_env.vector import MRTMathVectorEnv  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
parser.add_argument("--seconds", type=float, default=10.0, help="stepping time per measurement")
parser.add_argument("--repeats", type=int, default=3)
parser.add_argument("--k", type=int, default=2, help="μ's K")
parser.add_argument("--token-budget", type=int, default=64)
parser.add_argument("--batch-window-ms", type=float, default=2.0)
parser.add_argument("--json", type=Path, default=None, help="also write the results here")
args = parser.parse_args()
settings = {"k": args.k, "token_budget": args.token_budget}
torch.set_num_threads(1)  # as the server (OMP_NUM_THREADS=1): one thread each, like with like


def plan(observation: str) -> list[str]:
    """A TinyMath trajectory's episodes: a wrong result, the right one, then the answer."""
    expression = observation.split("Problem: ", 1)[1].split("\n", 1)[0]
    value = eval(expression, {"__builtins__": {}})  # TinyMath: + - * and parentheses only
    return [
        f"{expression} = {value + 1}\n\n",
        f"Wait, {expression} = {value}\n\n",
        f"</think> \\boxed{{{value}}}",
    ]


def load() -> str:
    return "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


# ---------------------------------------------------------------- start the server
with socket.socket() as probe:
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
base_url = f"http://127.0.0.1:{port}"
log_path = Path(tempfile.mkdtemp(prefix="serve-load-")) / "serve.log"
command = [sys.executable, "-m", "mrt_env.openenv.cli", "serve", "--port", str(port)]
command += ["--k", str(args.k), "--token-budget", str(args.token_budget)]
command += ["--max-sessions", str(max(args.clients) + 4)]
command += ["--batch-window-ms", str(args.batch_window_ms)]
env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
server = subprocess.Popen(command, stdout=log_path.open("w"), stderr=subprocess.STDOUT, env=env)


def stats() -> dict:
    with urllib.request.urlopen(f"{base_url}/mrt/stats", timeout=10) as answer:
        return json.loads(answer.read())


deadline = time.monotonic() + 300
while True:
    try:
        stats()
        break
    except OSError:
        if server.poll() is not None or time.monotonic() > deadline:
            sys.exit(f"server did not start:\n{log_path.read_text()[-2000:]}")
        time.sleep(0.5)
print(f"server on {base_url} (log {log_path}); {load()}")


# ---------------------------------------------------------------- served: N client threads
def served_run(clients: int, seconds: float, first_seed: int) -> dict:
    latencies: list[list[float]] = [[] for _ in range(clients)]
    steps = [0] * clients
    errors: list[str] = []
    barrier = threading.Barrier(clients + 1)
    stop = threading.Event()

    def client(index: int) -> None:
        try:
            with MRTMathEnv(base_url=base_url, message_timeout_s=120).sync() as remote:
                seed = first_seed + 1000 * index
                barrier.wait()
                while not stop.is_set():
                    result = remote.reset(seed=seed, **settings)
                    seed += 1
                    for episode in plan(result.observation.text):
                        start = time.perf_counter()
                        result = remote.step(MRTAction(text=episode))
                        latencies[index].append(time.perf_counter() - start)
                        steps[index] += 1
                        if result.done or stop.is_set():
                            break
        except Exception as error:  # counted and printed
            errors.append(repr(error))
            if not barrier.broken:
                barrier.abort()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait(timeout=120)
    start = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    elapsed = time.perf_counter() - start
    counted = sum(steps)  # steps finished in the window (a step in flight at stop is waited)
    for thread in threads:
        thread.join(timeout=300)
    elapsed = max(elapsed, 1e-9)
    every = [x for per_client in latencies for x in per_client]
    return {
        "steps_per_s": counted / elapsed,
        "p50_ms": 1000 * float(np.percentile(every, 50)) if every else float("nan"),
        "p99_ms": 1000 * float(np.percentile(every, 99)) if every else float("nan"),
        "errors": len(errors),
        "error_examples": errors[:3],
    }


# ---------------------------------------------------------------- in-process: the vector env
local_envs: dict[int, MRTMathVectorEnv] = {}


def in_process_run(clients: int, seconds: float, first_seed: int) -> dict:
    if clients not in local_envs:
        local_envs[clients] = MRTMathVectorEnv(clients, **settings)
    envs = local_envs[clients]
    observations, _ = envs.reset(seed=[first_seed + 1000 * i for i in range(clients)])
    plans = [plan(o) for o in observations]
    done = np.zeros(clients, dtype=bool)
    steps = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        actions = ["" if done[i] or not plans[i] else plans[i].pop(0) for i in range(clients)]
        stepped = int((~done).sum())
        observations, _, terminated, truncated, _ = envs.step(actions)
        steps += stepped
        for i in range(clients):
            if done[i]:  # this step was the autoreset: a new problem, a new plan
                plans[i] = plan(observations[i])
        done = terminated | truncated
    return {"steps_per_s": steps / (time.perf_counter() - start)}


# ---------------------------------------------------------------- measure
results = []
rss_start = stats()["rss_bytes"]
for clients in args.clients:
    rows = []
    for repeat in range(args.repeats):
        # fresh problems and seeds for each measurement, the same for both sides
        first_seed = 10**6 * (1 + len(results) * args.repeats + repeat)
        before = stats()
        served = served_run(clients, args.seconds, first_seed)
        time.sleep(1.0)  # sessions close
        after = stats()
        local = in_process_run(clients, args.seconds, first_seed)
        rows.append(
            {
                **served,
                "in_process_steps_per_s": local["steps_per_s"],
                "ratio": served["steps_per_s"] / local["steps_per_s"],
                "rss_before_mb": before["rss_bytes"] / 2**20,
                "rss_after_mb": after["rss_bytes"] / 2**20,
                "sessions_live_after": after["sessions_live"],
                "mean_round": (after["worker_jobs"] - before["worker_jobs"])
                / max(after["worker_rounds"] - before["worker_rounds"], 1),
                "loadavg": os.getloadavg()[0],
            }
        )
        row = rows[-1]
        print(
            f"N={clients:2d} #{repeat}: served {row['steps_per_s']:.2f} steps/s "
            f"(p50 {row['p50_ms']:.0f} ms, p99 {row['p99_ms']:.0f} ms, "
            f"{row['mean_round']:.1f} jobs per μ round, errors {row['errors']}) | in-process "
            f"{row['in_process_steps_per_s']:.2f} steps/s | ratio {row['ratio']:.2f} | server "
            f"RSS {row['rss_before_mb']:.0f} -> {row['rss_after_mb']:.0f} MB | {load()}"
        )
        for example in served["error_examples"]:
            print("   error:", example)

    def med(key: str, rows: list[dict] = rows) -> str:
        values = [r[key] for r in rows]
        return f"{statistics.median(values):.2f} [{min(values):.2f}, {max(values):.2f}]"

    summary = {
        "clients": clients,
        "rows": rows,
        "median_ratio": statistics.median(r["ratio"] for r in rows),
    }
    results.append(summary)
    print(
        f"N={clients:2d} median [min, max] of {args.repeats}: served steps/s {med('steps_per_s')}, "
        f"in-process {med('in_process_steps_per_s')}, ratio {med('ratio')}, p50 ms "
        f"{med('p50_ms')}, p99 ms {med('p99_ms')}, errors "
        f"{sum(r['errors'] for r in rows)}; {load()}"
    )

time.sleep(1.0)
final = stats()
print(
    f"server RSS: {rss_start / 2**20:.0f} MB after loading, {final['rss_bytes'] / 2**20:.0f} MB "
    f"after all clients left ({final['sessions_live']} sessions open, "
    f"{final['child_processes']} child processes); {load()}"
)
server.terminate()
server.wait(timeout=30)
if args.json is not None:
    args.json.write_text(
        json.dumps({"args": vars(args) | {"json": str(args.json)}, "results": results}, indent=2)
    )
