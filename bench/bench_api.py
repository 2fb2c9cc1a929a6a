"""Fit service under load: recommendations and try-on beside the framework's floor, in one run.

    .venv/bin/python bench/bench_api.py [--models 500] [--passports 50] [--clients 50] [--seconds 10]

1. A catalogue of `--models` generated models (`footfit catalog generate --seed 1 --tenant bench`, the importer's
   path, sold by the bench tenant with stock in its store; cached as var/bench/api-catalogue-N-seed1-bench.sqlite,
   ~40 s for 500 models on first use) is copied into a temporary
   folder: the service's SQLite database, the embedded default.
2. `footfit serve` starts on it as its own process (one uvicorn worker); a key of the bench tenant with every
   scope is made there with the product's code, and `--passports` customers (webshop consent) get a passport each
   over HTTP (passport.json + PLYs of population subjects measured with the product's code, testing/api_world.py).
3. wrk (Debian's package; installed with apt when missing) drives the service with `--clients` connections
   for `--seconds` per endpoint, rotating over the passports (a Lua script): GET /v1/me, the cheapest
   authenticated route (the floor: key check, one row read), GET .../recommendations (top three, every model),
   GET .../recommendations?price_max=... with a new price limit on every request (a question never asked
   before: the answer is computed from the passport's search, which the service prepared when the passport was
   stored), GET .../tryon (the best size of each passport's first recommendation, with per-point clearance),
   the same try-on as the kiosk and try-on pages ask for it (drawing=true&per_point=false: the feet thinned
   and placed in the shoe, no per-point list), and GET /v1/passports/{id} (the webshop view: what any passport
   route costs besides its fit work).
   Every request goes through the key check, the tenant-scoped passport read and the audit entry.
4. One client, one request at a time, over every passport: the floor; a new question; and the first question
   after a catalogue change (a stock update drops every kept search, so each request searches all models).
Prints throughput, p50 and p99 per endpoint and each p50 as a multiple of the floor's (target:
recommendations within 3x). wrk and the server share the machine's cores.

    .venv/bin/python bench/bench_api.py --workers 1,2,4 --database postgresql [--clients 50] [--seconds 10]

Scale-out instead (docs/deployment.md): the passports are stored once, then for each worker count `footfit serve
--workers N` runs on the same database and wrk drives the floor and recommendations (each after a warm-up round
that builds every worker's matcher and searches). Prints each count's throughput, p50 and p99 beside the floor of
the same server, its throughput as a multiple of one worker's, and the service's resident memory (every worker
process) before and after its requests.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlmodel import Session

from api import auth, tenancy
from api.db import open_service_db
from testing.api_world import scan_files
from testing.net import free_port
from testing.postgres import PostgresServer

ROOT = Path(__file__).resolve().parents[1]

CATALOGUE_SEED = 1
SUBJECT_SEEDS = tuple(range(2, 12))  # distinct feet; passports cycle through them
TARGET_RATIO = 3.0
BENCH_TENANT = "bench"  # sells the whole generated catalogue
BENCH_STORE = "STORE-01"  # the bench tenant's store: the generated catalogue's stock is there
NEW_QUESTION_PRICE = 10_000  # a price limit above every generated price, made new per request by its decimals
WRK_THREADS = 2
SETTLED_MS = 50.0  # an idle server answers the floor faster than this
LUA = """
paths = {%s}
counter = 0
request = function()
  counter = counter + 1
  local path = string.gsub(paths[(counter %% #paths) + 1], "{counter}", tostring(counter))
  return wrk.format("GET", path, {["Authorization"] = "Bearer %s"})
end
"""


@dataclass(frozen=True)
class LoadResult:
    name: str
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=500)
    parser.add_argument("--passports", type=int, default=50)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite",
                        help="sqlite: the embedded default; postgresql: a throwaway server on loopback (as the "
                             "tests start it), the catalogue generated into it")
    parser.add_argument("--workers", type=lambda text: [int(n) for n in text.split(",")],
                        help="comma-separated worker counts, e.g. 1,2,4: the scale-out table instead")
    args = parser.parse_args()
    if args.workers:
        return _scale_out(args)
    wrk = _wrk()
    with tempfile.TemporaryDirectory(prefix="footfit-bench-api-") as folder, _database(args, Path(folder)) as url:
        token = _tenant_key(url)
        port = free_port()
        server = _serve(url, Path(folder), port)
        try:
            base = f"http://127.0.0.1:{port}"
            targets = _passports(base, token, args.passports)
            results = [_load(wrk, Path(folder), base, token, name, paths, args.clients, args.seconds)
                       for name, paths in targets.items()]
            single = _one_at_a_time(base, token, targets)
        finally:
            _stop(server)
    _report(results, single, args)
    return 0


def _wrk() -> str:
    found = shutil.which("wrk")
    if found is None:
        print("installing wrk (apt-get install wrk)...", file=sys.stderr)
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "wrk"], check=True,
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"), stdout=subprocess.DEVNULL)
        found = shutil.which("wrk")
    return found


@contextmanager
def _database(args: argparse.Namespace, folder: Path) -> Iterator[str]:
    """The service's database URL with the catalogue in it: a copy of the cached SQLite file, or a new
    PostgreSQL database the catalogue is generated into."""
    if args.database == "sqlite":
        database = folder / "footfit.sqlite"
        shutil.copy(_catalogue(args.models), database)
        yield f"sqlite:///{database}"
        return
    server = PostgresServer()
    try:
        url = server.new_database()
        print(f"generating {args.models} models into PostgreSQL...", file=sys.stderr)
        _generate(url, args.models)
        yield url
    finally:
        server.stop()


def _generate(url: str, models: int) -> None:
    """The catalogue, sold by the bench tenant (its assortment) with stock in its store STORE-01."""
    engine = open_service_db(url)
    with Session(engine) as session:
        tenancy.create_tenant(session, BENCH_TENANT, retention_days=30)
        tenancy.add_store(session, BENCH_TENANT, BENCH_STORE)
    engine.dispose()
    env = dict(os.environ, FOOTFIT_DATABASE_URL=url)
    subprocess.run([sys.executable, "-m", "cli.main", "catalog", "generate", "--models", str(models), "--seed",
                    str(CATALOGUE_SEED), "--stores", "1", "--tenant", BENCH_TENANT], env=env, check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL)


def _catalogue(models: int) -> Path:
    path = ROOT / "var" / "bench" / f"api-catalogue-{models}-seed{CATALOGUE_SEED}-{BENCH_TENANT}.sqlite"
    if not path.exists():
        print(f"building {path} ({models} models through the importer)...", file=sys.stderr)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial.sqlite")
        partial.unlink(missing_ok=True)
        _generate(f"sqlite:///{partial}", models)
        partial.rename(path)
    return path


def _tenant_key(url: str) -> str:
    engine = open_service_db(url)
    with Session(engine) as session:
        _, token = auth.create_key(session, BENCH_TENANT, frozenset(auth.SCOPES), expires_days=1, label="bench")
    engine.dispose()
    return token


def _serve(url: str, folder: Path, port: int, workers: int = 1, **settings: str) -> subprocess.Popen:
    """`footfit serve` on `url`, with `settings` as FOOTFIT_ environment variables; its stderr goes to
    serve-<port>.log in `folder` (a pipe nobody reads would stall it once full)."""
    env = dict(os.environ, FOOTFIT_DATABASE_URL=url, FOOTFIT_DATA_DIR=str(folder / "var"),
               **{f"FOOTFIT_{name.upper()}": value for name, value in settings.items()})
    log = folder / f"serve-{port}.log"
    with log.open("w") as stderr:
        server = subprocess.Popen([sys.executable, "-m", "cli.main", "serve", "--port", str(port), "--workers",
                                   str(workers)], env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=stderr)
    deadline = time.monotonic() + 120
    while True:
        if server.poll() is not None:
            raise SystemExit(f"footfit serve exited: {log.read_text()[-2000:]}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=2)
            return server
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise SystemExit("footfit serve did not answer within 120 s") from None
            time.sleep(0.2)


def _stop(server: subprocess.Popen) -> None:
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def _passports(base: str, token: str, count: int) -> dict[str, list[str]]:
    """Upload the passports; the request paths per endpoint (warmed up once each)."""
    http = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=120)
    views, recommendations, tryons = [], [], []
    for i in range(count):
        loyalty_id = f"B{i:05d}"
        http.post("/v1/customers", json={"loyalty_id": loyalty_id}).raise_for_status()
        for purpose in ("scan_storage", "webshop"):
            http.post(f"/v1/customers/{loyalty_id}/consents",
                      json={"purpose": purpose, "granted": True, "source": "webshop"}).raise_for_status()
        passport = http.post(f"/v1/customers/{loyalty_id}/passports",
                             files=scan_files(SUBJECT_SEEDS[i % len(SUBJECT_SEEDS)]).multipart())
        passport.raise_for_status()
        path = f"/v1/passports/{passport.json()['id']}"
        top = http.get(f"{path}/recommendations")
        top.raise_for_status()
        best = top.json()[0]["fit"]
        views.append(path)
        recommendations.append(f"{path}/recommendations")
        tryons.append(f"{path}/tryon?model_id={best['model_id']}&size_id={best['size_id']}")
        http.get(tryons[-1]).raise_for_status()
    http.close()
    return {"me (floor)": ["/v1/me"], "recommendations": recommendations,
            "recommend, new": [f"{p}?price_max={NEW_QUESTION_PRICE}.{{counter}}" for p in recommendations],
            "try-on": tryons, "try-on, as pages": [f"{t}&drawing=true&per_point=false" for t in tryons],
            "passport view": views}


def _one_at_a_time(base: str, token: str, targets: dict[str, list[str]]) -> dict[str, float]:
    """Median ms of one client's requests: the floor, a new question, a question after a catalogue change."""
    http = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=120)

    def median_ms(paths: list[str]) -> float:
        times = []
        for path in paths:
            started = time.perf_counter()
            http.get(path).raise_for_status()
            times.append((time.perf_counter() - started) * 1e3)
        return float(sorted(times)[len(times) // 2])

    passports = targets["recommendations"]
    out = {"me (floor)": median_ms(["/v1/me"] * len(passports)),
           "recommend, new": median_ms([f"{p}?price_max={NEW_QUESTION_PRICE}.5" for p in passports])}
    sku = http.get(passports[0]).json()[0]["fit"]["sku"]
    http.put(f"/v1/stores/{BENCH_STORE}/stock", json={"items": [{"sku": sku, "quantity": 3}]}).raise_for_status()
    out["after catalogue change"] = median_ms([f"{p}?price_max={NEW_QUESTION_PRICE}.25" for p in passports])
    http.close()
    return out


def _load(wrk: str, folder: Path, base: str, token: str, name: str, paths: list[str], clients: int,
          seconds: int) -> LoadResult:
    """wrk's run, once the server has answered what the previous run left in progress."""
    _settled(base, token)
    script = folder / "rotate.lua"
    script.write_text(LUA % (", ".join(f'"{p}"' for p in paths), token))
    threads = min(WRK_THREADS, clients)  # wrk needs a connection per thread
    out = subprocess.run([wrk, "-t", str(threads), "-c", str(clients), "-d", f"{seconds}s", "--latency", "--timeout",
                          "30s", "-s", str(script), base], capture_output=True, text=True, check=True)
    return _parse(name, out.stdout)


def _settled(base: str, token: str, timeout_s: float = 120) -> None:
    """Wait until the server is idle: wrk leaves its last requests in progress when it stops, and they would hold
    the key's places (429s) and the cores during the next run. Idle: the floor answers within SETTLED_MS."""
    deadline = time.monotonic() + timeout_s
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
        while time.monotonic() < deadline:
            started = time.perf_counter()
            answered = http.get("/v1/me").status_code == 200
            if answered and (time.perf_counter() - started) * 1e3 < SETTLED_MS:
                return
            time.sleep(0.5)
    raise SystemExit(f"the server at {base} was still busy {timeout_s:.0f} s after the last run")


def _parse(name: str, text: str) -> LoadResult:
    def latency_ms(percent: str) -> float:
        value, unit = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M).groups()
        return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]

    requests = int(re.search(r"(\d+) requests in", text).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    failed = (int(errors.group(1)) if errors else 0) + (sum(map(int, socket_errors.groups())) if socket_errors else 0)
    return LoadResult(name, float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)), latency_ms("50"),
                      latency_ms("99"), requests, failed)


def _report(results: list[LoadResult], single: dict[str, float], args: argparse.Namespace) -> None:
    floor = results[0].p50_ms
    print(f"\nfit service under load: {args.clients} clients (wrk, {WRK_THREADS} threads), {args.seconds} s per "
          f"endpoint, {args.models} models, {args.passports} passports, {args.database}, one uvicorn worker, "
          f"{os.cpu_count()} cores shared by server and load generator\n")
    print(f"{'endpoint':18s} {'req/s':>8s} {'p50 ms':>8s} {'p99 ms':>8s} {'p50 / floor':>12s} {'requests':>9s} "
          f"{'errors':>7s}")
    for r in results:
        print(f"{r.name:18s} {r.requests_per_s:8.1f} {r.p50_ms:8.1f} {r.p99_ms:8.1f} {r.p50_ms / floor:11.2f}x "
              f"{r.requests:9d} {r.errors:7d}")
    print(f"\none client, one request at a time ({args.passports} passports): median ms and / floor")
    for name, ms in single.items():
        print(f"{name:24s} {ms:8.1f} {ms / single['me (floor)']:8.2f}x")
    for r in results[1:3]:
        ratio = r.p50_ms / floor
        print(f"target: {r.name} p50 within {TARGET_RATIO:g}x of the floor: "
              f"{'met' if ratio <= TARGET_RATIO else 'NOT met'} ({ratio:.2f}x)")


@dataclass(frozen=True)
class ScaleRow:
    workers: int
    floor: LoadResult
    recommendations: LoadResult
    rss_before_mb: float
    rss_after_mb: float


def _scale_out(args: argparse.Namespace) -> int:
    wrk = _wrk()
    rows = []
    with tempfile.TemporaryDirectory(prefix="footfit-bench-api-") as folder, _database(args, Path(folder)) as url:
        token = _tenant_key(url)
        port = free_port()
        server = _serve(url, Path(folder), port)
        try:
            targets = _passports(f"http://127.0.0.1:{port}", token, args.passports)
        finally:
            _stop(server)
        for workers in args.workers:
            port = free_port()
            server = _serve(url, Path(folder), port, workers)
            base = f"http://127.0.0.1:{port}"
            try:
                warm_up = max(3, args.seconds // 2)
                _load(wrk, Path(folder), base, token, "warm-up", targets["recommendations"], args.clients, warm_up)
                before = _resident_mb(server.pid)
                floor = _load(wrk, Path(folder), base, token, "me (floor)", ["/v1/me"], args.clients, args.seconds)
                top = _load(wrk, Path(folder), base, token, "recommendations", targets["recommendations"],
                            args.clients, args.seconds)
                rows.append(ScaleRow(workers, floor, top, before, _resident_mb(server.pid)))
            finally:
                _stop(server)
    _report_scale(rows, args)
    return 0


def _resident_mb(pid: int) -> float:
    """Resident memory of a process and its children (the service's workers), MB."""
    pids, total_kb = [pid], 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                pids.append(int(entry))
    for each in pids:
        try:
            status = Path(f"/proc/{each}/status").read_text()
        except OSError:
            continue
        total_kb += int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.M).group(1))
    return total_kb / 1024


