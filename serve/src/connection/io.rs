//! The connection's byte stream, wrapped: reads are reported to the connection's [`Activity`], and closing
//! lingers.
//!
//! Lingering close (as nginx's `lingering_close`): a server that closes a socket with unread bytes in its
//! receive buffer makes the kernel send a TCP reset, and the reset destroys the response the client has not
//! read yet: a 413 for a body too large was lost that way in two tries out of three. So closing sends our
//! FIN (and TLS close_notify) first, then reads and discards what the client still sends, until it closes
//! too or [`LINGER`] passes.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

use super::activity::Activity;

/// The longest a closing connection keeps reading what the client still sends: time for the client to read
/// our response and stop.
pub(crate) const LINGER: Duration = Duration::from_secs(2);

enum Closing {
    Open,
    Draining(Pin<Box<Sleep>>),
    Closed,
}

/// A stream that reports its reads and lingers on close.
pub(crate) struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
    closing: Closing,
}

impl<S> Tracked<S> {
    pub(crate) fn new(inner: S, activity: Arc<Activity>) -> Self {
        Self {
            inner,
            activity,
            closing: Closing::Open,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        this.activity.read(&buf.filled()[before..]);
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            match &mut this.closing {
                Closing::Open => {
                    // Our side is done either way; a failed shutdown (the peer already gone) ends it here.
                    if ready!(Pin::new(&mut this.inner).poll_shutdown(cx)).is_err() {
                        this.closing = Closing::Closed;
                    } else {
                        this.closing = Closing::Draining(Box::pin(tokio::time::sleep(LINGER)));
                    }
                }
                Closing::Draining(until) => {
                    let mut scratch = [0u8; 4096];
                    let mut buf = ReadBuf::new(&mut scratch);
                    match Pin::new(&mut this.inner).poll_read(cx, &mut buf) {
                        // More of what nobody will read: discard it, and keep reading.
                        Poll::Ready(Ok(())) if !buf.filled().is_empty() => {
                            // The clock, not the timer: a fast sender never lets this task park.
                            if tokio::time::Instant::now() >= until.deadline() {
                                this.closing = Closing::Closed;
                            }
                        }
                        // The client closed too (or broke the connection): nothing left to protect.
                        Poll::Ready(_) => this.closing = Closing::Closed,
                        Poll::Pending => {
                            ready!(until.as_mut().poll(cx));
                            this.closing = Closing::Closed;
                        }
                    }
                }
                Closing::Closed => return Poll::Ready(Ok(())),
            }
        }
    }
}
