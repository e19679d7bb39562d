//! The results table and the targets of the issue.

use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::Backend;

/// Latency summary in milliseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Latency {
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
}

impl From<&Histogram<u64>> for Latency {
    fn from(h: &Histogram<u64>) -> Self {
        Self {
            p50_ms: h.value_at_quantile(0.50) as f64 / 1000.0,
            p99_ms: h.value_at_quantile(0.99) as f64 / 1000.0,
        }
    }
}

/// CPU time per request, in microseconds, by process.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Cpu {
    /// The server.
    pub server_us: f64,
    /// The load generator.
    pub bench_us: f64,
    /// PostgreSQL (all backends of the throwaway cluster).
    pub postgres_us: f64,
    /// CPU used by other processes of the machine meanwhile, as a share of all its CPUs.
    pub others_share: f64,
}

/// pgbench replaying the scenario's SQL.
#[derive(Debug, Clone, Serialize)]
pub struct Baseline {
    /// Transactions (one per HTTP request) per second.
    pub tps: f64,
    /// Latency of one transaction.
    pub latency: Latency,
    /// Transactions run.
    pub transactions: u64,
    /// Failed transactions.
    pub errors: u64,
    /// PostgreSQL CPU per transaction, microseconds.
    pub postgres_cpu_us: f64,
}

/// One load scenario on one backend.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Scenario name.
    pub scenario: String,
    /// Backend.
    pub backend: Backend,
    /// Concurrent requests.
    pub concurrency: usize,
    /// Requests measured.
    pub requests: u64,
    /// Requests per second.
    pub rps: f64,
    /// Latency.
    pub latency: Latency,
    /// Failed requests.
    pub errors: u64,
    /// CPU per request.
    pub cpu: Cpu,
    /// The database's own limit for the same SQL (PostgreSQL only).
    pub baseline: Option<Baseline>,
}

impl Row {
    /// Requests per second over pgbench transactions per second.
    pub fn ratio(&self) -> Option<f64> {
        self.baseline.as_ref().map(|b| self.rps / b.tps)
    }
}

/// Memory and start-up of one backend.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Process {
    /// Backend name.
    pub backend: String,
    /// Start to ready on the seeded (already migrated) database, ms, per trial.
    pub ready_existing_ms: Vec<f64>,
    /// Start to ready on an empty database (migrations included), ms, per trial.
    pub ready_fresh_ms: Vec<f64>,
    /// VmRSS idle after start, KiB.
    pub idle_rss_kib: u64,
    /// VmHWM (peak) idle after start, KiB.
    pub idle_hwm_kib: u64,
    /// Keep-alive connections held open.
    pub connections: usize,
    /// VmRSS with them open, KiB.
    pub conns_rss_kib: u64,
    /// VmHWM with them open, KiB.
    pub conns_hwm_kib: u64,
    /// Idle live streams held open.
    pub streams: usize,
    /// VmRSS with them open, KiB.
    pub streams_rss_kib: u64,
    /// VmHWM with them open, KiB.
    pub streams_hwm_kib: u64,
    /// VmRSS of a fresh server with as many idle streams over HTTP/2, KiB (0: not measured).
    pub streams_h2_rss_kib: u64,
    /// VmHWM of that server, KiB.
    pub streams_h2_hwm_kib: u64,
}

/// Fan-out of a streamed burst.
#[derive(Debug, Clone, Serialize)]
pub struct Fanout {
    /// Backend name.
    pub backend: String,
    /// Streams following the burst's event.
    pub streams: usize,
    /// Of which measured delays.
    pub sampled: usize,
    /// Deliveries measured.
    pub deliveries: u64,
    /// From a change's `occurred_at` to its arrival at a stream.
    pub delay: Latency,
}

/// Batch check-ins of `scans` scans each.
#[derive(Debug, Clone, Serialize)]
pub struct CheckIns {
    /// Backend name.
    pub backend: String,
    /// Scans per batch.
    pub scans: usize,
    /// Seconds of each first upload (every scan checks a record in).
    pub first_seconds: Vec<f64>,
    /// Seconds of each repeated upload (nothing changes).
    pub repeat_seconds: Vec<f64>,
}