def _report_scale(rows: list[ScaleRow], args: argparse.Namespace) -> None:
    one = rows[0].recommendations.requests_per_s or float("nan")
    print(f"\nscale-out: {args.clients} clients (wrk), {args.seconds} s per endpoint, {args.models} models, "
          f"{args.passports} passports, {args.database}, {os.cpu_count()} cores shared by server and load generator\n")
    print(f"{'workers':>7s} {'floor req/s':>11s} {'floor p50':>9s} {'recs req/s':>10s} {'recs p50':>8s} "
          f"{'recs p99':>8s} {'p50/floor':>9s} {'x 1 worker':>10s} {'errors':>6s} {'RSS MB before':>13s} "
          f"{'after':>7s}")
    for r in rows:
        f, t = r.floor, r.recommendations
        print(f"{r.workers:7d} {f.requests_per_s:11.1f} {f.p50_ms:9.1f} {t.requests_per_s:10.1f} {t.p50_ms:8.1f} "
              f"{t.p99_ms:8.1f} {t.p50_ms / (f.p50_ms or float('nan')):8.2f}x {t.requests_per_s / one:9.2f}x "
              f"{f.errors + t.errors:6d} {r.rss_before_mb:13.0f} {r.rss_after_mb:7.0f}")
    print("(RSS after: once the floor's and the recommendations' requests are answered; "
          f"{sum(r.recommendations.requests for r in rows)} recommendations in all)")


if __name__ == "__main__":
    sys.exit(main())
