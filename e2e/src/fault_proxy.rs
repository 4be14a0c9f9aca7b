//! A loopback TCP proxy that can freeze the connections it carries: a fault injector for the e2e suite.
//!
//! A watch that stops delivering while its socket stays open (a NAT or load balancer that silently dropped
//! the flow, a half-dead apiserver) is a real failure, but no real peer stalls on demand. Put this proxy
//! between a client and its server, and [`FaultProxy::freeze`] stops every byte on the connections open at
//! that moment, in both directions, without closing them; connections opened afterwards pass, so a client's
//! fresh request still gets through. It relays bytes and never looks at them (TLS passes through intact).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::AbortHandle;

/// A running proxy from a loopback port to `upstream`; stopped (every connection closed) when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    /// One freeze switch per connection accepted so far.
    switches: Mutex<Vec<watch::Sender<bool>>>,
    /// The accept loop and every connection's relay, aborted on drop.
    tasks: Mutex<Vec<AbortHandle>>,
}

impl FaultProxy {
    /// Listens on a free port of 127.0.0.1 and relays each connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let accepting = shared.clone();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (switch, frozen) = watch::channel(false);
                lock(&accepting.switches).push(switch);
                let relay = tokio::spawn(relay(client, upstream, frozen));
                lock(&accepting.tasks).push(relay.abort_handle());
            }
        });
        lock(&shared.tasks).push(accept.abort_handle());
        Ok(Self { addr, shared })
    }

    /// The address clients dial instead of the upstream's.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many connections the proxy has accepted so far.
    pub fn accepted(&self) -> usize {
        lock(&self.shared.switches).len()
    }

    /// Stops relaying on every connection open now (what was read stays held); returns how many.
    pub fn freeze(&self) -> usize {
        let switches = lock(&self.shared.switches);
        for switch in switches.iter() {
            switch.send_replace(true);
        }
        switches.len()
    }

    /// Lets every frozen connection flow again, with what was held.
    pub fn thaw(&self) {
        for switch in lock(&self.shared.switches).iter() {
            switch.send_replace(false);
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        for task in lock(&self.shared.tasks).drain(..) {
            task.abort();
        }
    }
}

/// A poisoned lock only means a test thread panicked; the list itself is still whole.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Relays `client` to a new connection to `upstream`, both ways, until either side closes.
async fn relay(client: TcpStream, upstream: SocketAddr, frozen: watch::Receiver<bool>) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    tokio::join!(
        pipe(client_read, server_write, frozen.clone()),
        pipe(server_read, client_write, frozen),
    );
}

/// Copies `from` to `to`, holding each chunk while the connection is frozen.
async fn pipe(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut frozen: watch::Receiver<bool>) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        // The switch lives as long as the proxy: an error means the proxy is gone.
        if frozen.wait_for(|frozen| !frozen).await.is_err() {
            return;
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// An upstream that echoes every connection.
    async fn echo() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut read, mut write) = stream.split();
                    let _ = tokio::io::copy(&mut read, &mut write).await;
                });
            }
        });
        addr
    }

    async fn round_trip(stream: &mut TcpStream, within: Duration) -> Option<()> {
        stream.write_all(b"ping").await.ok()?;
        let mut answer = [0u8; 4];
        tokio::time::timeout(within, stream.read_exact(&mut answer))
            .await
            .ok()?
            .ok()?;
        (&answer == b"ping").then_some(())
    }

    #[tokio::test]
    async fn a_frozen_connection_holds_its_bytes_while_a_new_one_flows() {
        let proxy = FaultProxy::start(echo().await).await.unwrap();
        let mut old = TcpStream::connect(proxy.addr()).await.unwrap();
        let short = Duration::from_millis(300);
        assert!(round_trip(&mut old, short).await.is_some());
        assert_eq!(proxy.freeze(), 1);
        assert!(
            round_trip(&mut old, short).await.is_none(),
            "a frozen connection relayed"
        );
        let mut new = TcpStream::connect(proxy.addr()).await.unwrap();
        assert!(round_trip(&mut new, short).await.is_some());
        assert_eq!(proxy.accepted(), 2);
        proxy.thaw();
        // The held "ping" arrives, then the next one.
        let mut held = [0u8; 4];
        tokio::time::timeout(short, old.read_exact(&mut held))
            .await
            .unwrap()
            .unwrap();
        assert!(round_trip(&mut old, short).await.is_some());
    }

    #[tokio::test]
    async fn dropping_the_proxy_closes_its_connections() {
        let proxy = FaultProxy::start(echo().await).await.unwrap();
        let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
        assert!(
            round_trip(&mut client, Duration::from_millis(300))
                .await
                .is_some()
        );
        drop(proxy);
        let mut rest = Vec::new();
        let read =
            tokio::time::timeout(Duration::from_secs(2), client.read_to_end(&mut rest)).await;
        assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "{read:?}");
    }
}
