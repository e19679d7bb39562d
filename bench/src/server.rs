//! The server under test as a child process: start, readiness, memory, stop.

use std::{
    fs::File,
    net::TcpListener,
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// A fixed secret: tokens minted while seeding stay valid when the server restarts.
pub const JWT_SECRET: &str = "em-bench-secret-0123456789abcdef-0123456789abcdef";

/// How the server is configured (beyond the database).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hashing {
    /// Cheap argon2 (8 KiB, 1 pass) to seed thousands of users quickly.
    Cheap,
    /// The production defaults (19456 KiB, 2 passes).
    Default,
}

/// A running server.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Time from spawning the process to the first 200 from `/health/ready`.
    pub ready_after: Duration,
}

/// A free loopback port (released before the server binds it).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Server {
    /// Starts `bin` on `database_url` and waits until `/health/ready` answers 200.
    pub async fn start(
        bin: &Path,
        database_url: &str,
        hashing: Hashing,
        log: &Path,
        env: &[(String, String)],
    ) -> anyhow::Result<Self> {
        let port = free_port()?;
        let base = format!("http://127.0.0.1:{port}");
        let log = File::options()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        let mut cmd = Command::new(bin);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("DATABASE_URL", database_url)
            .env("BIND_ADDR", format!("127.0.0.1:{port}"))
            .env("JWT_SECRET", JWT_SECRET)
            // The webhook scenarios' receivers listen on loopback.
            .env("WEBHOOK_ALLOW_PRIVATE_TARGETS", "true")
            .arg("serve")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        cmd.envs(env.iter().map(|(k, v)| (k, v)));
        if hashing == Hashing::Cheap {
            cmd.env("ARGON2_MEMORY_KIB", "8")
                .env("ARGON2_ITERATIONS", "1");
        }
        let started = Instant::now();
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let ready_after = match wait_ready(&mut child, port, started).await {
            Ok(d) => d,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        };
        Ok(Self {
            child,
            base,
            ready_after,
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the server with SIGTERM (graceful), then SIGKILL after 5 s.
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    /// A server left running by an error path is killed, not orphaned.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Polls `/health/ready` every millisecond with a raw HTTP/1.1 request.
async fn wait_ready(child: &mut Child, port: u16, started: Instant) -> anyhow::Result<Duration> {
    let deadline = started + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait()? {
            bail!("the server exited during start-up ({status}); see its log");
        }
        if let Ok(status) = probe(port, "/health/ready").await
            && status == 200
        {
            return Ok(started.elapsed());
        }
        if Instant::now() > deadline {
            bail!("the server was not ready within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

async fn probe(port: u16, path: &str) -> anyhow::Result<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await?;
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await?;
    let head = String::from_utf8_lossy(&buf[..buf.len().min(16)]).into_owned();
    head.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no status line")
}

/// `VmRSS` and `VmHWM` (peak) of a process, in KiB.
pub fn memory_kib(pid: u32) -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .with_context(|| format!("{name} missing from /proc/{pid}/status"))
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

/// Opens `n` keep-alive connections, each having completed one `GET /health/live`, and
/// returns them open.
pub async fn open_idle_connections(port: u16, n: usize) -> anyhow::Result<Vec<TcpStream>> {
    let mut conns = Vec::with_capacity(n);
    for _ in 0..n {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await?;
        s.set_nodelay(true)?;
        s.write_all(b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .await?;
        read_one_response(&mut s).await?;
        conns.push(s);
    }
    Ok(conns)
}

/// Reads one response with a `Content-Length` body, leaving the connection open.
async fn read_one_response(s: &mut TcpStream) -> anyhow::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            bail!("the server closed a keep-alive connection");
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                return Ok(());
            }
        }
    }
}

/// The socket address of a base URL `http://127.0.0.1:PORT`.
pub fn addr_of(base: &str) -> anyhow::Result<std::net::SocketAddr> {
    Ok(std::net::SocketAddr::from(([127, 0, 0, 1], port_of(base)?)))
}

/// The port of a base URL `http://127.0.0.1:PORT`.
pub fn port_of(base: &str) -> anyhow::Result<u16> {
    base.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .context("base URL without a port")
}

/// CPU seconds (user + system) of a process, and of its reaped children when `children`.
fn cpu_of(pid: &str, children: bool) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime is field 14 overall.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    let (utime, stime, cutime, cstime) = (f[11], f[12], f[13], f[14]);
    let ticks = if children {
        utime + stime + cutime + cstime
    } else {
        utime + stime
    };
    // USER_HZ is 100 on Linux.
    Some(ticks as f64 / 100.0)
}

fn parent_of(pid: &str) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(1).map(str::to_owned)
}

