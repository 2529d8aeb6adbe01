//! The callback listener: the HTTP server FoneStorm calls while a page runs.
//!
//! A page learns how its calls ended, and that someone acknowledged, only
//! from callbacks (see `docs/pages.md`). This module receives them on three
//! paths ([`PATH_CALLS`], [`PATH_INBOUND`], [`PATH_SMS`]), checks HTTP Basic
//! auth against the [`CallbackSecret`], reads the fields into a
//! [`Callback`], and hands it to a [`CallbackSink`] (the ladder), which
//! records it before it acts. The answer is `200` only once the sink has
//! returned: a callback is never acknowledged to FoneStorm before it is
//! recorded.
//!
//! The listener faces the internet, so everything from outside is bounded:
//! the body ([`MAX_BODY_BYTES`], 413), the header count and size (431), the
//! time to send the headers and the body (a slow client is cut off), each
//! connection's lifetime and the number of connections at once ([`Limits`]).
//! Malformed data gets `400` and reaches no sink. No answer or log line ever
//! holds the password.
//!
//! It runs on the caller's runtime: [`bind`], then [`Listener::serve`] until
//! the [`CancellationToken`] is cancelled, after which it stops accepting,
//! lets requests in progress finish (briefly) and returns.

mod fields;
mod handler;
mod secret;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

pub use secret::{
    CALLBACK_SECRET_ENV, CALLBACK_USER, CallbackSecret, MAX_SECRET_LEN, MIN_SECRET_LEN, SecretError,
};

use crate::model::callback::Callback;

/// Where the `send_notify` callbacks (outbound call `BEGIN`/`END`) arrive.
pub const PATH_CALLS: &str = "/fonestorm/calls";
/// Where the `receive_notify` callbacks (someone called the caller id) arrive.
pub const PATH_INBOUND: &str = "/fonestorm/inbound";
/// Where inbound SMS (`messages/receive`) arrive.
pub const PATH_SMS: &str = "/fonestorm/sms";
/// The largest callback body read; a larger one gets 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// The smallest header buffer hyper allows; also the most header bytes read.
const MIN_HEADER_BYTES: usize = 8 * 1024;
/// How long requests in progress may take to finish once the listener stops.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Pause after a failed `accept` (out of file descriptors), so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The bounds on what clients may send and hold; [`Limits::default`] suits
/// FoneStorm, tests shorten the times.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Time to send a request's headers (also an idle keep-alive connection's wait).
    pub header_timeout: Duration,
    /// Time to send a request's body once its headers arrived.
    pub body_timeout: Duration,
    /// The longest a connection stays open, whatever it does.
    pub connection_timeout: Duration,
    /// Connections served at once; more wait to be accepted.
    pub max_connections: usize,
    /// Headers in one request (431 beyond).
    pub max_headers: usize,
    /// Bytes of the request line and headers (431 beyond; at least 8 KiB).
    pub max_header_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            connection_timeout: Duration::from_secs(60),
            max_connections: 64,
            max_headers: 64,
            max_header_bytes: 16 * 1024,
        }
    }
}

/// Why a sink could not take a callback (the listener answers 503, so the
/// sender knows it was not recorded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkError(pub String);

impl std::fmt::Display for SinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SinkError {}

/// Takes the callbacks the listener received; the ladder is one.
///
/// `receive` must record the callback durably (the journal) before it acts
/// on it, and return `Ok` only once it is recorded. It is called once for
/// every well-formed, authenticated request, duplicates included: whether
/// a callback was seen before is the sink's to decide.
pub trait CallbackSink: Send + Sync + 'static {
    /// Records, then acts on, one callback.
    fn receive(&self, callback: Callback) -> impl Future<Output = Result<(), SinkError>> + Send;
}

/// The sink behind a pointer the router can hold without its type.
type SinkFuture = Pin<Box<dyn Future<Output = Result<(), SinkError>> + Send>>;
type BoxedSink = Arc<dyn Fn(Callback) -> SinkFuture + Send + Sync>;

/// What every request handler needs.
struct App {
    secret: CallbackSecret,
    sink: BoxedSink,
    body_timeout: Duration,
}

/// The peer of a connection, for log lines.
#[derive(Clone, Copy, Debug)]
struct Peer(SocketAddr);

/// A bound, not yet serving, listener.
#[derive(Debug)]
pub struct Listener {
    tcp: TcpListener,
    addr: SocketAddr,
    limits: Limits,
    grace: Duration,
}