/// Webhook deliveries to a receiver that answers at once.
#[derive(Debug, Clone, Serialize)]
pub struct Deliveries {
    /// Backend name.
    pub backend: String,
    /// Deliveries acknowledged.
    pub deliveries: u64,
    /// From the burst's first request to the last acknowledgement.
    pub seconds: f64,
}

impl Deliveries {
    /// Deliveries per second.
    pub fn per_second(&self) -> f64 {
        self.deliveries as f64 / self.seconds.max(f64::EPSILON)
    }
}

/// Statistics, export and import of one backend.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Ops {
    /// Backend name.
    pub backend: String,
    /// Attendees of the measured event.
    pub attendees: usize,
    /// Statistics: median latency at one request at a time, ms.
    pub stats_p50_ms: f64,
    /// Rows exported (header excluded).
    pub export_rows: usize,
    /// Export: rows per second, whole download.
    pub export_rows_per_s: f64,
    /// Export: the server's largest VmRSS during the download minus before it, KiB.
    pub export_rss_growth_kib: u64,
    /// Rows imported.
    pub import_rows: usize,
    /// Import: rows per second, upload to completion.
    pub import_rows_per_s: f64,
}

/// Median of a few numbers.
pub fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s[s.len() / 2]
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// The whole run.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    /// Load scenarios.
    pub rows: Vec<Row>,
    /// Memory and start-up.
    pub process: Vec<Process>,
    /// Fan-out to live streams.
    pub fanout: Vec<Fanout>,
    /// Webhook delivery throughput.
    pub deliveries: Vec<Deliveries>,
    /// Batch check-ins.
    pub check_ins: Vec<CheckIns>,
    /// Whether each pgbench script matched the captured SQL.
    pub sql_checks: Vec<(String, Vec<String>)>,
    /// Statistics, export and import.
    pub ops: Vec<Ops>,
}

impl Report {
    fn row(&self, scenario: &str, backend: Backend) -> Option<&Row> {
        self.rows
            .iter()
            .find(|r| r.scenario == scenario && r.backend == backend)
    }

