#!/usr/bin/env python3
"""Bounded soak of mixed traffic against a running server on loopback.

Sign-ups, logins, event creation, registrations, cancellations, check-ins, capacity
changes and reads, from several threads for a fixed time. Afterwards: no 5xx, resident
memory flat (sampled from /proc), and every attendance invariant of API.md true in the
PostgreSQL database (checked with SQL).

Usage: soak.py --base http://127.0.0.1:PORT --pid PID --database-url postgres://... [--seconds 120]
Standard library only; psql must be on PATH.
"""

import argparse
import http.client
import json
import random
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid

INVARIANTS = {
    "confirmed_count matches the records": """
        SELECT count(*) FROM events e WHERE e.confirmed_count <> (SELECT count(*) FROM attendees a
        WHERE a.event_id = e.id AND a.status IN ('confirmed', 'checked_in'))""",
    "waitlist_count matches the records": """
        SELECT count(*) FROM events e WHERE e.waitlist_count <> (SELECT count(*) FROM attendees a
        WHERE a.event_id = e.id AND a.status = 'waitlisted')""",
    "never more confirmed than seats": """
        SELECT count(*) FROM events WHERE capacity IS NOT NULL AND confirmed_count > capacity""",
    "waitlist positions are exactly 1..n": """
        SELECT count(*) FROM (SELECT event_id, waitlist_position,
            row_number() OVER (PARTITION BY event_id ORDER BY waitlist_position) AS n
            FROM attendees WHERE status = 'waitlisted') q WHERE waitlist_position <> n""",
    "only waitlisted records have a position": """
        SELECT count(*) FROM attendees WHERE (status = 'waitlisted') <> (waitlist_position IS NOT NULL)""",
    "no one waits while a seat is free": """
        SELECT count(*) FROM events WHERE status = 'published' AND waitlist_count > 0
            AND (capacity IS NULL OR confirmed_count < capacity)""",
    "one record per user and event": """
        SELECT count(*) FROM (SELECT event_id, user_id FROM attendees GROUP BY 1, 2 HAVING count(*) > 1) d""",
}


class Client:
    """One keep-alive connection."""

    def __init__(self, base):
        url = urllib.parse.urlparse(base)
        self.host, self.port = url.hostname, url.port
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)

    def call(self, method, path, body=None, token=None, content_type="application/json"):
        headers = {}
        if body is not None:
            headers["Content-Type"] = content_type
            body = json.dumps(body)
        if token:
            headers["Authorization"] = f"Bearer {token}"
        for attempt in range(2):
            try:
                self.conn.request(method, path, body=body, headers=headers)
                resp = self.conn.getresponse()
                data = resp.read()
                return resp.status, (json.loads(data) if data else None)
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
                if attempt:
                    raise
        raise AssertionError("unreachable")


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.by_status = {}
        self.server_errors = []

    def record(self, what, status, body):
        with self.lock:
            self.by_status[status] = self.by_status.get(status, 0) + 1
            if status >= 500:
                self.server_errors.append((what, status, body))


