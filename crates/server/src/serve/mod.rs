//! The HTTP/1.1 accept loop: connections that cannot exhaust the process.
//!
//! `axum::serve` holds every accepted connection until its peer closes it and, when the process
//! runs out of file descriptors, logs the failed `accept` and sleeps a second, so a few hundred
//! idle sockets stop the server. This loop instead:
//!
//! - closes a connection that has not sent a complete request head within the header timeout
//!   (counted from the connection's start, or from the first byte of each later request: a
//!   slowloris client trickling a header a byte at a time is closed on time);
//! - closes a keep-alive connection that stays idle (no request in flight, nothing sent) for
//!   the idle timeout;
//! - bounds open connections below the descriptor limit; at the bound a new connection takes the
//!   place of the longest-idle one, and when every connection is busy the newcomer is answered
//!   `503` and closed (shed), never left to wait in the kernel's queue;
//! - on `EMFILE`/`ENFILE` frees an idle connection and backs off briefly instead of spinning.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

use watched::Watched;

mod watched;

/// Limits on client connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// A request head must arrive in full within this long of the connection's start, or of
    /// the first byte of a later request.
    pub header_timeout: Duration,
    /// A connection with no request in flight and nothing received is closed after this long.
    pub idle_timeout: Duration,
    /// A request (reading its body included) must be answered within this long of its head.
    pub request_timeout: Duration,
    /// Open connections at most; `None` derives it from the descriptor limit.
    pub max_connections: Option<usize>,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(60),
            max_connections: None,
        }
    }
}

/// Descriptors kept back from client connections for the database, outgoing webhooks and
/// mail, the log and the runtime itself.
const RESERVED_DESCRIPTORS: u64 = 64;
/// The derived bound never exceeds this (memory, not descriptors, is then the limit).
const MAX_DERIVED_CONNECTIONS: u64 = 10_000;

/// Raises the soft limit on open files to the hard limit and returns the soft limit now in
/// force (`None` if the system does not say).
pub fn raise_descriptor_limit() -> Option<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let raised = rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => limit = getrlimit(Resource::Nofile),
            Err(error) => tracing::warn!(%error, "could not raise the open-files limit"),
        }
    }
    limit.current
}

/// The connection bound for `descriptors` open files, `database_connections` of which (times
/// three, for SQLite's database, journal and shared-memory files) belong to the pool.
#[must_use]
pub fn derived_max_connections(descriptors: Option<u64>, database_connections: u32) -> usize {
    let reserved = RESERVED_DESCRIPTORS + 3 * u64::from(database_connections);
    let available = descriptors
        .unwrap_or(MAX_DERIVED_CONNECTIONS + reserved)
        .saturating_sub(reserved);
    usize::try_from(available.clamp(16, MAX_DERIVED_CONNECTIONS)).unwrap_or(16)
}

/// Serves `router` on `listener` until `stop` is cancelled, then stops accepting, lets requests
/// in flight finish and closes idle connections.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    max_connections: usize,
    stop: CancellationToken,
) {
    let tracker = Arc::new(Tracker::new(max_connections));
    let limits = Arc::new(limits);
    let mut exhaustion_logged: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(error) => {
                on_accept_error(&error, &tracker, &mut exhaustion_logged).await;
                continue;
            }
        };
        if !tracker.make_room().await {
            shed(&stream);
            continue;
        }
        let _ = stream.set_nodelay(true);
        let connection = tracker.register();
        tokio::spawn(serve_connection(
            stream,
            peer,
            router.clone(),
            Arc::clone(&limits),
            connection,
            Arc::clone(&tracker),
            stop.clone(),
        ));
    }
    drop(listener);
    tracker.wait_until_empty().await;
}

