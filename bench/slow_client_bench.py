#!/usr/bin/env python3
"""Slow-client and huge-body benchmark of `switchyard serve` (issue 11, items 3 and 4).

Starts the daemon (intake only), then per run:
  * baseline: /healthz and signed /hooks/git deliveries, each on a new connection, one after
    another, with no other client;
  * attack: the same while SLOW connections are held open, each sending one header line every
    INTERVAL seconds and never finishing its head (connections the server closes are opened
    again at once, so SLOW stay open). They come from 127.0.0.2 and up, 100 per address (a
    distributed attacker; one address alone is capped by the per-address limit).
Prints p50/p99/max latency and failures per run and the median over runs. Then sends one
chunked body of CHUNKED_MIB MiB (unsigned) and reports the answer, when it came, and the
daemon's peak RSS (VmHWM) before and after.

usage: bench/slow_client_bench.py [--bin build/runner/app/switchyard] [--slow 1000]
         [--runs 5] [--seconds 10] [--interval 2] [--chunked-mib 300]
Loopback only; stops the daemon by itself.
"""
import argparse
import hashlib
import hmac
import os
import select
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

SECRET = b"bench-hook-secret"
BODY = (b'{"repo":"bench/infra","ref":"refs/heads/feature",'
        b'"before":"1111111111111111111111111111111111111111",'
        b'"after":"2222222222222222222222222222222222222222","pusher":"bench"}')


def start_daemon(binary, tmp):
    with open(os.path.join(tmp, "hook.secret"), "wb") as f:
        f.write(SECRET + b"\n")
    with open(os.path.join(tmp, "switchyard.yaml"), "w") as f:
        f.write(f"""listen: 127.0.0.1:0
state_dir: {tmp}/state
hook_secret_file: {tmp}/hook.secret
repos:
  - name: bench/infra
    path: {tmp}/none.git
    deploy_branches: [main]
""")
    out = open(os.path.join(tmp, "out"), "w+")
    proc = subprocess.Popen([binary, "serve", "--config", os.path.join(tmp, "switchyard.yaml"),
                             "--intake-only"], stdout=out, stderr=subprocess.DEVNULL)
    for _ in range(100):
        out.seek(0)
        text = out.read()
        if "listening" in text:
            port = int(text.split("listening on http://127.0.0.1:")[1].split()[0])
            return proc, port
        time.sleep(0.1)
    proc.kill()
    sys.exit("the daemon did not start: " + text)


def request(port, raw, timeout=5.0):
    """One request on a new connection; returns (status or None, seconds)."""
    t0 = time.perf_counter()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(raw)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else None
    except OSError:
        status = None
    return status, time.perf_counter() - t0


def healthz(port):
    return request(port, f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                         "Connection: close\r\n\r\n".encode())


def delivery(port, n):
    sig = hmac.new(SECRET, BODY, hashlib.sha256).hexdigest()
    head = (f"POST /hooks/git HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nX-Switchyard-Delivery: bench-{time.time_ns()}-{n}\r\n"
            f"X-Switchyard-Signature: {sig}\r\nContent-Length: {len(BODY)}\r\n\r\n")
    return request(port, head.encode() + BODY)


class SlowClients:
    """SLOW connections that send a header line every INTERVAL seconds, reopened when closed."""

    def __init__(self, port, count, interval):
        self.port, self.count, self.interval = port, count, interval
        self.socks = [None] * count
        self.stop = threading.Event()
        self.reopened = 0
        for i in range(count):
            self.socks[i] = self.open(i)
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def open(self, i):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((f"127.0.0.{2 + i // 100}", 0))
        s.settimeout(5)
        try:
            s.connect(("127.0.0.1", self.port))
            s.sendall(f"POST /hooks/git HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n".encode())
        except OSError:
            pass
        s.setblocking(False)
        return s

    def run(self):
        line = 0
        while not self.stop.is_set():
            started = time.monotonic()
            line += 1
            for i, s in enumerate(self.socks):
                if self.stop.is_set():
                    break
                alive = True
                try:
                    r, _, _ = select.select([s], [], [], 0)
                    if r:  # an answer (408, 503) or a close: the server let go of it
                        alive = False
                    else:
                        s.send(f"X-Slow-{line}: a\r\n".encode())
                except OSError:
                    alive = False
                if not alive:
                    s.close()
                    self.socks[i] = self.open(i)
                    self.reopened += 1
            self.stop.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def close(self):
        self.stop.set()
        self.thread.join()
        for s in self.socks:
            s.close()


