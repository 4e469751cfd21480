//! The load generator: a minimal HTTP/1.1 keep-alive client on tokio (one connection per worker), and
//! [`load`], which runs `concurrency` workers against the server for a fixed time and keeps every
//! latency.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// One keep-alive connection.
pub struct Client {
    stream: BufReader<TcpStream>,
    host: String,
}

impl Client {
    /// Connects to `addr`.
    pub async fn connect(addr: SocketAddr) -> std::io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream: BufReader::new(stream),
            host: addr.to_string(),
        })
    }

    /// POSTs a JSON `body` to `path`; returns the status and the body.
    pub async fn post(
        &mut self,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> std::io::Result<(u16, Vec<u8>)> {
        let mut request = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            self.host,
            body.len()
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        request.push_str(body);
        self.stream.get_mut().write_all(request.as_bytes()).await?;

        let bad =
            |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
        let mut line = String::new();
        self.stream.read_line(&mut line).await?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("no status line"))?;
        let mut length = None;
        loop {
            line.clear();
            if self.stream.read_line(&mut line).await? == 0 {
                return Err(bad("connection closed in the headers"));
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse::<usize>().ok();
            }
        }
        let mut body = vec![0; length.ok_or_else(|| bad("no Content-Length"))?];
        self.stream.read_exact(&mut body).await?;
        Ok((status, body))
    }
}

/// What a load run measured.
pub struct LoadResult {
    /// Answers that were 200 without GraphQL errors.
    pub ok: u64,
    /// Such answers over the whole run, warm-up included (what the CPU time was spent on).
    pub all_ok: u64,
    /// Other answers and failed requests.
    pub errors: u64,
    /// The measured time.
    pub elapsed: Duration,
    /// Every successful request's latency, sorted.
    pub latencies: Vec<Duration>,
}

impl LoadResult {
    /// Successful requests per second.
    pub fn per_second(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    /// The `q` quantile of the latencies, in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        quantile_ms(&self.latencies, q)
    }
}

/// The `q` quantile of sorted latencies, in milliseconds.
pub fn quantile_ms(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[index.min(sorted.len() - 1)].as_secs_f64() * 1_000.0
}

/// Runs `concurrency` workers for `warmup` (not counted) and then `duration`; worker `w`'s `i`-th
/// request has the body `body(w, i)`.
pub async fn load(
    addr: SocketAddr,
    concurrency: usize,
    warmup: Duration,
    duration: Duration,
    headers: &'static [(&'static str, &'static str)],
    body: impl Fn(usize, u64) -> String + Send + Sync + Clone + 'static,
) -> Result<LoadResult, String> {
    let start = Instant::now() + warmup;
    let end = start + duration;
    let mut workers = Vec::new();
    for worker in 0..concurrency {
        let body = body.clone();
        workers.push(tokio::spawn(async move {
            let mut client = Client::connect(addr).await.map_err(|e| e.to_string())?;
            let (mut ok, mut all_ok, mut errors, mut latencies) = (0u64, 0u64, 0u64, Vec::new());
            let mut i = 0;
            loop {
                let sent = Instant::now();
                if sent >= end {
                    break;
                }
                let request = body(worker, i);
                i += 1;
                let answer = client.post("/graphql", headers, &request).await;
                let done = Instant::now();
                let counted = sent >= start && done <= end;
                match answer {
                    Ok((200, reply)) if !contains(&reply, b"\"errors\"") => {
                        all_ok += 1;
                        if counted {
                            ok += 1;
                            latencies.push(done - sent);
                        }
                    }
                    Ok(_) => errors += u64::from(counted),
                    Err(_) => {
                        errors += 1;
                        client = Client::connect(addr).await.map_err(|e| e.to_string())?;
                    }
                }
            }
            Ok::<_, String>((ok, all_ok, errors, latencies))
        }));
    }
    let mut result = LoadResult {
        ok: 0,
        all_ok: 0,
        errors: 0,
        elapsed: duration,
        latencies: Vec::new(),
    };
    for worker in workers {
        let (ok, all_ok, errors, latencies) = worker.await.map_err(|e| e.to_string())??;
        result.ok += ok;
        result.all_ok += all_ok;
        result.errors += errors;
        result.latencies.extend(latencies);
    }
    result.latencies.sort_unstable();
    Ok(result)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
