"""Cold start: `devcopilot search` and `ask` as fresh processes, ONNX against PyTorch, and `serve` to answering.

    python bench/cold_cli.py --data-dir D        # D: a data dir whose KB 'default' is indexed
    python bench/cold_cli.py --data-dir D --rounds 5 --no-serve

Each round runs, in an order that rotates from round to round: the bare interpreter
(`python -c pass`, the floor no command can go under), `devcopilot search` and `devcopilot ask`
(offline model: retrieval and the cited passages, no network) with the ONNX runtime, and the same
two with PyTorch. PyTorch needs its own copy of the KB's vectors: the script indexes a twin data
dir (`D-torch`, the same sources through the embedding cache) once. Prints medians, and each
command's time beyond the interpreter's, and the load average (other work on the machine slows
every figure alike; the differences and ratios are what to read), and the CPU seconds each
command used (user + system), which a busy machine inflates far less than wall time.

`serve`: from starting the process to the first answer of a chat request on /v1 (offline model),
for the same data dir, ONNX and PyTorch alternately.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent / "devcopilot"
QUESTION = "How do I stream events from a run?"


def env_for(runtime: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DEVCOPILOT_", "OPENAI_", "DASHSCOPE_"))}
    env.update(HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", DEVCOPILOT_EMBEDDING_RUNTIME=runtime,
               DEVCOPILOT_CHAT_PROVIDER="offline", ANONYMIZED_TELEMETRY="False", GRADIO_ANALYTICS_ENABLED="False")
    return env


CPU: dict[str, list[float]] = {}  # command -> CPU seconds of each run (steadier than wall time on a busy machine)


def timed(cmd: list[str], env: dict, name: str = "") -> float:
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - t
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {out.stderr.strip()[-400:]}")
    CPU.setdefault(name, []).append(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
    return wall


def torch_twin(data: Path) -> Path:
    """A copy of the data dir, re-embedded once by PyTorch (the catalog and cache make it cheap after the first)."""
    twin = data.parent / f"{data.name}-torch"
    if not twin.is_dir():
        shutil.copytree(data, twin)
    env = env_for("torch")
    catalog = json.loads(subprocess.run([str(BIN), "--data-dir", str(twin), "status", "--json"], env=env,
                                        capture_output=True, text=True, check=True).stdout)
    kb = next(k for k in catalog["knowledge_bases"] if k["name"] == "default")
    if kb["embedding_model"] != catalog["embedding"]:
        print(f"re-embedding {twin} with PyTorch, once…", file=sys.stderr, flush=True)
        for s in kb["sources"]:
            subprocess.run([str(BIN), "--data-dir", str(twin), "ingest", s["spec"], "--quiet"], env=env, check=True)
    return twin


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_to_answer(data: Path, runtime: str) -> float:
    """Seconds from spawning `devcopilot serve` to the first chat answer on /v1."""
    port = free_port()
    body = json.dumps({"model": "tutoring", "messages": [{"role": "user", "content": QUESTION}]}).encode()
    t = time.perf_counter()
    proc = subprocess.Popen([str(BIN), "--data-dir", str(data), "serve", "--port", str(port)], env=env_for(runtime),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        while True:
            try:
                req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", data=body,
                                             headers={"Content-Type": "application/json"})
                answer = json.loads(urllib.request.urlopen(req, timeout=60).read())
                assert answer["choices"][0]["message"]["content"]
                return time.perf_counter() - t
            except OSError:
                if proc.poll() is not None:
                    raise SystemExit(f"serve stopped: {proc.stderr.read()[-400:]}") from None
                if time.perf_counter() - t > 300:
                    raise SystemExit("serve did not answer within 300 s") from None
                time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--no-serve", action="store_true")
    args = ap.parse_args()
    data = Path(args.data_dir).resolve()
    twin = torch_twin(data)
    runs = {
        "python -c pass": ([sys.executable, "-c", "pass"], env_for("onnx")),
        "search, onnx": ([str(BIN), "--data-dir", str(data), "search", QUESTION], env_for("onnx")),
        "ask, onnx": ([str(BIN), "--data-dir", str(data), "ask", QUESTION], env_for("onnx")),
        "search, torch": ([str(BIN), "--data-dir", str(twin), "search", QUESTION], env_for("torch")),
        "ask, torch": ([str(BIN), "--data-dir", str(twin), "ask", QUESTION], env_for("torch")),
    }
    names = list(runs)
    times: dict[str, list[float]] = {n: [] for n in names}
    loads = [os.getloadavg()[0]]
    for r in range(args.rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            times[name].append(timed(*runs[name], name))
        loads.append(os.getloadavg()[0])
        print(f"round {r + 1}: " + ", ".join(f"{n} {times[n][-1]:.2f} s" for n in names), flush=True)
    floor = statistics.median(times[names[0]])
    out = {"rounds": args.rounds, "cpus": os.cpu_count(),
           "load_average": [round(min(loads), 1), round(max(loads), 1)], "median_s": {}, "beyond_interpreter_s": {}}
    for name in names:
        med = statistics.median(times[name])
        out["median_s"][name] = round(med, 2)
        if name != names[0]:
            out["beyond_interpreter_s"][name] = round(med - floor, 2)
    out["median_cpu_s"] = {n: round(statistics.median(CPU[n]), 2) for n in names}
    for what in ("search", "ask"):
        out[f"{what}: torch / onnx"] = round(statistics.median(t / o for t, o in zip(times[f"{what}, torch"],
                                                                                        times[f"{what}, onnx"])), 2)
    if not args.no_serve:
        serve = {"onnx": [], "torch": []}
        for r in range(max(1, args.rounds // 2)):
            for runtime in (("onnx", "torch") if r % 2 == 0 else ("torch", "onnx")):
                serve[runtime].append(serve_to_answer(data if runtime == "onnx" else twin, runtime))
        out["serve_to_first_answer_s"] = {k: round(statistics.median(v), 2) for k, v in serve.items()}
    out["load_average_end"] = round(os.getloadavg()[0], 1)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
