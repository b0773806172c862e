//! A lean HTTP/1.1 load generator: N keep-alive connections, each sending requests back to
//! back, recording every latency.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::Request;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

/// Builds the `n`-th request of connection `conn`.
pub type MakeRequest = Arc<dyn Fn(usize, u64) -> Request<Full<Bytes>> + Send + Sync>;

/// Figures from one run.
#[derive(Debug, Clone)]
pub struct Report {
    pub requests: u64,
    pub errors: u64,
    pub seconds: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl Report {
    pub fn per_second(&self) -> f64 {
        #[expect(
            clippy::cast_precision_loss,
            reason = "request counts are far below 2^52"
        )]
        let requests = self.requests as f64;
        requests / self.seconds
    }
}

/// A new keep-alive HTTP/1.1 connection to `addr` (Nagle's algorithm off), its driver
/// spawned.
async fn connect(addr: &str) -> Result<SendRequest<Full<Bytes>>, String> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    Ok(sender)
}

/// One status code for a GET, or `None` if the server did not answer.
pub async fn get_status(addr: &str, path: &str) -> Option<u16> {
    let mut sender = connect(addr).await.ok()?;
    let request = Request::get(path)
        .header("host", addr)
        .body(Full::new(Bytes::new()))
        .ok()?;
    let response = sender.send_request(request).await.ok()?;
    Some(response.status().as_u16())
}

/// Runs `connections` connections for `warmup` (not recorded) then `duration`. A response
/// other than `expect_status` counts as an error.
pub async fn run(
    addr: &str,
    connections: usize,
    warmup: Duration,
    duration: Duration,
    expect_status: u16,
    make: MakeRequest,
) -> Result<Report, String> {
    let recording = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for conn in 0..connections {
        let mut sender = connect(addr).await?;
        let (recording, stop, errors, make) = (
            recording.clone(),
            stop.clone(),
            errors.clone(),
            make.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut latencies: Vec<u32> = Vec::with_capacity(100_000);
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let request = make(conn, n);
                n += 1;
                let started = Instant::now();
                let ok = match sender.send_request(request).await {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        let drained = response.into_body().collect().await.is_ok();
                        status == expect_status && drained
                    }
                    Err(_) => false,
                };
                let micros = u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX);
                if recording.load(Ordering::Relaxed) {
                    if ok {
                        latencies.push(micros);
                    } else {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                if !ok && sender.ready().await.is_err() {
                    break;
                }
            }
            latencies
        }));
    }
    tokio::time::sleep(warmup).await;
    recording.store(true, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(duration).await;
    recording.store(false, Ordering::Relaxed);
    let seconds = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.map_err(|e| e.to_string())?);
    }
    Ok(summarize(all, errors.load(Ordering::Relaxed), seconds))
}

/// Sends one request every `interval` on one connection for `duration` (an open-loop stream of
/// cheap requests), recording each latency; a slow answer delays the next send, never skips it.
pub async fn paced(
    addr: &str,
    interval: Duration,
    duration: Duration,
    make: MakeRequest,
) -> Result<Report, String> {
    let mut sender = connect(addr).await?;
    let mut latencies = Vec::new();
    let mut errors = 0u64;
    let started = Instant::now();
    let mut next = tokio::time::Instant::now();
    let mut n = 0u64;
    while started.elapsed() < duration {
        tokio::time::sleep_until(next).await;
        next += interval;
        let request = make(0, n);
        n += 1;
        let sent = Instant::now();
        let ok = match sender.send_request(request).await {
            Ok(response) => {
                response.status().is_success() && response.into_body().collect().await.is_ok()
            }
            Err(_) => false,
        };
        if ok {
            latencies.push(u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX));
        } else {
            errors += 1;
        }
    }
    Ok(summarize(
        latencies,
        errors,
        started.elapsed().as_secs_f64(),
    ))
}

/// Percentiles of recorded latencies (µs).
pub fn summarize(mut all: Vec<u32>, errors: u64, seconds: f64) -> Report {
    all.sort_unstable();
    let pick = |q: f64| -> f64 {
        if all.is_empty() {
            return f64::NAN;
        }
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss,
            reason = "an index into a vector of at most a few million latencies"
        )]
        let index = ((all.len() - 1) as f64 * q).round() as usize;
        f64::from(all[index]) / 1000.0
    };
    Report {
        requests: u64::try_from(all.len()).unwrap_or(u64::MAX),
        errors,
        seconds,
        p50_ms: pick(0.50),
        p99_ms: pick(0.99),
    }
}

/// One request on a fresh connection; status, headers and body.
pub async fn once(
    addr: &str,
    request: Request<Full<Bytes>>,
) -> Result<(u16, hyper::HeaderMap, Bytes), String> {
    let mut sender = connect(addr).await?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, headers, body))
}

/// One keep-alive connection, for requests sent one after another.
pub struct Conn {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

impl Conn {
    pub async fn open(addr: &str) -> Result<Self, String> {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| e.to_string())?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(connection);
        Ok(Self { sender })
    }

    /// Sends `request` and reads the whole answer: its status and body.
    pub async fn send(&mut self, request: Request<Full<Bytes>>) -> Result<(u16, Bytes), String> {
        self.sender.ready().await.map_err(|e| e.to_string())?;
        let response = self
            .sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((status, body))
    }
}
