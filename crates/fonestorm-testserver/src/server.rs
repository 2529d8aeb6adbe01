//! Running the server: an accept loop that serves each connection with hyper and
//! can drop one on purpose, and [`TestServer`], which runs that loop on a thread of
//! its own so that synchronous tests can use it.

use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::ops::Deref;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tower::ServiceExt;

use crate::api::{self, ConnControl};
use crate::config::Config;
use crate::handle::Handle;
use crate::state::Shared;

/// How long to wait before accepting again after `accept` failed (e.g. out of
/// file descriptors), so that the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

/// Serves the API on `listener` inside the caller's tokio runtime.
///
/// Returns the handle and the future that serves; the future ends after
/// [`Handle::shutdown`], and dropping it stops the server too. Either way every
/// open connection is dropped, hung requests included.
pub fn serve(
    listener: TcpListener,
    config: Config,
) -> io::Result<(Handle, impl Future<Output = ()> + Send + 'static)> {
    let shared = Arc::new(Shared::new(config, listener.local_addr()?)?);
    // Known at once, so that a `Handle` can deliver simulated callbacks before
    // the serving future first runs; the accept loop sets it otherwise.
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        shared.set_runtime(runtime);
    }
    let handle = Handle {
        shared: shared.clone(),
    };
    Ok((handle, accept_loop(listener, shared)))
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    shared.set_runtime(tokio::runtime::Handle::current());
    let router = api::router(shared.clone());
    // Owning the connection tasks means dropping this future aborts them all.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    connections.spawn(serve_connection(stream, router.clone()));
                }
                Err(_) => tokio::time::sleep(ACCEPT_BACKOFF).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            () = shared.stopped() => break,
        }
    }
}

/// Serves one connection until the client closes it or a handler asks for it to
/// be dropped.
async fn serve_connection(stream: TcpStream, router: Router) {
    // Only a latency hint; the connection works without it.
    let _ = stream.set_nodelay(true);
    let kill = Arc::new(Notify::new());
    let control = ConnControl(kill.clone());
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(control.clone());
        router.clone().oneshot(request)
    });
    let connection =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        // A connection error (client went away, bad request line) ends it; there
        // is nobody to tell.
        _ = connection => {}
        () = kill.notified() => {}
    }
}

/// A server on `127.0.0.1` with a port the OS chose, running on a background
/// thread with its own tokio runtime, so that synchronous tests (which spawn the
/// callbook binary with `std::process`) and async tests alike can use it.
///
/// Dereferences to its [`Handle`] for the record and the knobs. Dropping it stops
/// the server and joins its thread.
#[derive(Debug)]
pub struct TestServer {
    handle: Handle,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Starts a server with this configuration.
    pub fn start(config: Config) -> io::Result<TestServer> {
        Self::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), config)
    }

    /// Starts a server on a given address, e.g. a fixed port.
    pub fn start_on(addr: SocketAddr, config: Config) -> io::Result<TestServer> {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("fonestorm-testserver")
            .enable_all()
            .build()?;
        let (handle, serving) = {
            let _context = runtime.enter();
            serve(TcpListener::from_std(listener)?, config)?
        };
        let thread = std::thread::Builder::new()
            .name("fonestorm-testserver".to_owned())
            .spawn(move || {
                runtime.block_on(serving);
                runtime.shutdown_timeout(Duration::from_secs(1));
            })?;
        Ok(TestServer {
            handle,
            thread: Some(thread),
        })
    }

    /// The handle, e.g. to hand a clone to another thread.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }
}

impl Deref for TestServer {
    type Target = Handle;

    fn deref(&self) -> &Handle {
        &self.handle
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.handle.shutdown();
        if let Some(thread) = self.thread.take() {
            // A panic on the server thread has already been reported there.
            let _ = thread.join();
        }
    }
}
