//! The serving port's limits against real clients over TLS: a client that says nothing, one that trickles its
//! headers or its body, one that stays idle, each closed within its timeout and counted by reason while a
//! good client is served; and a body too large, refused with a 413 that always reaches the client.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::routing::{get, post};
use irsa_serve::args::ConnectionArgs;
use irsa_serve::body_limit;
use irsa_serve::connection::CloseReason;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

mod common;
use common::{Server, start};

/// Short enough for a test, long enough for a loaded CI machine to send a request in one go.
const SHORT: Duration = Duration::from_millis(300);

fn router() -> Router {
    Router::new()
        .route("/", get(|| async { "hello" }))
        .route("/echo", post(|body: Bytes| async move { body }))
}

/// A raw HTTP/1.1 client: the TLS handshake done, nothing sent.
async fn connect(server: &Server) -> TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(server.ca.der()).unwrap();
    let mut config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    connector
        .connect("127.0.0.1".try_into().unwrap(), tcp)
        .await
        .unwrap()
}

/// Reads until the server closes the connection (EOF or a reset); panics if it is still open after `within`.
async fn read_until_closed(stream: &mut TlsStream<TcpStream>, within: Duration) -> String {
    let mut read = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return String::from_utf8_lossy(&read).into_owned(),
            Ok(Ok(n)) => read.extend_from_slice(&buf[..n]),
            Err(_) => panic!(
                "still open after {within:?}; read {:?}",
                String::from_utf8_lossy(&read)
            ),
        }
    }
}

/// A GET on a new connection, while the slow clients hold theirs.
async fn good_client_is_served(server: &Server) {
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(server.ca.pem().as_bytes()).unwrap()])
        .build()
        .unwrap();
    let response = client
        .get(format!("https://{}/", server.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(response.text().await.unwrap(), "hello");
}

fn limits() -> ConnectionArgs {
    ConnectionArgs {
        header_read_timeout: SHORT,
        body_read_timeout: SHORT,
        idle_timeout: SHORT,
        ..ConnectionArgs::default()
    }
}

#[tokio::test]
async fn a_client_that_says_nothing_is_closed_after_the_header_timeout() {
    let server = start(router(), limits()).await;
    let mut silent = connect(&server).await;
    let started = Instant::now();
    good_client_is_served(&server).await;
    assert_eq!(
        read_until_closed(&mut silent, Duration::from_secs(3)).await,
        ""
    );
    assert!(started.elapsed() >= SHORT - Duration::from_millis(50));
    assert_eq!(server.closed.get(CloseReason::HeaderTimeout), 1);
    assert_eq!(server.closed.get(CloseReason::IdleTimeout), 0);
}

#[tokio::test]
async fn a_client_trickling_its_headers_is_closed_while_others_are_served() {
    let server = start(router(), limits()).await;
    let mut slow = connect(&server).await;
    let trickle = tokio::spawn(async move {
        for byte in b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: yes\r\n\r\n" {
            if slow.write_all(&[*byte]).await.is_err() || slow.flush().await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        read_until_closed(&mut slow, Duration::from_secs(10)).await
    });
    good_client_is_served(&server).await;
    let started = Instant::now();
    let answer = tokio::time::timeout(Duration::from_secs(3), trickle)
        .await
        .expect("the trickling client is closed within the header timeout")
        .unwrap();
    assert_eq!(answer, "", "no request was read, none answered");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(server.closed.get(CloseReason::HeaderTimeout), 1);
}

#[tokio::test]
async fn a_client_trickling_its_body_gets_408_and_is_closed() {
    let server = start(router(), limits()).await;
    let mut slow = connect(&server).await;
    slow.write_all(b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n")
        .await
        .unwrap();
    let (mut reader, mut writer) = tokio::io::split(slow);
    let trickle = tokio::spawn(async move {
        for _ in 0..100 {
            if writer.write_all(b"x").await.is_err() || writer.flush().await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    good_client_is_served(&server).await;
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), reader.read_to_end(&mut answer))
        .await
        .expect("the trickling client is closed within the body timeout")
        .ok();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    trickle.abort();
    assert_eq!(server.closed.get(CloseReason::BodyTimeout), 1);
    assert_eq!(server.closed.get(CloseReason::HeaderTimeout), 0);
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let server = start(
        router(),
        ConnectionArgs {
            // Longer than the idle timeout: the idle clock, not the header clock, must close it.
            header_read_timeout: Duration::from_secs(30),
            ..limits()
        },
    )
    .await;
    let mut client = connect(&server).await;
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let answer = read_until_closed(&mut client, Duration::from_secs(3)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("hello"), "{answer}");
    assert!(started.elapsed() >= SHORT - Duration::from_millis(50));
    assert_eq!(server.closed.get(CloseReason::IdleTimeout), 1);
    assert_eq!(server.closed.get(CloseReason::HeaderTimeout), 0);
}

#[tokio::test]
async fn a_keep_alive_connection_in_use_is_not_closed() {
    let server = start(router(), limits()).await;
    let mut client = connect(&server).await;
    // Requests spaced by less than the idle timeout, for longer than it: the connection stays.
    for _ in 0..4 {
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 1024];
        let n = client.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        tokio::time::sleep(SHORT / 3).await;
    }
    assert_eq!(server.closed.get(CloseReason::IdleTimeout), 0);
}

fn limited() -> Router {
    body_limit::limit(router(), 1024)
}

/// Sends `head` and then `body` as a client that writes its whole request before it reads its answer (as
/// curl does without `Expect`): how the sending went, and what it then read until the server closed.
///
/// A client like that loses the answer when the server resets the connection under it (it reports "connection
/// reset" on its write, and the 413 is never shown); so the server must let it finish sending, and close
/// cleanly.
async fn request(
    server: &Server,
    head: &str,
    body: &[u8],
) -> (std::io::Result<()>, std::io::Result<String>) {
    let mut client = connect(server).await;
    let write = async {
        client.write_all(head.as_bytes()).await?;
        client.write_all(body).await?;
        client.flush().await
    };
    let sent = tokio::time::timeout(Duration::from_secs(5), write)
        .await
        .expect("the request is sent within 5s");
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut answer))
        .await
        .expect("the server closes within 5s");
    (
        sent,
        read.map(|_| String::from_utf8_lossy(&answer).into_owned()),
    )
}

