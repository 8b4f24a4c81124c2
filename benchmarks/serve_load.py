"""Load on the served MRTMath-v0: N concurrent OpenEnv clients vs the in-process vector env.

Starts `mrt-gym serve` on 127.0.0.1 (--model as μ: the tiny LM by default), then for each N
in --clients: N client threads, each with its own WebSocket session, step full TinyMath
trajectories (a scripted plan: a wrong result, the right one, the answer) for --seconds; then
MRTMathVectorEnv(N) in this process does the same work (same plan, same settings and μ, its μ
batched over the N rows) for the same time. Prints steps/s of both and their ratio, p50/p99
step latency and errors.

The rounds run in --passes passes over --clients (1, 4, 16, then the same again, ...), each with
fresh problems. After every round, once its clients have left, the server's RSS and its shared
caches are read from /mrt/memory (after a full garbage collection; session objects left must be
0). The first pass is the warm-up (caches fill); the verdict line says whether RSS stayed flat
over the later passes (growth within --flat-mb). Per N, the median and spread (min-max) over the
passes are printed. The load average is printed beside every figure.

    python benchmarks/serve_load.py                      # N = 1, 4, 16; 3 passes x 10 s each
    python benchmarks/serve_load.py --clients 16 --seconds 30 --passes 5
    python benchmarks/serve_load.py --model tiny:classic   # the classic tiny LM as μ
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
from mrt_env.tinymath.scripted import scripted_episodes  # noqa: E402
from mrt_env.vector import MRTMathVectorEnv  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument(
    "--model",
    default="tiny",
    help="μ's model, served and in-process (mrt-gym serve --lm): tiny, tiny:VARIANT "
    "(e.g. tiny:classic) or a model folder",
)
parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
parser.add_argument("--seconds", type=float, default=10.0, help="stepping time per measurement")
parser.add_argument("--passes", type=int, default=3, help="passes over --clients (1st: warm-up)")
parser.add_argument("--flat-mb", type=float, default=10.0, help="RSS growth read as flat (MB)")
parser.add_argument("--j-cache-size", type=int, default=4096, help="the server's J cache per core")
parser.add_argument("--k", type=int, default=2, help="μ's K")
parser.add_argument("--token-budget", type=int, default=64)
parser.add_argument("--batch-window-ms", type=float, default=2.0)
parser.add_argument("--json", type=Path, default=None, help="also write the results here")
args = parser.parse_args()
settings = {"k": args.k, "token_budget": args.token_budget}
torch.set_num_threads(1)  # as the server (OMP_NUM_THREADS=1): one thread each, like with like


plan = scripted_episodes  # a wrong result, the right one, then the answer


def load() -> str:
    return "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


# ---------------------------------------------------------------- start the server
with socket.socket() as probe:
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
base_url = f"http://127.0.0.1:{port}"
log_path = Path(tempfile.mkdtemp(prefix="serve-load-")) / "serve.log"
command = [sys.executable, "-m", "mrt_env.openenv.cli", "serve", "--port", str(port)]
command += ["--lm", args.model, "--k", str(args.k), "--token-budget", str(args.token_budget)]
command += ["--max-sessions", str(max(args.clients) + 4)]
command += ["--batch-window-ms", str(args.batch_window_ms)]
command += ["--j-cache-size", str(args.j_cache_size)]
env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
server = subprocess.Popen(command, stdout=log_path.open("w"), stderr=subprocess.STDOUT, env=env)


def stats(path: str = "stats") -> dict:
    with urllib.request.urlopen(f"{base_url}/mrt/{path}", timeout=60) as answer:
        return json.loads(answer.read())


def memory_after_clients_left() -> dict:
    """/mrt/memory once every session is closed (bounded wait), after a full collection."""
    deadline = time.monotonic() + 30
    while stats()["sessions_live"] and time.monotonic() < deadline:
        time.sleep(0.2)
    return {**stats("memory"), "sessions_live": stats()["sessions_live"]}


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
        local_envs[clients] = MRTMathVectorEnv(clients, lm=args.model, **settings)
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
def mb(value: float) -> float:
    return value / 2**20


rows = []
start_memory = memory_after_clients_left()
print(f"server after loading: RSS {mb(start_memory['rss_bytes']):.0f} MB; {load()}")
for pass_index in range(args.passes):
    for clients in args.clients:
        first_seed = 10**6 * (1 + len(rows))  # fresh problems and seeds, the same for both sides
        before = stats()
        served = served_run(clients, args.seconds, first_seed)
        after = stats()
        memory = memory_after_clients_left()
        local = in_process_run(clients, args.seconds, first_seed)
        row = {
            **served,
            "pass": pass_index,
            "clients": clients,
            "in_process_steps_per_s": local["steps_per_s"],
            "ratio": served["steps_per_s"] / local["steps_per_s"],
            "rss_after_mb": mb(memory["rss_bytes"]),
            "memory": memory,
            "mean_round": (after["worker_jobs"] - before["worker_jobs"])
            / max(after["worker_rounds"] - before["worker_rounds"], 1),
            "loadavg": os.getloadavg(),
        }
        rows.append(row)
        prefix_mb = mb(memory["prefix_cache_bytes"] or 0)
        print(
            f"pass {pass_index} N={clients:2d}: served {row['steps_per_s']:.2f} steps/s "
            f"(p50 {row['p50_ms']:.0f} ms, p99 {row['p99_ms']:.0f} ms, "
            f"{row['mean_round']:.1f} jobs per μ round, errors {row['errors']}) | in-process "
            f"{row['in_process_steps_per_s']:.2f} steps/s | ratio {row['ratio']:.2f} | after the "
            f"clients left: RSS {row['rss_after_mb']:.0f} MB, sessions {memory['sessions_live']}, "
            f"session objects {memory['session_objects']}, J cache {memory['j_cache_entries']}, "
            f"prefix cache {memory['prefix_cache_entries']} ({prefix_mb:.0f} MB) | {load()}"
        )
        for example in served["error_examples"]:
            print("   error:", example)


def med(key: str, chosen: list[dict]) -> str:
    values = [r[key] for r in chosen]
    return f"{statistics.median(values):.2f} [{min(values):.2f}, {max(values):.2f}]"


summaries = []
for clients in args.clients:
    chosen = [r for r in rows if r["clients"] == clients]
    summaries.append(
        {"clients": clients, "median_ratio": statistics.median(r["ratio"] for r in chosen)}
    )
    print(
        f"N={clients:2d} median [min, max] of {len(chosen)}: served steps/s "
        f"{med('steps_per_s', chosen)}, in-process {med('in_process_steps_per_s', chosen)}, ratio "
        f"{med('ratio', chosen)}, p50 ms {med('p50_ms', chosen)}, p99 ms {med('p99_ms', chosen)}, "
        f"errors {sum(r['errors'] for r in chosen)}; {load()}"
    )

# ---------------------------------------------------------------- verdict: RSS once clients left
rss = [r["rss_after_mb"] for r in rows]
print("server RSS after each round (MB): " + ", ".join(f"{x:.0f}" for x in rss))
leftover = sum(r["memory"]["session_objects"] for r in rows)
errors = sum(r["errors"] for r in rows)
if args.passes < 2:
    print("RSS flat: not judged (one pass is all warm-up; use --passes 2 or more)")
else:
    warm = rss[len(args.clients) - 1]  # after the warm-up pass
    growth = rss[-1] - warm
    flat = growth <= args.flat_mb and leftover == 0
    print(
        f"RSS {'flat' if flat else 'NOT flat'}: last round {growth:+.1f} MB after warm-up "
        f"({warm:.0f} -> {rss[-1]:.0f} MB over {args.passes - 1} passes; flat means within "
        f"+{args.flat_mb:g} MB and no session objects left: {leftover} left); errors {errors}; "
        f"{load()}"
    )
server.terminate()
server.wait(timeout=30)
if args.json is not None:
    args.json.write_text(
        json.dumps(
            {"args": vars(args) | {"json": str(args.json)}, "rows": rows, "summaries": summaries},
            indent=2,
        )
    )
