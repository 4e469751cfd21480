//! The server under load: this binary re-run as `bench serve-for-bench`, which serves exactly as
//! `chronicle serve` does (same `Application`, default settings, access log off as in the peer's
//! setup), in a child process, so its memory can be read from `/proc` apart from the load generator's.

use std::io::BufRead;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running server process, killed when dropped.
pub struct Server {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl Server {
    /// Starts it on `database_url` and waits until it listens.
    pub fn start(database_url: &str) -> Result<Self, String> {
        Self::start_with(database_url, &[])
    }

    /// [`Server::start`] with more `serve-for-bench` arguments.
    pub fn start_with(database_url: &str, args: &[&str]) -> Result<Self, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut child = Command::new(exe)
            .args(["serve-for-bench", "--database-url", database_url])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("starting the server: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut lines = std::io::BufReader::new(stdout).lines();
        let first = lines
            .next()
            .ok_or("the server exited before listening")?
            .map_err(|e| e.to_string())?;
        let addr = first
            .strip_prefix("listening ")
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| format!("unexpected first line from the server: {first}"))?;
        // Keep draining its stdout so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Ok(Self { child, addr })
    }

    /// Its resident set size in bytes (`VmRSS`), when `/proc` tells.
    pub fn rss_bytes(&self) -> Option<u64> {
        rss_of(self.child.id())
    }

    /// Samples the RSS every 100 ms until `stop` is set; returns the largest.
    pub fn sample_rss(
        &self,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<u64> {
        let pid = self.child.id();
        tokio::spawn(async move {
            let mut peak = 0;
            while !*stop.borrow() {
                peak = peak.max(rss_of(pid).unwrap_or(0));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            peak
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rss_of(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// Clock ticks per second in `/proc/*/stat` (`USER_HZ`, 100 on Linux).
const TICKS_PER_S: f64 = 100.0;

/// CPU time (user + system) of process `pid` so far, in seconds.
pub fn cpu_seconds(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| ticks(&stat))
        .map_or(0.0, |t| t as f64 / TICKS_PER_S)
}

/// CPU time of every `postgres` process so far, in seconds (the database's share of the work).
pub fn postgres_cpu_seconds() -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    let total: u64 = entries
        .filter_map(|entry| {
            let stat = std::fs::read_to_string(entry.ok()?.path().join("stat")).ok()?;
            stat.contains("(postgres)").then(|| ticks(&stat)).flatten()
        })
        .sum();
    total as f64 / TICKS_PER_S
}

/// utime + stime: fields 14 and 15, counted after the `(comm)` field, which may hold spaces.
fn ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

impl Server {
    /// The server process's id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}