/// Asserts a clean exchange whose answer starts with `status_line`.
fn assert_answered(
    (sent, answer): (std::io::Result<()>, std::io::Result<String>),
    status_line: &str,
    what: &str,
) -> String {
    assert!(
        sent.is_ok(),
        "{what}: the request could not be sent: {sent:?}"
    );
    let answer = answer.unwrap_or_else(|err| panic!("{what}: the answer was lost: {err}"));
    assert!(answer.starts_with(status_line), "{what}: {answer:?}");
    answer
}

#[tokio::test]
async fn a_body_over_the_limit_always_gets_its_413() {
    let server = start(limited(), ConnectionArgs::default()).await;
    // More than loopback's socket buffers hold: the client is still sending when the server answers, as a
    // real client with a large body is (with 1 MiB the whole body sat in the buffers and the old server passed).
    let body = vec![b'x'; 16 * 1024 * 1024];
    for attempt in 0..20 {
        let head = format!(
            "POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let exchange = request(&server, &head, &body).await;
        assert_answered(exchange, "HTTP/1.1 413", &format!("attempt {attempt}"));
    }
    // Without a length: refused once the body passes the limit, and still heard.
    let mut chunked = format!("{:x}\r\n", body.len()).into_bytes();
    chunked.extend_from_slice(&body);
    chunked.extend_from_slice(b"\r\n0\r\n\r\n");
    for attempt in 0..20 {
        let head = "POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        let exchange = request(&server, head, &chunked).await;
        assert_answered(
            exchange,
            "HTTP/1.1 413",
            &format!("chunked attempt {attempt}"),
        );
    }
    // Within the limit, served as before.
    let exchange = request(
        &server,
        "POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\nConnection: close\r\n\r\n",
        b"small",
    )
    .await;
    let answer = assert_answered(exchange, "HTTP/1.1 200", "within the limit");
    assert!(answer.ends_with("small"), "{answer}");
}

#[tokio::test]
async fn expect_100_continue_with_a_length_over_the_limit_gets_413_not_continue() {
    let server = start(limited(), ConnectionArgs::default()).await;
    let mut client = connect(&server).await;
    client
        .write_all(
            b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1048576\r\nExpect: 100-continue\r\n\r\n",
        )
        .await
        .unwrap();
    let answer = read_until_closed(&mut client, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer:?}");
    assert!(!answer.contains("100 Continue"), "{answer:?}");

    // Within the limit, the client is told to go on.
    let mut client = connect(&server).await;
    client
        .write_all(
            b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
        )
        .await
        .unwrap();
    let mut buf = [0u8; 256];
    let n = client.read(&mut buf).await.unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 100 Continue"),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
}