/// Binds `addr` (port 0 picks a free port; see [`Listener::local_addr`]).
pub async fn bind(addr: SocketAddr) -> io::Result<Listener> {
    let tcp = TcpListener::bind(addr).await?;
    let addr = tcp.local_addr()?;
    Ok(Listener {
        tcp,
        addr,
        limits: Limits::default(),
        grace: SHUTDOWN_GRACE,
    })
}

impl Listener {
    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Other bounds than [`Limits::default`].
    pub fn with_limits(mut self, limits: Limits) -> Listener {
        self.limits = limits;
        self
    }

    /// How long requests in progress may take to finish once serving stops
    /// (default 5 s); a service with a drain deadline gives its own.
    pub fn with_grace(mut self, grace: Duration) -> Listener {
        self.grace = grace;
        self
    }

    /// Serves callbacks into `sink` until `cancel` is cancelled, then lets
    /// requests in progress finish for a few seconds and returns.
    pub async fn serve<S: CallbackSink>(
        self,
        secret: CallbackSecret,
        sink: Arc<S>,
        cancel: CancellationToken,
    ) {
        let router = callback_router(secret, sink, &self.limits);
        self.serve_router(router, cancel).await;
    }

    /// Serves `router` (which may mount [`callback_router`] beside routes of
    /// its own) with the same bounds on headers, times and connections,
    /// until `cancel` is cancelled; then stops accepting, lets requests in
    /// progress finish within the grace period and returns.
    pub async fn serve_router(self, router: axum::Router, cancel: CancellationToken) {
        let grace = self.grace;
        let limits = Arc::new(self.limits);
        let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
        let mut connections = JoinSet::new();
        tracing::debug!(addr = %self.addr, "listening");
        loop {
            let permit = tokio::select! {
                () = cancel.cancelled() => break,
                permit = slots.clone().acquire_owned() => match permit {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
            let accepted = tokio::select! {
                () = cancel.cancelled() => break,
                accepted = self.tcp.accept() => accepted,
            };
            match accepted {
                Ok((stream, peer)) => {
                    connections.spawn(connection(
                        stream,
                        Peer(peer),
                        router.clone(),
                        limits.clone(),
                        cancel.clone(),
                        permit,
                        grace,
                    ));
                }
                Err(e) => {
                    tracing::warn!("cannot accept a connection: {e}");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            }
            while connections.try_join_next().is_some() {}
        }
        drop(self.tcp);
        let drained = async { while connections.join_next().await.is_some() {} };
        if tokio::time::timeout(grace, drained).await.is_err() {
            tracing::debug!("closing connections still open after the grace period");
        }
        connections.abort_all();
    }
}

/// The three callback paths ([`PATH_CALLS`], [`PATH_INBOUND`], [`PATH_SMS`])
/// as a router: Basic auth against `secret`, bodies within
/// [`MAX_BODY_BYTES`] and `limits.body_timeout`, each callback handed to
/// `sink`. [`Listener::serve`] serves it alone; `callbook serve` mounts it
/// beside its own routes.
pub fn callback_router<S: CallbackSink>(
    secret: CallbackSecret,
    sink: Arc<S>,
    limits: &Limits,
) -> axum::Router {
    let boxed: BoxedSink = Arc::new(move |callback| {
        let sink = sink.clone();
        Box::pin(async move { sink.receive(callback).await })
    });
    let app = Arc::new(App {
        secret,
        sink: boxed,
        body_timeout: limits.body_timeout,
    });
    handler::router(app)
}

/// The peer address of a request served by a [`Listener`], for log lines.
pub fn peer_of<B>(request: &hyper::Request<B>) -> Option<SocketAddr> {
    request.extensions().get::<Peer>().map(|p| p.0)
}

/// Serves one connection: keep-alive, bounded headers and lifetime, and a
/// graceful close when the listener stops.
async fn connection(
    stream: TcpStream,
    peer: Peer,
    router: axum::Router,
    limits: Arc<Limits>,
    cancel: CancellationToken,
    _slot: OwnedSemaphorePermit,
    grace: Duration,
) {
    // Only a latency hint; the connection works without it.
    let _ = stream.set_nodelay(true);
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(peer);
        router.clone().oneshot(request)
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_headers(limits.max_headers)
        .max_header_size(limits.max_header_bytes.max(MIN_HEADER_BYTES))
        .max_buf_size(limits.max_header_bytes.max(MIN_HEADER_BYTES));
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        // A connection error (the client went away, a bad request) ends it;
        // there is nobody to tell.
        _ = conn.as_mut() => return,
        () = cancel.cancelled() => {}
        () = tokio::time::sleep(limits.connection_timeout) => {
            tracing::debug!(peer = %peer.0, "closing a connection open too long");
        }
    }
    conn.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(grace, conn).await;
}
