//! A TCP proxy on loopback that a test can cut and restore, or stall and resume, to play a
//! database going away, or going silent, and coming back without touching the shared server.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Forwards connections to a target while up; while down, closes every open connection and
/// refuses new ones (accepts and drops them at once); while stalled, keeps every socket open
/// (and accepts new ones) but forwards nothing either way, like a peer that stopped answering.
pub struct TcpProxy {
    pub addr: SocketAddr,
    up: Arc<AtomicBool>,
    cut: Arc<std::sync::Mutex<CancellationToken>>,
    stalled: watch::Sender<bool>,
    stop: CancellationToken,
}

impl TcpProxy {
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let cut = Arc::new(std::sync::Mutex::new(CancellationToken::new()));
        let (stalled, _) = watch::channel(false);
        let stop = CancellationToken::new();
        let (up2, cut2, stalled2, stop2) = (up.clone(), cut.clone(), stalled.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    () = stop2.cancelled() => return,
                    accepted = listener.accept() => accepted,
                };
                let Ok((inbound, _)) = accepted else {
                    continue;
                };
                if !up2.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let token = cut2.lock().unwrap().clone();
                let stalled = stalled2.subscribe();
                tokio::spawn(async move {
                    let Ok(outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    let (from_client, to_client) = inbound.into_split();
                    let (from_server, to_server) = outbound.into_split();
                    tokio::select! {
                        () = token.cancelled() => {}
                        _ = async {
                            tokio::join!(
                                pump(from_client, to_server, stalled.clone()),
                                pump(from_server, to_client, stalled),
                            )
                        } => {}
                    }
                });
            }
        });
        Self {
            addr,
            up,
            cut,
            stalled,
            stop,
        }
    }

    /// Drops every forwarded connection and refuses new ones.
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        let mut token = self.cut.lock().unwrap();
        token.cancel();
        *token = CancellationToken::new();
    }

    /// Forwards again.
    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }

    /// Stops forwarding bytes, in both directions, on every connection, old and new, while
    /// keeping the sockets open: neither end sees a reset or an end of stream.
    pub fn stall(&self) {
        self.stalled.send_replace(true);
    }

    /// Forwards held and new bytes again.
    pub fn resume(&self) {
        self.stalled.send_replace(false);
    }
}

/// Copies one direction, waiting while the proxy is stalled both before reading (so the
/// sender's bytes stay queued in the kernel) and before writing (so bytes read just before a
/// stall are held back too).
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut stalled: watch::Receiver<bool>) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        if stalled.wait_for(|s| !*s).await.is_err() {
            return;
        }
        let n = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => {
                let _ = to.shutdown().await;
                return;
            }
            Ok(n) => n,
        };
        if stalled.wait_for(|s| !*s).await.is_err() || to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.stop.cancel();
        self.cut.lock().unwrap().cancel();
    }
}