def measure(port, seconds):
    lat_h, lat_d, fail_h, fail_d = [], [], 0, 0
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        n += 1
        st, t = healthz(port)
        if st == 200:
            lat_h.append(t)
        else:
            fail_h += 1
        st, t = delivery(port, n)
        if st is not None and 200 <= st < 300:
            lat_d.append(t)
        else:
            fail_d += 1
        time.sleep(0.02)
    return lat_h, lat_d, fail_h, fail_d


def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] * 1000


def summary(label, runs):
    rows = []
    for lat_h, lat_d, fail_h, fail_d in runs:
        rows.append((pct(lat_h, 50), pct(lat_h, 99), max(lat_h, default=float("nan")) * 1000,
                     fail_h, len(lat_h), pct(lat_d, 50), pct(lat_d, 99), fail_d, len(lat_d)))
    for r in rows:
        print(f"  {label} run: healthz p50 {r[0]:.2f} ms p99 {r[1]:.2f} ms max {r[2]:.1f} ms "
              f"ok {r[4]} failed {r[3]} | delivery p50 {r[5]:.2f} ms p99 {r[6]:.2f} ms "
              f"ok {r[8]} failed {r[7]}")
    med = [statistics.median(r[i] for r in rows) for i in range(9)]
    print(f"MEDIAN {label}: healthz p50 {med[0]:.2f} ms p99 {med[1]:.2f} ms "
          f"(failed {med[3]:.0f}/run) | delivery p50 {med[5]:.2f} ms p99 {med[6]:.2f} ms "
          f"(failed {med[7]:.0f}/run)")
    return med


def vm(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) // 1024  # MiB
    return -1


def chunked(port, pid, mib):
    before = vm(pid, "VmHWM")
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(f"POST /hooks/git HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
              "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".encode())
    chunk = b"%x\r\n" % (1 << 20) + b"x" * (1 << 20) + b"\r\n"
    sent, answer, t0 = 0, b"", time.perf_counter()
    answered_at = None
    s.setblocking(False)
    while sent < mib:
        r, w, _ = select.select([s], [s], [], 30)
        if r:
            try:
                data = s.recv(65536)
            except OSError:
                break
            if not data:
                break
            answer += data
            if answered_at is None:
                answered_at = sent
        if w and answered_at is None:
            try:
                s.sendall(chunk)
                sent += 1
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                break
        elif answered_at is not None:
            break
    if answered_at is None:
        s.setblocking(True)
        try:
            s.sendall(b"0\r\n\r\n")
            answer = s.recv(65536)
        except OSError:
            pass
    s.close()
    took = time.perf_counter() - t0
    status = answer.split(b" ", 2)[1].decode() if answer.startswith(b"HTTP/1.1 ") else "none"
    print(f"CHUNKED {mib} MiB unsigned: answer {status} after {took:.2f} s, "
          f"{answered_at if answered_at is not None else sent} MiB sent when it came; "
          f"daemon peak RSS {before} MiB before, {vm(pid, 'VmHWM')} MiB after")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="build/runner/app/switchyard")
    ap.add_argument("--slow", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--interval", type=float, default=2)
    ap.add_argument("--chunked-mib", type=int, default=300)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="sy-slow-bench.") as tmp:
        proc, port = start_daemon(a.bin, tmp)
        try:
            print(f"machine: {os.cpu_count()} cores, {os.uname().release}; binary {a.bin}")
            print(f"command: {' '.join(sys.argv)}")
            base = [measure(port, a.seconds) for _ in range(a.runs)]
            summary("no slow clients", base)
            slow = SlowClients(port, a.slow, a.interval)
            time.sleep(a.interval)
            attack = [measure(port, a.seconds) for _ in range(a.runs)]
            print(f"  slow connections reopened after the server closed them: {slow.reopened}")
            slow.close()
            summary(f"{a.slow} slow clients", attack)
            if a.chunked_mib:
                chunked(port, proc.pid, a.chunked_mib)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    main()