/// CPU time of the server, of this process and of a PostgreSQL cluster (postmaster, live
/// backends and exited ones), to split the machine's two cores between them.
#[derive(Debug, Clone)]
pub struct CpuProbe {
    server: u32,
    postmaster: Option<String>,
    made: std::time::Instant,
}

/// Busy CPU seconds of the machine since boot, from the `cpu` line of /proc/stat.
fn machine_busy() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = stat.lines().find(|l| l.starts_with("cpu ")) else {
        return 0.0;
    };
    // user nice system idle iowait irq softirq steal ...
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    let busy: u64 = f
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4 && *i < 8)
        .map(|(_, v)| v)
        .sum();
    busy as f64 / 100.0
}

/// CPU seconds at one instant.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuSnapshot {
    /// Wall-clock seconds since the probe was made.
    pub wall: f64,
    /// Busy CPU time of the whole machine (every process, kernel included).
    pub machine: f64,
    /// The server.
    pub server: f64,
    /// em-bench itself.
    pub bench: f64,
    /// The PostgreSQL cluster.
    pub postgres: f64,
}

impl CpuSnapshot {
    /// CPU used by processes other than the server, em-bench and the cluster, as a share of
    /// the machine's CPUs: how much the rest of a shared machine interfered.
    pub fn others_share(&self) -> f64 {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let ours = self.server + self.bench + self.postgres;
        ((self.machine - ours).max(0.0) / self.wall.max(1e-9) / cpus).min(1.0)
    }
}

impl CpuProbe {
    /// A probe of `server` and, given the pid of one of its backends, a cluster.
    pub fn new(server: u32, backend: Option<u32>) -> Self {
        let postmaster = backend.and_then(|b| parent_of(&b.to_string()));
        Self {
            server,
            postmaster,
            made: std::time::Instant::now(),
        }
    }

    /// CPU seconds so far.
    pub fn snapshot(&self) -> CpuSnapshot {
        let postgres = self.postmaster.as_deref().map_or(0.0, |pm| {
            let mut total = cpu_of(pm, true).unwrap_or(0.0);
            if let Ok(dir) = std::fs::read_dir("/proc") {
                for entry in dir.flatten() {
                    let name = entry.file_name();
                    let Some(pid) = name.to_str() else { continue };
                    if pid.bytes().all(|b| b.is_ascii_digit())
                        && parent_of(pid).as_deref() == Some(pm)
                    {
                        total += cpu_of(pid, false).unwrap_or(0.0);
                    }
                }
            }
            total
        });
        CpuSnapshot {
            wall: self.made.elapsed().as_secs_f64(),
            machine: machine_busy(),
            server: cpu_of(&self.server.to_string(), false).unwrap_or(0.0),
            bench: cpu_of("self", false).unwrap_or(0.0),
            postgres,
        }
    }
}

impl std::ops::Add for CpuSnapshot {
    type Output = CpuSnapshot;

    fn add(self, rhs: Self) -> Self {
        CpuSnapshot {
            wall: self.wall + rhs.wall,
            machine: self.machine + rhs.machine,
            server: self.server + rhs.server,
            bench: self.bench + rhs.bench,
            postgres: self.postgres + rhs.postgres,
        }
    }
}

impl std::ops::Sub for CpuSnapshot {
    type Output = CpuSnapshot;

    fn sub(self, rhs: Self) -> Self {
        CpuSnapshot {
            wall: self.wall - rhs.wall,
            machine: self.machine - rhs.machine,
            server: self.server - rhs.server,
            bench: self.bench - rhs.bench,
            postgres: self.postgres - rhs.postgres,
        }
    }
}
