//! PostgreSQL side: `psql` for setup, `pgbench` for the baseline, and the statement log for
//! capturing (and checking) the SQL each scenario issues.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use anyhow::{Context, bail};
use hdrhistogram::Histogram;

use crate::load::histogram;

/// Where the throwaway cluster listens.
#[derive(Debug, Clone)]
pub struct Pg {
    /// Host (loopback).
    pub host: String,
    /// Port.
    pub port: u16,
    /// Superuser.
    pub user: String,
    /// The cluster's log file (statement logging goes there).
    pub log: PathBuf,
    /// `psql` binary.
    pub psql: String,
    /// `pgbench` binary.
    pub pgbench: String,
}

impl Pg {
    /// URL of database `db`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://{}@{}:{}/{db}", self.user, self.host, self.port)
    }

    /// Runs SQL in `db` with `psql`, stopping at the first error; returns unaligned output.
    pub fn sql(&self, db: &str, sql: &str) -> anyhow::Result<String> {
        let out = Command::new(&self.psql)
            .args(["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1"])
            .args([
                "-h",
                &self.host,
                "-p",
                &self.port.to_string(),
                "-U",
                &self.user,
            ])
            .args(["-d", db, "-c", sql])
            .output()
            .with_context(|| format!("running {}", self.psql))?;
        if !out.status.success() {
            bail!(
                "psql failed on {db}: {}\nSQL: {}",
                String::from_utf8_lossy(&out.stderr).trim(),
                &sql[..sql.len().min(300)]
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// Drops and creates database `db`.
    pub fn recreate_db(&self, db: &str) -> anyhow::Result<()> {
        self.sql(
            "postgres",
            &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
        )?;
        self.sql("postgres", &format!("CREATE DATABASE {db}"))?;
        Ok(())
    }

    /// Size of the server log, to read what comes after.
    pub fn log_len(&self) -> anyhow::Result<u64> {
        Ok(std::fs::metadata(&self.log)
            .with_context(|| format!("reading {}", self.log.display()))?
            .len())
    }

    /// Turns `log_statement = all` on or off for the whole cluster.
    pub fn statement_logging(&self, on: bool) -> anyhow::Result<()> {
        let set = if on {
            "ALTER SYSTEM SET log_statement = 'all'"
        } else {
            "ALTER SYSTEM RESET log_statement"
        };
        self.sql("postgres", set)?;
        self.sql("postgres", "SELECT pg_reload_conf()")?;
        // The reload reaches the other backends asynchronously.
        std::thread::sleep(Duration::from_millis(300));
        Ok(())
    }

    /// Logs a marker statement, so the log can be cut per scenario.
    pub fn mark(&self, db: &str, name: &str) -> anyhow::Result<()> {
        self.sql(db, &format!("SELECT 'em-bench capture {name}'"))?;
        Ok(())
    }
}

/// A logged statement and its bound parameters, if any.
pub type Logged = (String, Option<String>);

/// Statements logged after byte `from` of the log, grouped by the marker before them.
pub fn captured_since(pg: &Pg, from: u64) -> anyhow::Result<Vec<(String, Vec<Logged>)>> {
    let bytes = std::fs::read(&pg.log)?;
    let text = String::from_utf8_lossy(&bytes[(from as usize).min(bytes.len())..]).into_owned();
    let mut groups: Vec<(String, Vec<Logged>)> = Vec::new();
    for line in text.lines() {
        if let Some(params) = line
            .find("DETAIL:  parameters: ")
            .map(|i| &line[i + "DETAIL:  parameters: ".len()..])
        {
            if let Some(last) = groups.last_mut().and_then(|(_, s)| s.last_mut()) {
                last.1 = Some(params.trim().to_owned());
            }
            continue;
        }
        let Some(stmt) = logged_statement(line) else {
            continue;
        };
        if let Some(name) = stmt
            .strip_prefix("SELECT 'em-bench capture ")
            .and_then(|s| s.strip_suffix('\''))
        {
            groups.push((name.to_owned(), Vec::new()));
        } else if let Some((_, stmts)) = groups.last_mut()
            && !stmt.starts_with("ALTER SYSTEM")
            && !stmt.starts_with("SELECT pg_reload_conf")
        {
            stmts.push((stmt.to_owned(), None));
        }
    }
    Ok(groups)
}

/// The SQL of a `LOG:  statement: ...` or `LOG:  execute NAME: ...` line.
fn logged_statement(line: &str) -> Option<&str> {
    let rest = &line[line.find("LOG:  ")? + 6..];
    if let Some(s) = rest.strip_prefix("statement: ") {
        return Some(s.trim());
    }
    let rest = rest.strip_prefix("execute ")?;
    Some(rest[rest.find(": ")? + 2..].trim())
}

/// A statement with every value replaced by `?`: parameters (`$1`, `:name`), quoted
/// literals, numbers, `NULL` and `gen_random_uuid()` (the pgbench scripts' fresh ids).
pub fn skeleton(sql: &str) -> String {
    let sql = sql
        .trim()
        .trim_end_matches(';')
        .replace("gen_random_uuid()", "?");
    let chars: Vec<char> = sql.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    while i < chars.len() {
        let c = chars[i];
        let prev = if i > 0 { chars[i - 1] } else { ' ' };
        if c == '\'' {
            i += 1;
            while i < chars.len() && chars[i] != '\'' {
                i += 1;
            }
            i += 1;
            out.push('?');
        } else if (c == '$' || c == ':') && i + 1 < chars.len() && word(chars[i + 1]) && prev != ':'
        {
            i += 1;
            while i < chars.len() && word(chars[i]) {
                i += 1;
            }
            out.push('?');
        } else if c.is_ascii_digit() && !word(prev) {
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            out.push('?');
        } else if c.is_whitespace() {
            while i < chars.len() && chars[i].is_whitespace() {
                i += 1;
            }
            out.push(' ');
        } else {
            out.push(c);
            i += 1;
        }
    }
    out.replace("NULL", "?").trim().to_owned()
}

/// The SQL statements of a pgbench script (meta-commands, comments and the per-client
/// set-up query on `bench_heads` left out).
pub fn script_statements(script: &str) -> Vec<String> {
    script
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('\\') && !l.starts_with("--"))
        .filter(|l| !l.contains("bench_heads"))
        .map(|l| match l.find(" \\gset").or_else(|| l.find(" \\aset")) {
            Some(i) => l[..i].trim().to_owned(),
            None => l.to_owned(),
        })
        .collect()
}

/// Statements a capture may hold that no request sent: the webhook dispatcher and delivery
/// loop poll the change feed and their queue while requests run, in their own transactions.
/// Transaction boundaries are left out too: they cannot be told apart from the workers', and
/// the statements between them say whether a request runs in one.
fn unrelated(skeleton: &str) -> bool {
    matches!(skeleton, "BEGIN" | "COMMIT" | "ROLLBACK")
        || skeleton.contains("webhook")
        || skeleton.starts_with("SELECT id, event_id, seq, kind, occurred_at, actor_id, confirmed_count, waitlist_count, capacity, data, txid FROM changes WHERE (txid >")
}

/// Compares what the server sent with what the script replays, statement shapes only.
/// Returns the differences (empty when they match).
pub fn compare(captured: &[String], script: &[String]) -> Vec<String> {
    let cap: BTreeSet<String> = captured
        .iter()
        .map(|s| skeleton(s))
        .filter(|s| !unrelated(s))
        .collect();
    let scr: BTreeSet<String> = script
        .iter()
        .map(|s| skeleton(s))
        .filter(|s| !unrelated(s))
        .collect();
    let mut diffs = Vec::new();
    for s in cap.difference(&scr) {
        diffs.push(format!("server sent, script lacks: {s}"));
    }
    for s in scr.difference(&cap) {
        diffs.push(format!("script has, server did not send: {s}"));
    }
    diffs
}

/// One pgbench run's result.
pub struct PgbenchOutcome {
    /// Transactions processed.
    pub transactions: u64,
    /// Transactions per second, without the initial connection time.
    pub tps: f64,
    /// Latencies in microseconds, from the per-transaction log.
    pub hist: Histogram<u64>,
    /// Failed transactions (or an aborted run).
    pub errors: u64,
}

impl PgbenchOutcome {
    /// Merges a later round: TPS becomes total transactions over total time.
    pub fn merge(&mut self, other: PgbenchOutcome) {
        let time = self.transactions as f64 / self.tps + other.transactions as f64 / other.tps;
        self.transactions += other.transactions;
        self.tps = self.transactions as f64 / time;
        let _ = self.hist.add(&other.hist);
        self.errors += other.errors;
    }
}

/// How long pgbench runs.
#[derive(Debug, Clone, Copy)]
pub enum Length {
    /// `-T seconds`.
    Seconds(u64),
    /// `-t transactions` per client.
    PerClient(usize),
}

/// Runs `pgbench -n -M prepared` with a script and variables.
pub fn pgbench(
    pg: &Pg,
    db: &str,
    script: &Path,
    clients: usize,
    length: Length,
    vars: &[(&str, String)],
    workdir: &Path,
) -> anyhow::Result<PgbenchOutcome> {
    let logdir = workdir.join("pgbench-logs");
    let _ = std::fs::remove_dir_all(&logdir);
    std::fs::create_dir_all(&logdir)?;
    let mut cmd = Command::new(&pg.pgbench);
    cmd.args(["-n", "-M", "prepared", "-l"])
        .arg(format!("--log-prefix={}", logdir.join("tx").display()))
        .args(["-h", &pg.host, "-p", &pg.port.to_string(), "-U", &pg.user])
        .args(["-c", &clients.to_string()])
        .args(["-j", &clients.min(2).to_string()])
        .arg("-f")
        .arg(script);
    match length {
        Length::Seconds(s) => cmd.args(["-T", &s.to_string()]),
        Length::PerClient(t) => cmd.args(["-t", &t.to_string()]),
    };
    for (k, v) in vars {
        cmd.arg("-D").arg(format!("{k}={v}"));
    }
    cmd.arg(db);
    let out = cmd
        .output()
        .with_context(|| format!("running {}", pg.pgbench))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let field = |prefix: &str| {
        stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .map(str::trim)
    };
    let tps: f64 = field("tps = ")
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("pgbench printed no tps:\n{stdout}\n{stderr}"))?;
    let transactions: u64 = field("number of transactions actually processed:")
        .and_then(|v| v.split('/').next())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut errors: u64 = field("number of failed transactions:")
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if !out.status.success() || stdout.contains("aborted") {
        errors = errors.max(1);
        eprintln!(
            "pgbench {} failed:\n{}\n{}",
            script.display(),
            stdout.trim(),
            stderr.trim()
        );
    }
    let mut hist = histogram();
    for entry in std::fs::read_dir(&logdir)? {
        let text = std::fs::read_to_string(entry?.path())?;
        for line in text.lines() {
            // client_id transaction_no time script_no time_epoch time_us
            if let Some(us) = line
                .split_whitespace()
                .nth(2)
                .and_then(|v| v.parse::<u64>().ok())
            {
                let _ = hist.record(us.max(1));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&logdir);
    Ok(PgbenchOutcome {
        transactions,
        tps,
        hist,
        errors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skeletons_of_the_server_sql_and_the_script_agree() {
        let server = r#"SELECT "events"."id" FROM "events" WHERE "events"."id" = $1 LIMIT $2"#;
        let script =
            r#"SELECT "events"."id" FROM "events" WHERE "events"."id" = :e_location LIMIT :one"#;
        assert_eq!(skeleton(server), skeleton(script));
        assert_eq!(
            skeleton("INSERT INTO t VALUES (gen_random_uuid(), NULL, 'x', 12, $3::uuid)"),
            "INSERT INTO t VALUES (?, ?, ?, ?, ?::uuid)"
        );
    }

    #[test]
    fn script_statements_skip_meta_commands_and_the_head_query() {
        let script = "\\if :started = 0\nSELECT u FROM bench_heads WHERE run = :run \\gset\n\\endif\nBEGIN;\nSELECT 1 \\gset x_\n-- note\n";
        assert_eq!(script_statements(script), vec!["BEGIN;", "SELECT 1"]);
    }

    #[test]
    fn log_lines_give_their_statement() {
        let l = "2026-11-22 10:00:00.123 UTC [42] LOG:  execute sqlx_s_3: SELECT 1";
        assert_eq!(logged_statement(l), Some("SELECT 1"));
        let l = "2026-11-22 10:00:00.123 UTC [42] LOG:  statement: BEGIN";
        assert_eq!(logged_statement(l), Some("BEGIN"));
        assert_eq!(logged_statement("... DETAIL:  parameters: $1 = '1'"), None);
    }
}
