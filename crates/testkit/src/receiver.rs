//! A webhook receiver for tests: captures every delivery, verifies its signature, and can be
//! told to fail (an error status, a hang past the sender's timeout, or no listener at all).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use latchkey_protocol::webhook::{SigningSecret, Verifier, WebhookHeaders};
use tokio_util::sync::CancellationToken;

/// How the receiver answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// 200 after `delay`.
    Ok { delay: Duration },
    /// This status at once.
    Status(u16),
    /// Never answers within `for_` (the sender should time out).
    Hang { for_: Duration },
    /// This status with this body, at once.
    Reply { status: u16, body: &'static [u8] },
}

/// One delivery as received.
#[derive(Debug, Clone)]
pub struct Arrival {
    pub id: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub verified: bool,
    pub answered: u16,
    pub at: Instant,
}

#[derive(Default)]
struct Shared {
    mode: Option<Mode>,
    verifier: Option<Verifier>,
    arrivals: Vec<Arrival>,
    in_flight: HashMap<String, usize>,
    /// The most deliveries of one message seen in flight at once.
    max_parallel: usize,
}

/// A running receiver on loopback.
pub struct TestReceiver {
    pub addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    stop: Option<CancellationToken>,
}

impl TestReceiver {
    /// Starts on a free loopback port, answering 200.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Mutex::new(Shared {
            mode: Some(Mode::Ok {
                delay: Duration::ZERO,
            }),
            ..Shared::default()
        }));
        let mut receiver = Self {
            addr,
            shared,
            stop: None,
        };
        receiver.serve(listener);
        receiver
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let stop = CancellationToken::new();
        let router = axum::Router::new()
            .route("/hook", post(receive))
            .with_state(self.shared.clone());
        let token = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async move { token.cancelled().await })
                .await;
        });
        self.stop = Some(stop);
    }

    /// The URL to register as an endpoint.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Verifies signatures against `secret` from now on.
    pub fn trust(&self, secret: &str) {
        self.shared.lock().unwrap().verifier =
            Some(Verifier::new(vec![SigningSecret::parse(secret).unwrap()]));
    }

    pub fn set_mode(&self, mode: Mode) {
        self.shared.lock().unwrap().mode = Some(mode);
    }

    /// Stops listening: connections are refused until [`TestReceiver::restart`].
    pub fn close(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop.cancel();
        }
    }

    /// Listens again on the same port.
    pub async fn restart(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        let listener = loop {
            match tokio::net::TcpListener::bind(self.addr).await {
                Ok(listener) => break listener,
                Err(error) => {
                    assert!(
                        Instant::now() < deadline,
                        "cannot listen on {} again: {error}",
                        self.addr
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        };
        self.serve(listener);
    }

    /// Every delivery so far.
    #[must_use]
    pub fn arrivals(&self) -> Vec<Arrival> {
        self.shared.lock().unwrap().arrivals.clone()
    }

    /// Ids of messages answered 2xx (an arrival whose sender gave up shows `answered: 0`).
    #[must_use]
    pub fn accepted_ids(&self) -> std::collections::BTreeSet<String> {
        self.arrivals()
            .into_iter()
            .filter(|a| (200..300).contains(&a.answered))
            .map(|a| a.id)
            .collect()
    }

    /// The most deliveries of one message that were in flight at the same time.
    #[must_use]
    pub fn max_parallel_per_message(&self) -> usize {
        self.shared.lock().unwrap().max_parallel
    }

    /// Waits until `count` distinct messages were accepted, or panics after `limit`.
    pub async fn wait_for(&self, count: usize, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let got = self.accepted_ids().len();
            if got >= count {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "received {got} of {count} messages within {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for TestReceiver {
    fn drop(&mut self) {
        self.close();
    }
}

/// Counts a delivery out of flight however its handler ends, completed or cancelled (the
/// sender timing out drops the connection, and with it the handler).
struct InFlight {
    shared: Arc<Mutex<Shared>>,
    id: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut shared = self
            .shared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = shared.in_flight.get_mut(&self.id) {
            *count -= 1;
        }
    }
}

async fn receive(
    State(shared): State<Arc<Mutex<Shared>>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static [u8]) {
    let id = headers
        .get("svix-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let (mode, index) = {
        let mut guard = shared.lock().unwrap();
        let verified = guard.verifier.as_ref().is_some_and(|verifier| {
            WebhookHeaders::from_lookup(|name| headers.get(name).map(|v| v.as_bytes()))
                .and_then(|h| verifier.verify(&h, &body, latchkey_protocol::time::now_secs()))
                .is_ok()
        });
        let count = guard.in_flight.entry(id.clone()).or_default();
        *count += 1;
        let now_in_flight = *count;
        guard.max_parallel = guard.max_parallel.max(now_in_flight);
        // Recorded on arrival with no answer yet (0); a sender that gives up leaves it at 0.
        guard.arrivals.push(Arrival {
            id: id.clone(),
            headers,
            body,
            verified,
            answered: 0,
            at: Instant::now(),
        });
        (
            guard.mode.unwrap_or(Mode::Ok {
                delay: Duration::ZERO,
            }),
            guard.arrivals.len() - 1,
        )
    };
    let _in_flight = InFlight {
        shared: shared.clone(),
        id,
    };
    let (status, reply): (StatusCode, &'static [u8]) = match mode {
        Mode::Ok { delay } => {
            tokio::time::sleep(delay).await;
            (StatusCode::OK, b"")
        }
        Mode::Status(code) => (
            StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            b"",
        ),
        Mode::Hang { for_ } => {
            tokio::time::sleep(for_).await;
            (StatusCode::GATEWAY_TIMEOUT, b"")
        }
        Mode::Reply { status, body } => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            body,
        ),
    };
    shared.lock().unwrap().arrivals[index].answered = status.as_u16();
    (status, reply)
}