    /// The results table in Markdown.
    pub fn table(&self) -> String {
        let mut s = String::new();
        s.push_str("| scenario | backend | conc | requests | req/s | p50 ms | p99 ms | errors | pgbench TPS | pgbench p50 ms | ratio |\n");
        s.push_str("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
        for r in &self.rows {
            let (tps, p50, ratio) = match (&r.baseline, r.ratio()) {
                (Some(b), Some(x)) => (
                    format!("{:.0}", b.tps),
                    format!("{:.2}", b.latency.p50_ms),
                    format!("{:.0} %", x * 100.0),
                ),
                _ => ("-".into(), "-".into(), "-".into()),
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {:.0} | {:.2} | {:.2} | {} | {} | {} | {} |",
                r.scenario,
                r.backend.name(),
                r.concurrency,
                r.requests,
                r.rps,
                r.latency.p50_ms,
                r.latency.p99_ms,
                r.errors,
                tps,
                p50,
                ratio
            );
        }
        s.push('\n');
        s.push_str("CPU per request (µs), from /proc: where the two cores went\n\n");
        s.push_str(
            "| scenario | backend | server | em-bench | postgres | postgres under pgbench | other processes (% of the CPUs) |\n",
        );
        s.push_str("|---|---|--:|--:|--:|--:|--:|\n");
        for r in &self.rows {
            let pgb = r
                .baseline
                .as_ref()
                .map_or("-".to_owned(), |b| format!("{:.0}", b.postgres_cpu_us));
            let pg = if r.backend == Backend::Postgres {
                format!("{:.0}", r.cpu.postgres_us)
            } else {
                "-".to_owned()
            };
            let _ = writeln!(
                s,
                "| {} | {} | {:.0} | {:.0} | {} | {} | {:.0} % |",
                r.scenario,
                r.backend.name(),
                r.cpu.server_us,
                r.cpu.bench_us,
                pg,
                pgb,
                r.cpu.others_share * 100.0
            );
        }
        s.push('\n');
        s.push_str("| process | backend | median ms (trials) | RSS MiB | peak RSS (VmHWM) MiB |\n");
        s.push_str("|---|---|--:|--:|--:|\n");
        for p in &self.process {
            let _ = writeln!(
                s,
                "| start to ready, migrated database | {} | {:.0} ({}) | | |",
                p.backend,
                median(&p.ready_existing_ms),
                join_ms(&p.ready_existing_ms)
            );
            let _ = writeln!(
                s,
                "| start to ready, empty database (migrations) | {} | {:.0} ({}) | | |",
                p.backend,
                median(&p.ready_fresh_ms),
                join_ms(&p.ready_fresh_ms)
            );
            let _ = writeln!(
                s,
                "| idle after start | {} | | {:.1} | {:.1} |",
                p.backend,
                mib(p.idle_rss_kib),
                mib(p.idle_hwm_kib)
            );
            let _ = writeln!(
                s,
                "| {} open keep-alive connections | {} | | {:.1} | {:.1} |",
                p.connections,
                p.backend,
                mib(p.conns_rss_kib),
                mib(p.conns_hwm_kib)
            );
        }
        if !self.ops.is_empty() {
            s.push('\n');
            s.push_str("| statistics, export, import | backend | attendees or rows | result |\n");
            s.push_str("|---|---|--:|--:|\n");
            for o in &self.ops {
                let _ = writeln!(
                    s,
                    "| stats p50 (one at a time) | {} | {} | {:.1} ms |",
                    o.backend, o.attendees, o.stats_p50_ms
                );
                let _ = writeln!(
                    s,
                    "| CSV export | {} | {} | {:.0} rows/s, RSS +{:.1} MiB |",
                    o.backend,
                    o.export_rows,
                    o.export_rows_per_s,
                    mib(o.export_rss_growth_kib)
                );
                let _ = writeln!(
                    s,
                    "| CSV import | {} | {} | {:.0} rows/s |",
                    o.backend, o.import_rows, o.import_rows_per_s
                );
            }
        }
        s
    }

    /// The targets, each met or not, with numbers.
    pub fn targets(&self) -> String {
        let mut s = String::from("| target | measured | met |\n|---|---|---|\n");
        let mut line = |target: &str, measured: String, met: Option<bool>| {
            let verdict = match met {
                Some(true) => "met",
                Some(false) => "NOT met",
                None => "reported",
            };
            let _ = writeln!(s, "| {target} | {measured} | {verdict} |");
        };
        for (scenario, min) in [("registration burst", 0.85), ("GET one event", 0.40)] {
            let row = self.row(scenario, Backend::Postgres);
            let ratio = row.and_then(Row::ratio);
            line(
                &format!(
                    "{scenario} >= {:.0} % of pgbench TPS (postgres)",
                    min * 100.0
                ),
                match (row, ratio) {
                    (Some(r), Some(x)) => format!(
                        "{:.0} req/s vs {:.0} TPS = {:.0} %",
                        r.rps,
                        r.baseline.as_ref().map_or(0.0, |b| b.tps),
                        x * 100.0
                    ),
                    _ => "-".into(),
                },
                ratio.map(|x| x >= min),
            );
        }
        for backend in [Backend::Postgres, Backend::Sqlite] {
            let small = self.row("list events (1k)", backend);
            let big = self.rows.iter().find(|r| {
                r.backend == backend
                    && r.scenario.starts_with("list events (")
                    && r.scenario != "list events (1k)"
            });
            if let (Some(small), Some(big)) = (small, big) {
                let x = big.latency.p50_ms / small.latency.p50_ms;
                line(
                    &format!("list p50 at 100k <= 1.5x p50 at 1k ({})", backend.name()),
                    format!(
                        "{:.2} ms vs {:.2} ms = {x:.2}x",
                        big.latency.p50_ms, small.latency.p50_ms
                    ),
                    Some(x <= 1.5),
                );
            }
        }
        for p in &self.process {
            line(
                &format!("peak RSS idle <= 30 MiB ({})", p.backend),
                format!(
                    "VmHWM {:.1} MiB (VmRSS {:.1} MiB)",
                    mib(p.idle_hwm_kib),
                    mib(p.idle_rss_kib)
                ),
                Some(p.idle_hwm_kib <= 30 * 1024),
            );
            line(
                &format!(
                    "peak RSS with {} connections <= 120 MiB ({})",
                    p.connections, p.backend
                ),
                format!(
                    "VmHWM {:.1} MiB (VmRSS {:.1} MiB)",
                    mib(p.conns_hwm_kib),
                    mib(p.conns_rss_kib)
                ),
                Some(p.conns_hwm_kib <= 120 * 1024),
            );
            if p.streams > 0 {
                line(
                    &format!(
                        "RSS with {} idle streams <= 150 MiB ({})",
                        p.streams, p.backend
                    ),
                    format!(
                        "VmRSS {:.1} MiB (VmHWM {:.1} MiB)",
                        mib(p.streams_rss_kib),
                        mib(p.streams_hwm_kib)
                    ),
                    Some(p.streams_rss_kib <= 150 * 1024),
                );
            }
            if p.streams_h2_rss_kib > 0 {
                line(
                    &format!(
                        "RSS with {} idle streams over HTTP/2 <= 150 MiB ({})",
                        p.streams, p.backend
                    ),
                    format!(
                        "VmRSS {:.1} MiB (VmHWM {:.1} MiB)",
                        mib(p.streams_h2_rss_kib),
                        mib(p.streams_h2_hwm_kib)
                    ),
                    Some(p.streams_h2_rss_kib <= 150 * 1024),
                );
            }
        }
        for o in &self.ops {
            if o.backend == "postgres" {
                line(
                    &format!(
                        "stats p50 <= 100 ms at {} attendees (postgres)",
                        o.attendees
                    ),
                    format!("{:.1} ms", o.stats_p50_ms),
                    Some(o.stats_p50_ms <= 100.0),
                );
            }
            line(
                &format!(
                    "CSV export of {} rows: RSS growth <= 20 MiB ({})",
                    o.export_rows, o.backend
                ),
                format!(
                    "+{:.1} MiB at {:.0} rows/s",
                    mib(o.export_rss_growth_kib),
                    o.export_rows_per_s
                ),
                Some(o.export_rss_growth_kib <= 20 * 1024),
            );
        }
        for backend in [Backend::Postgres, Backend::Sqlite] {
            let on = self.row(crate::suite::GET_METRICS_ON, backend);
            let off = self.row(crate::suite::GET_METRICS_OFF, backend);
            if let (Some(on), Some(off)) = (on, off) {
                let x = on.rps / off.rps;
                line(
                    &format!(
                        "GET one event with metrics >= 95 % of without ({})",
                        backend.name()
                    ),
                    format!(
                        "{:.0} req/s vs {:.0} req/s = {:.0} %",
                        on.rps,
                        off.rps,
                        x * 100.0
                    ),
                    Some(x >= 0.95),
                );
            }
        }
        if let Some(p) = self.process.iter().find(|p| p.backend == "sqlite") {
            let worst = median(&p.ready_existing_ms).max(median(&p.ready_fresh_ms));
            line(
                "start to ready <= 0.5 s (sqlite)",
                format!(
                    "median {:.0} ms migrated, {:.0} ms empty",
                    median(&p.ready_existing_ms),
                    median(&p.ready_fresh_ms)
                ),
                Some(worst <= 500.0),
            );
        }
        for backend in [Backend::Postgres, Backend::Sqlite] {
            for (private, public) in [
                (crate::suite::PRIVATE_GET, "GET one event"),
                (crate::suite::PRIVATE_LIST, "list events (1k)"),
            ] {
                if let (Some(p), Some(q)) = (self.row(private, backend), self.row(public, backend))
                {
                    let x = p.rps / q.rps;
                    line(
                        &format!("{private} within 10 % of {public} ({})", backend.name()),
                        format!(
                            "{:.0} req/s vs {:.0} req/s = {:.0} %; p50 {:.2} ms vs {:.2} ms",
                            p.rps,
                            q.rps,
                            x * 100.0,
                            p.latency.p50_ms,
                            q.latency.p50_ms
                        ),
                        Some(x >= 0.9),
                    );
                }
            }
            if let Some(c) = self.check_ins.iter().find(|c| c.backend == backend.name()) {
                let first = median(&c.first_seconds);
                let repeat = median(&c.repeat_seconds);
                line(
                    &format!("batch check-in of {} scans ({})", c.scans, backend.name()),
                    format!(
                        "first upload median {:.0} ms = {:.0} scans/s; the same batch again {:.0} ms = {:.0} scans/s",
                        first * 1000.0,
                        c.scans as f64 / first.max(f64::EPSILON),
                        repeat * 1000.0,
                        c.scans as f64 / repeat.max(f64::EPSILON)
                    ),
                    None,
                );
            }
        }
        for backend in [Backend::Postgres, Backend::Sqlite] {
            let plain = self.row("registration burst", backend);
            let keyed = self.row(crate::suite::KEYED_BURST, backend);
            if let (Some(plain), Some(keyed)) = (plain, keyed) {
                let x = keyed.rps / plain.rps;
                line(
                    &format!(
                        "burst with a fresh Idempotency-Key per request >= 85 % of the burst without ({})",
                        backend.name()
                    ),
                    format!(
                        "{:.0} req/s vs {:.0} req/s = {:.0} %",
                        keyed.rps,
                        plain.rps,
                        x * 100.0
                    ),
                    Some(x >= 0.85),
                );
            }
        }
        for backend in [Backend::Postgres, Backend::Sqlite] {
            let plain = self.row("registration burst", backend);
            let hooked = self.row(crate::suite::HOOKED_BURST, backend);
            if let (Some(plain), Some(hooked)) = (plain, hooked) {
                let rps = hooked.rps / plain.rps;
                let p99 = hooked.latency.p99_ms / plain.latency.p99_ms;
                line(
                    &format!(
                        "burst with 10 webhooks to a receiver sleeping 30 s: req/s and p99 within 5 % of the burst without ({})",
                        backend.name()
                    ),
                    format!(
                        "{:.0} req/s vs {:.0} ({:.0} %); p99 {:.2} ms vs {:.2} ms ({:.0} %)",
                        hooked.rps,
                        plain.rps,
                        rps * 100.0,
                        hooked.latency.p99_ms,
                        plain.latency.p99_ms,
                        p99 * 100.0
                    ),
                    Some(rps >= 0.95 && p99 <= 1.05),
                );
            }
        }
        for backend in [Backend::Postgres, Backend::Sqlite] {
            let plain = self.row("registration burst", backend);
            let streamed = self.rows.iter().find(|r| {
                r.backend == backend && r.scenario.starts_with(crate::suite::STREAMED_BURST)
            });
            if let Some(d) = self.deliveries.iter().find(|d| d.backend == backend.name()) {
                let _ = writeln!(
                    s,
                    "| webhook delivery throughput to a fast receiver ({}) | {} deliveries in {:.2} s = {:.0}/s (from the burst's start) | reported |",
                    backend.name(),
                    d.deliveries,
                    d.seconds,
                    d.per_second()
                );
            }
            let fanout = self.fanout.iter().find(|f| f.backend == backend.name());
            if let (Some(plain), Some(streamed), Some(f)) = (plain, streamed, fanout) {
                // Reported, no target: the fan-out's cost and delay.
                let _ = writeln!(
                    s,
                    "| burst with {} streams open ({}): req/s and delivery delay | {:.0} req/s vs {:.0} without streams ({:.0} %); delay p50 {:.1} ms, p99 {:.1} ms | reported |",
                    f.streams,
                    backend.name(),
                    streamed.rps,
                    plain.rps,
                    streamed.rps / plain.rps * 100.0,
                    f.delay.p50_ms,
                    f.delay.p99_ms
                );
            }
        }
        s
    }
}

fn join_ms(v: &[f64]) -> String {
    v.iter()
        .map(|x| format!("{x:.0}"))
        .collect::<Vec<_>>()
        .join(", ")
}