/// Accept failed: out of descriptors (free one and back off), a connection reset before we
/// took it (ignore), or something else (back off so a persistent error cannot spin).
async fn on_accept_error(
    error: &std::io::Error,
    tracker: &Tracker,
    last_logged: &mut Option<Instant>,
) {
    let errno = error.raw_os_error();
    let out_of_descriptors = errno == Some(rustix::io::Errno::MFILE.raw_os_error())
        || errno == Some(rustix::io::Errno::NFILE.raw_os_error());
    if matches!(
        error.kind(),
        std::io::ErrorKind::ConnectionAborted | std::io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    if out_of_descriptors {
        tracker.evict_longest_idle();
    }
    if last_logged.is_none_or(|at| at.elapsed() >= Duration::from_secs(60)) {
        *last_logged = Some(Instant::now());
        tracing::warn!(%error, open.connections = tracker.len(), "accepting a connection failed; shedding idle connections (logged once a minute)");
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
}

/// Answers a connection we have no room for with a 503 (if the socket takes it at once) and
/// closes it.
fn shed(stream: &TcpStream) {
    let _ = stream.try_write(
        b"HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
    );
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: Arc<ConnectionLimits>,
    state: Arc<ConnectionState>,
    tracker: Arc<Tracker>,
    stop: CancellationToken,
) {
    let io = TokioIo::new(Watched {
        inner: stream,
        state: Arc::clone(&state),
    });
    let service_state = Arc::clone(&state);
    let request_timeout = limits.request_timeout;
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        let busy = BusyGuard::enter(&service_state);
        let response = tokio::time::timeout(request_timeout, router.clone().oneshot(request));
        async move {
            let response = match response.await {
                Ok(response) => response.unwrap_or_else(|never| match never {}),
                Err(_) => request_timed_out(),
            };
            drop(busy);
            Ok::<_, Infallible>(response)
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    // The header and idle timeouts are this module's; hyper's own header timer would also run
    // while a keep-alive connection waits for its next request.
    builder.timer(TokioTimer::new()).header_read_timeout(None);
    let connection = builder.serve_connection(io, service);
    tokio::pin!(connection);

    loop {
        tokio::select! {
            _ = connection.as_mut() => break,
            () = tokio::time::sleep_until(state.deadline(&limits)) => {
                if state.expired(&limits) {
                    break;
                }
            }
            () = state.evict.notified() => {
                if state.is_idle() {
                    break;
                }
                // A request arrived since it was chosen: finish it, then close.
                connection.as_mut().graceful_shutdown();
                let _ = connection.as_mut().await;
                break;
            }
            () = stop.cancelled() => {
                if state.is_idle() {
                    break;
                }
                // Let the request in flight finish, however long it takes, then close.
                connection.as_mut().graceful_shutdown();
                let _ = connection.as_mut().await;
                break;
            }
        }
    }
    tracker.unregister(state.id);
}

/// 408 in the JSON error envelope; `Connection: close` makes hyper close the connection after it.
fn request_timed_out() -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let mut response = latchkey_web::ApiError::new(
        axum::http::StatusCode::REQUEST_TIMEOUT,
        "request_timeout",
        "The request was not completed in time.",
    )
    .into_response();
    response.headers_mut().insert(
        axum::http::header::CONNECTION,
        axum::http::HeaderValue::from_static("close"),
    );
    response
}

/// What the accept loop knows of one connection.
struct ConnectionState {
    id: u64,
    started: Instant,
    /// Requests being handled (hyper's HTTP/1 handles one at a time, so 0 or 1).
    in_flight: AtomicUsize,
    /// Milliseconds after `started` when the connection last became idle.
    idle_since_ms: AtomicU64,
    /// Milliseconds after `started` of the first byte received since it became idle
    /// (`u64::MAX`: none yet).
    first_byte_ms: AtomicU64,
    /// Whether any request was ever handled (the first request's head is timed from the start).
    served_any: AtomicBool,
    evict: Notify,
}

impl ConnectionState {
    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn is_busy(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) > 0
    }

    fn is_idle(&self) -> bool {
        !self.is_busy()
    }

    fn has_partial_request(&self) -> bool {
        self.first_byte_ms.load(Ordering::Acquire) != u64::MAX
    }

    /// When this connection must next be looked at.
    fn deadline(&self, limits: &ConnectionLimits) -> Instant {
        if self.is_busy() {
            // Re-checked when idle again; a request's own duration is not limited here.
            return Instant::now() + limits.idle_timeout.min(Duration::from_secs(1));
        }
        self.started + Duration::from_millis(self.limit_ms(limits))
    }

    /// Milliseconds after `started` at which an idle connection expires.
    fn limit_ms(&self, limits: &ConnectionLimits) -> u64 {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let first_byte = self.first_byte_ms.load(Ordering::Acquire);
        if first_byte != u64::MAX {
            first_byte.saturating_add(ms(limits.header_timeout))
        } else if self.served_any.load(Ordering::Acquire) {
            self.idle_since_ms
                .load(Ordering::Acquire)
                .saturating_add(ms(limits.idle_timeout))
        } else {
            ms(limits.header_timeout)
        }
    }

    fn expired(&self, limits: &ConnectionLimits) -> bool {
        !self.is_busy() && self.elapsed_ms() >= self.limit_ms(limits)
    }

    /// Bytes arrived: the first of a new request starts its header clock.
    fn received(&self) {
        if !self.is_busy() && self.first_byte_ms.load(Ordering::Relaxed) == u64::MAX {
            self.first_byte_ms
                .store(self.elapsed_ms().max(1), Ordering::Release);
        }
    }
}

/// Marks a request in flight until dropped (also when the client goes away mid-request).
struct BusyGuard(Arc<ConnectionState>);

impl BusyGuard {
    fn enter(state: &Arc<ConnectionState>) -> Self {
        state.in_flight.fetch_add(1, Ordering::AcqRel);
        state.first_byte_ms.store(u64::MAX, Ordering::Release);
        state.served_any.store(true, Ordering::Release);
        Self(Arc::clone(state))
    }
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0
            .idle_since_ms
            .store(self.0.elapsed_ms(), Ordering::Release);
        self.0.first_byte_ms.store(u64::MAX, Ordering::Release);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The open connections, for the bound and for eviction.
struct Tracker {
    max: usize,
    connections: Mutex<HashMap<u64, Arc<ConnectionState>>>,
    next_id: AtomicU64,
    closed: Notify,
}

impl Tracker {
    fn new(max: usize) -> Self {
        Self {
            max,
            connections: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            closed: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<ConnectionState>>> {
        self.connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn len(&self) -> usize {
        self.lock().len()
    }

    fn register(&self) -> Arc<ConnectionState> {
        let state = Arc::new(ConnectionState {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            started: Instant::now(),
            in_flight: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(0),
            first_byte_ms: AtomicU64::new(u64::MAX),
            served_any: AtomicBool::new(false),
            evict: Notify::new(),
        });
        self.lock().insert(state.id, Arc::clone(&state));
        state
    }

    fn unregister(&self, id: u64) {
        self.lock().remove(&id);
        self.closed.notify_waiters();
    }

    /// Below the bound: true at once. At it: evicts the longest-idle connection (preferring
    /// ones that have sent nothing) and waits briefly for it to close; false if every
    /// connection is busy.
    async fn make_room(&self) -> bool {
        for _ in 0..3 {
            let closed = self.closed.notified();
            if self.len() < self.max {
                return true;
            }
            if !self.evict_longest_idle() {
                return false;
            }
            let _ = tokio::time::timeout(Duration::from_millis(50), closed).await;
        }
        self.len() < self.max
    }

    /// Asks the idle connection that has waited longest (one with no partial request first)
    /// to close. False when none is idle.
    fn evict_longest_idle(&self) -> bool {
        let victim = {
            let connections = self.lock();
            connections
                .values()
                .filter(|c| c.is_idle())
                .min_by_key(|c| {
                    let idle_since =
                        c.started + Duration::from_millis(c.idle_since_ms.load(Ordering::Acquire));
                    (c.has_partial_request(), idle_since)
                })
                .cloned()
        };
        victim.is_some_and(|c| {
            c.evict.notify_one();
            true
        })
    }

    async fn wait_until_empty(&self) {
        loop {
            let closed = self.closed.notified();
            if self.len() == 0 {
                return;
            }
            closed.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_leaves_room_for_the_pool_and_files() {
        assert_eq!(derived_max_connections(Some(256), 16), 256 - 64 - 48);
        assert_eq!(derived_max_connections(Some(100), 16), 16, "never below 16");
        assert_eq!(derived_max_connections(Some(1 << 20), 16), 10_000);
        assert_eq!(derived_max_connections(None, 16), 10_000);
    }
}