def worker(base, deadline, stats, seed):
    rng = random.Random(seed)
    c = Client(base)

    def call(what, *args, **kwargs):
        status, body = c.call(*args, **kwargs)
        stats.record(what, status, body)
        return status, body

    password = "soak-password-123"
    users = []
    for _ in range(3):
        email = f"soak-{uuid.uuid4().hex}@example.com"
        call("sign-up", "POST", "/api/v1/users", {"email": email, "password": password, "full_name": "Soak"})
        _, tok = call("login", "POST", "/api/v1/auth/token", {"email": email, "password": password})
        users.append(tok["access_token"])
    organizer = users[0]
    events = []
    registrations = []
    while time.monotonic() < deadline:
        action = rng.random()
        token = rng.choice(users)
        if action < 0.08 or not events:
            status, ev = call("create event", "POST", "/api/v1/events", {
                "title": f"Soak {uuid.uuid4().hex[:8]}",
                "starts_at": "2031-01-01T10:00:00Z", "ends_at": "2031-01-01T12:00:00Z",
                "capacity": rng.choice([1, 2, 3, 5, 10, None]),
                "waitlist_enabled": rng.random() < 0.7, "status": "published"}, token=organizer)
            if status == 201:
                events.append(ev["id"])
        elif action < 0.40:
            ev = rng.choice(events)
            status, rec = call("register", "POST", f"/api/v1/events/{ev}/attendees", {}, token=token)
            if status == 201:
                registrations.append((ev, rec["id"], token))
        elif action < 0.50 and registrations:
            ev, rec, tok = registrations.pop(rng.randrange(len(registrations)))
            call("cancel", "DELETE", f"/api/v1/events/{ev}/attendees/{rec}", token=tok)
        elif action < 0.55 and registrations:
            ev, rec, _ = rng.choice(registrations)
            call("check in", "PATCH", f"/api/v1/events/{ev}/attendees/{rec}",
                 [{"op": "replace", "path": "/status", "value": "checked_in"}], token=organizer,
                 content_type="application/json-patch+json")
        elif action < 0.62:
            ev = rng.choice(events)
            call("capacity", "PATCH", f"/api/v1/events/{ev}",
                 [{"op": "replace", "path": "/capacity", "value": rng.choice([1, 2, 4, 8, None])}],
                 token=organizer, content_type="application/json-patch+json")
        elif action < 0.80:
            call("get event", "GET", f"/api/v1/events/{rng.choice(events)}")
        elif action < 0.95:
            call("list events", "GET", f"/api/v1/events?limit=20&offset={rng.randrange(0, 40)}")
        else:
            call("my registrations", "GET", "/api/v1/users/me/registrations", token=token)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--database-url", required=True)
    ap.add_argument("--seconds", type=float, default=120)
    ap.add_argument("--threads", type=int, default=8)
    args = ap.parse_args()

    stats = Stats()
    started = time.monotonic()
    deadline = started + args.seconds
    threads = [threading.Thread(target=worker, args=(args.base, deadline, stats, i)) for i in range(args.threads)]
    for t in threads:
        t.start()
    samples = []
    while any(t.is_alive() for t in threads):
        samples.append((time.monotonic() - started, rss_kib(args.pid)))
        time.sleep(1)
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started

    total = sum(stats.by_status.values())
    print(f"soak: {total} requests in {elapsed:.0f} s ({total / elapsed:.0f}/s), statuses {dict(sorted(stats.by_status.items()))}")
    failures = []
    if stats.server_errors:
        failures.append(f"{len(stats.server_errors)} server errors, first: {stats.server_errors[:3]}")

    # Memory: compare the second and the last quarter of the run (the first warms up).
    quarter = max(1, len(samples) // 4)
    early = [kib for _, kib in samples[quarter:2 * quarter]] or [samples[0][1]]
    late = [kib for _, kib in samples[-quarter:]]
    early_avg, late_avg = sum(early) / len(early), sum(late) / len(late)
    peak = max(kib for _, kib in samples)
    print(f"soak: RSS {early_avg / 1024:.1f} MiB (2nd quarter) -> {late_avg / 1024:.1f} MiB (last quarter), peak {peak / 1024:.1f} MiB")
    if late_avg > early_avg * 1.25 + 2048:
        failures.append(f"memory grew from {early_avg:.0f} KiB to {late_avg:.0f} KiB")

    for name, sql in INVARIANTS.items():
        out = subprocess.run(["psql", args.database_url, "-tAc", sql], capture_output=True, text=True, check=True)
        violations = int(out.stdout.strip())
        print(f"soak: invariant '{name}': {'ok' if violations == 0 else f'{violations} VIOLATIONS'}")
        if violations:
            failures.append(f"invariant '{name}' broken {violations} times")
    counts = subprocess.run(["psql", args.database_url, "-tAc",
                             "SELECT (SELECT count(*) FROM events) || ' events, ' || (SELECT count(*) FROM attendees) || ' attendee records'"],
                            capture_output=True, text=True, check=True)
    print(f"soak: database holds {counts.stdout.strip()}")
    if failures:
        print("soak: FAILED:\n  " + "\n  ".join(failures))
        return 1
    print("soak: passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
