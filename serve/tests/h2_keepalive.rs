//! HTTP/2 keep-alive on the serving port: a client that stops answering PINGs (a vanished peer whose
//! connection still looks open) is closed after `--http2-keep-alive-interval` plus
//! `--http2-keep-alive-timeout`, and counted as `keep-alive-timeout`; a client that answers them keeps its
//! connection. The clients speak raw HTTP/2 frames over TLS, so that not answering is possible.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use irsa_serve::args::ConnectionArgs;
use irsa_serve::connection::CloseReason;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

mod common;
use common::Server;

const PING_INTERVAL: Duration = Duration::from_millis(300);
const PING_TIMEOUT: Duration = Duration::from_millis(300);

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const ACK: u8 = 0x1;

/// A TLS server with short PING settings and idle and header timeouts far longer than the test, so that
/// only the keep-alive can close a connection.
async fn start() -> Server {
    let limits = ConnectionArgs {
        header_read_timeout: Duration::from_secs(60),
        idle_timeout: Duration::from_secs(60),
        http2_keep_alive_interval: PING_INTERVAL,
        http2_keep_alive_timeout: PING_TIMEOUT,
        ..ConnectionArgs::default()
    };
    common::start(Router::new().route("/", get(|| async { "hello" })), limits).await
}

/// An HTTP/2 client (ALPN h2) that has sent the connection preface and an empty SETTINGS frame.
async fn connect_h2(server: &Server) -> TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(server.ca.der()).unwrap();
    let mut config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let mut stream = connector
        .connect("127.0.0.1".try_into().unwrap(), tcp)
        .await
        .unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    stream.write_all(PREFACE).await.unwrap();
    write_frame(&mut stream, SETTINGS, 0, &[]).await;
    stream
}

async fn write_frame(stream: &mut TlsStream<TcpStream>, kind: u8, flags: u8, payload: &[u8]) {
    let len = u32::try_from(payload.len()).unwrap().to_be_bytes();
    let mut frame = vec![len[1], len[2], len[3], kind, flags, 0, 0, 0, 0];
    frame.extend_from_slice(payload);
    stream.write_all(&frame).await.unwrap();
    stream.flush().await.unwrap();
}

/// The next frame's type, flags and payload; `None` once the server has closed the connection.
async fn read_frame(stream: &mut TlsStream<TcpStream>) -> Option<(u8, u8, Vec<u8>)> {
    let mut head = [0u8; 9];
    stream.read_exact(&mut head).await.ok()?;
    let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
    let mut payload = vec![0u8; len];
    stream.read_exact(&mut payload).await.ok()?;
    Some((head[3], head[4], payload))
}

/// Reads every frame and answers none (not even the server's SETTINGS), as a peer that vanished; returns
/// how many PINGs the server sent before it closed the connection, and when it closed it. Panics if it is
/// still open after 10 s.
async fn stop_answering(client: &mut TlsStream<TcpStream>) -> (usize, Duration) {
    let started = Instant::now();
    let mut pings = 0;
    let within = Duration::from_secs(10);
    loop {
        match tokio::time::timeout(within, read_frame(client)).await {
            Ok(Some((PING, flags, _))) if flags & ACK == 0 => pings += 1,
            Ok(Some(_)) => {}
            Ok(None) => return (pings, started.elapsed()),
            Err(_) => panic!("still open after {within:?}: the unanswered PING did not close it"),
        }
    }
}

#[tokio::test]
async fn an_h2_client_that_stops_answering_pings_is_closed_after_the_keep_alive_timeout() {
    let server = start().await;
    let mut client = connect_h2(&server).await;
    let (pings, elapsed) = stop_answering(&mut client).await;
    assert!(pings >= 1, "the server never sent a PING");
    assert!(
        elapsed >= PING_INTERVAL + PING_TIMEOUT - Duration::from_millis(50),
        "closed after {elapsed:?}, before a PING could go unanswered"
    );
    // Closed by the keep-alive, not by the idle clock (60 s here).
    assert_eq!(server.closed.get(CloseReason::IdleTimeout), 0);
}

#[tokio::test]
async fn a_keep_alive_close_is_counted() {
    let server = start().await;
    let mut client = connect_h2(&server).await;
    stop_answering(&mut client).await;
    // Counted as the server's connection task ends, which may be just after the client read the close.
    let deadline = Instant::now() + Duration::from_secs(1);
    while server.closed.get(CloseReason::KeepAliveTimeout) == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(server.closed.get(CloseReason::KeepAliveTimeout), 1);
}

#[tokio::test]
async fn an_h2_client_that_answers_pings_keeps_its_connection() {
    let server = start().await;
    let mut client = connect_h2(&server).await;
    let mut pings = 0;
    let until = tokio::time::Instant::now() + 4 * (PING_INTERVAL + PING_TIMEOUT);
    loop {
        match tokio::time::timeout_at(until, read_frame(&mut client)).await {
            Ok(Some((SETTINGS, flags, _))) if flags & ACK == 0 => {
                write_frame(&mut client, SETTINGS, ACK, &[]).await;
            }
            Ok(Some((PING, flags, payload))) if flags & ACK == 0 => {
                pings += 1;
                write_frame(&mut client, PING, ACK, &payload).await;
            }
            Ok(Some(_)) => {}
            Ok(None) => panic!("closed although every PING was answered ({pings} PINGs)"),
            Err(_) => break,
        }
    }
    assert!(pings >= 2, "only {pings} PINGs in four keep-alive periods");
    assert_eq!(server.closed.get(CloseReason::KeepAliveTimeout), 0);
}
