//! The connection's byte stream, wrapped: reads are reported to the connection's [`Activity`], and closing
//! lingers.
//!
//! Lingering close (as nginx's `lingering_close`): a server that closes a socket with unread bytes in its
//! receive buffer makes the kernel send a TCP reset, and the reset destroys the response the client has not
//! read yet: a 413 for a body too large was lost that way in two tries out of three. So closing sends our
//! FIN (and TLS close_notify) first, then reads and discards what the client still sends, until it closes
//! too or [`LINGER`] passes.
//!
//! The lingering happens after hyper has let go of the stream, not inside its shutdown: hyper tells why a
//! connection ended (an unanswered h2 PING) only when its connection future returns, and a linger inside
//! that future kept the answer, and the count of the close, waiting for up to [`LINGER`].

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, ReadBuf};
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::activity::Activity;

/// The longest a closing connection keeps reading what the client still sends: time for the client to read
/// our response and stop.
pub(crate) const LINGER: Duration = Duration::from_secs(2);

/// A stream that reports its reads and, once hyper has shut it down and dropped it, hands it over to be
/// lingered on.
pub(crate) struct Tracked<S> {
    /// Always `Some` until the drop hands it over.
    inner: Option<S>,
    activity: Arc<Activity>,
    /// Where the stream goes when dropped, if it was shut down.
    handover: Option<oneshot::Sender<S>>,
    shut_down: bool,
}

/// The receiving end of a [`Tracked`] stream's handover: the stream, if hyper shut it down.
pub(crate) type Handover<S> = oneshot::Receiver<S>;

impl<S> Tracked<S> {
    pub(crate) fn new(inner: S, activity: Arc<Activity>) -> (Self, Handover<S>) {
        let (sender, receiver) = oneshot::channel();
        let tracked = Self {
            inner: Some(inner),
            activity,
            handover: Some(sender),
            shut_down: false,
        };
        (tracked, receiver)
    }

    fn inner(&mut self) -> io::Result<&mut S> {
        self.inner
            .as_mut()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))
    }
}

impl<S> Drop for Tracked<S> {
    fn drop(&mut self) {
        // Only a stream hyper closed politely lingers; one dropped mid-request (a timeout) is cut at once.
        if !self.shut_down {
            return;
        }
        if let (Some(sender), Some(inner)) = (self.handover.take(), self.inner.take()) {
            let _ = sender.send(inner);
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
        ready!(Pin::new(this.inner()?).poll_read(cx, buf))?;
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
        Pin::new(self.get_mut().inner()?).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(self.get_mut().inner()?).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.as_ref().is_some_and(S::is_write_vectored)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.get_mut().inner()?).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // Our side is done either way; a failed shutdown (the peer already gone) leaves nothing to linger on.
        this.shut_down = ready!(Pin::new(this.inner()?).poll_shutdown(cx)).is_ok();
        Poll::Ready(Ok(()))
    }
}

/// Reads and discards what the client still sends on a `stream` we shut down, until it closes too, the
/// connection breaks, or [`LINGER`] passes.
pub(crate) async fn linger<S: AsyncRead + Unpin>(mut stream: S) {
    let until = Instant::now() + LINGER;
    let mut scratch = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(until, stream.read(&mut scratch)).await {
            // More of what nobody will read: discard it and keep reading, but by the clock, not the timer,
            // since a fast sender never lets the timeout fire.
            Ok(Ok(n)) if n > 0 && Instant::now() < until => {}
            // The client closed too, broke the connection, or took too long: nothing left to protect.
            _ => return,
        }
    }
}
