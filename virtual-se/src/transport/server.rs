//! The blocking vpcd socket loop (the only I/O in the crate besides [`FsMedium`]).
//!
//! One [`Server`] serves one card on one vpcd slot, in a thread of its own:
//!
//! - [`Endpoint::Listen`] — reverse mode: the card listens (on loopback) and pcscd's vpcd
//!   driver connects to it. pcscd is configured with a reader whose `DEVICENAME` is
//!   `HOST:PORT` (vsmartcard `ifd-vpcd.c`: any host other than `/dev/null` makes vpcd connect);
//!   vpcd opens slot *n* on `PORT + n`.
//! - [`Endpoint::Connect`] — vpcd's default mode: vpcd listens (slot 0 on 35963, slot 1 on
//!   35964) and the card connects, reconnecting whenever the connection drops.
//!
//! [`FsMedium`]: crate::store::FsMedium

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use super::frame::{Control, FrameDecoder, Request, encode_frame};
use super::{TransportError, VirtualCard};

/// vpcd's default port for slot 0 in its default (listening) mode (vsmartcard `vpcd.h`,
/// `VPCDPORT` 35963 = `0x8C7B`).
pub const VPCD_DEFAULT_PORT: u16 = 0x8C7B;

/// Where the card meets vpcd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// Listen on this address; vpcd connects (reverse mode).
    Listen(SocketAddr),
    /// Connect to vpcd listening at `host:port`.
    Connect(String),
}

impl Endpoint {
    /// The same kind of endpoint `n` ports further (slot `n` of the same vpcd reader).
    ///
    /// # Errors
    /// [`TransportError::Address`] when the port would overflow or the address has no port.
    pub fn slot(&self, n: u16) -> Result<Self, TransportError> {
        match self {
            Self::Listen(addr) => {
                let port = addr
                    .port()
                    .checked_add(n)
                    .ok_or_else(|| TransportError::Address(addr.to_string()))?;
                Ok(Self::Listen(SocketAddr::new(addr.ip(), port)))
            }
            Self::Connect(host_port) => {
                let (host, port) = host_port
                    .rsplit_once(':')
                    .ok_or_else(|| TransportError::Address(host_port.clone()))?;
                let port: u16 = port
                    .parse()
                    .map_err(|_| TransportError::Address(host_port.clone()))?;
                let port = port
                    .checked_add(n)
                    .ok_or_else(|| TransportError::Address(host_port.clone()))?;
                Ok(Self::Connect(format!("{host}:{port}")))
            }
        }
    }
}

/// "Response lost after commit" fault injection: the response to the `committed_apdu`-th
/// APDU (0-based, counting only APDUs after which [`VirtualCard::last_apdu_committed`] is true)
/// is never sent; instead the card is powered off and the connection dropped, as when a card
/// leaves the field right after writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseLoss {
    /// Which committing APDU loses its response.
    pub committed_apdu: u64,
}

/// What the server reports while it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// Listening (reverse mode) on this address.
    Listening(SocketAddr),
    /// vpcd connected / the card connected to vpcd.
    Connected(SocketAddr),
    /// The connection ended (the card was powered off).
    Disconnected,
    /// A control code was handled.
    Control(Control),
    /// An APDU was answered (lengths and status word only: APDUs may carry secrets).
    Apdu {
        /// Command length.
        command_len: usize,
        /// Response length including the status word.
        response_len: usize,
        /// The status word.
        sw: u16,
    },
    /// The response to a committed APDU was dropped ([`ResponseLoss`]).
    ResponseLost,
    /// A frame that is not valid vpcd framing was ignored.
    BadFrame(String),
    /// Connecting to vpcd failed; retrying.
    ConnectFailed(String),
    /// A connection failed (the server keeps going: vpcd reconnects).
    ConnectionError(String),
}

impl core::fmt::Display for Event {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Listening(a) => write!(f, "listening on {a}"),
            Self::Connected(a) => write!(f, "connected to {a}"),
            Self::Disconnected => write!(f, "disconnected"),
            Self::Control(c) => write!(f, "control {c:?}"),
            Self::Apdu {
                command_len,
                response_len,
                sw,
            } => {
                write!(
                    f,
                    "APDU {command_len} bytes -> {response_len} bytes, SW {sw:04X}"
                )
            }
            Self::ResponseLost => write!(f, "response lost after commit (injected)"),
            Self::BadFrame(e) => write!(f, "bad frame ignored: {e}"),
            Self::ConnectFailed(e) => write!(f, "connect failed: {e}"),
            Self::ConnectionError(e) => write!(f, "connection error: {e}"),
        }
    }
}

/// Callback receiving [`Event`]s.
pub type EventSink = Arc<dyn Fn(&Event) + Send + Sync>;

/// Options of a [`Server`].
#[derive(Clone)]
pub struct ServeOptions {
    /// How often a blocked server checks for shutdown.
    pub poll_interval: Duration,
    /// Delay between connection attempts in [`Endpoint::Connect`] mode.
    pub reconnect_delay: Duration,
    /// Optional fault injection.
    pub response_loss: Option<ResponseLoss>,
    /// Optional event callback.
    pub events: Option<EventSink>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_millis(100),
            reconnect_delay: Duration::from_millis(500),
            response_loss: None,
            events: None,
        }
    }
}

impl core::fmt::Debug for ServeOptions {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ServeOptions")
            .field("poll_interval", &self.poll_interval)
            .field("reconnect_delay", &self.reconnect_delay)
            .field("response_loss", &self.response_loss)
            .field("events", &self.events.is_some())
            .finish()
    }
}

impl ServeOptions {
    fn emit(&self, event: &Event) {
        if let Some(sink) = &self.events {
            sink(event);
        }
    }
}

/// Asks running servers to stop (cheap to clone; share one among the slots of a process).
#[derive(Debug, Clone, Default)]
pub struct ShutdownHandle(Arc<AtomicBool>);

impl ShutdownHandle {
    /// A handle that has not been triggered.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Ask every server holding this handle to stop.
    pub fn shutdown(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether shutdown was asked.
    #[must_use]
    pub fn is_shutdown(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// How one connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionEnd {
    /// The peer closed the connection.
    Closed,
    /// Shutdown was asked.
    Shutdown,
    /// A response was dropped on purpose ([`ResponseLoss`]).
    ResponseLost,
}

/// Per-server counters that outlive single connections.
#[derive(Debug, Default)]
pub struct SessionState {
    decoder: FrameDecoder,
    committed_apdus: u64,
}

impl SessionState {
    /// Fresh state.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of APDUs answered so far that committed persistent changes.
    #[must_use]
    pub fn committed_apdus(&self) -> u64 {
        self.committed_apdus
    }
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> TransportError {
    let what = what.into();
    move |source| TransportError::Io { what, source }
}

fn write_frame(stream: &mut impl Write, payload: &[u8]) -> Result<(), TransportError> {
    let frame = match encode_frame(payload) {
        Ok(frame) => frame,
        // A response that no vpcd frame can carry: answer 6F00 (ISO 7816-4 §5.6,
        // "no precise diagnosis") rather than desynchronising the stream.
        Err(_) => encode_frame(&[0x6F, 0x00])?,
    };
    stream.write_all(&frame).map_err(io("sending to vpcd"))?;
    stream.flush().map_err(io("sending to vpcd"))
}

/// Serve one established connection until it closes, shutdown is asked, or a response is
/// dropped on purpose. The card is powered off when the connection ends (vpcd treats a lost
/// connection as card removal).
///
/// `stream` should have a read timeout (so shutdown is noticed); `WouldBlock`/`TimedOut` reads
/// are retried.
///
/// # Errors
/// [`TransportError::Io`] when the socket fails.
pub fn serve_connection<S: Read + Write>(
    stream: &mut S,
    card: &mut dyn VirtualCard,
    session: &mut SessionState,
    options: &ServeOptions,
    shutdown: &ShutdownHandle,
) -> Result<ConnectionEnd, TransportError> {
    session.decoder = FrameDecoder::new();
    let mut buf = vec![0u8; 4096];
    let end = loop {
        while let Some(request) = session.decoder.next_request() {
            match request {
                Ok(Request::Control(control)) => {
                    options.emit(&Event::Control(control));
                    match control {
                        Control::PowerOff => card.power_off(),
                        Control::PowerOn => card.power_on(),
                        Control::Reset => card.reset(),
                        Control::Atr => write_frame(stream, &card.atr())?,
                    }
                }
                Ok(Request::Apdu(apdu)) => {
                    let response = card.transmit(&apdu);
                    if card.last_apdu_committed() {
                        let index = session.committed_apdus;
                        session.committed_apdus = session.committed_apdus.saturating_add(1);
                        if options
                            .response_loss
                            .is_some_and(|l| l.committed_apdu == index)
                        {
                            options.emit(&Event::ResponseLost);
                            card.power_off();
                            return Ok(ConnectionEnd::ResponseLost);
                        }
                    }
                    let sw = match response.as_slice() {
                        [.., sw1, sw2] => u16::from_be_bytes([*sw1, *sw2]),
                        _ => 0,
                    };
                    options.emit(&Event::Apdu {
                        command_len: apdu.len(),
                        response_len: response.len(),
                        sw,
                    });
                    write_frame(stream, &response)?;
                }
                Err(e) => options.emit(&Event::BadFrame(e.to_string())),
            }
        }
        if shutdown.is_shutdown() {
            break ConnectionEnd::Shutdown;
        }
        match stream.read(&mut buf) {
            Ok(0) => break ConnectionEnd::Closed,
            Ok(n) => session.decoder.push(buf.get(..n).unwrap_or_default()),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break ConnectionEnd::Closed,
            Err(e) => {
                card.power_off();
                return Err(io("receiving from vpcd")(e));
            }
        }
    };
    card.power_off();
    Ok(end)
}

/// A card served on one vpcd slot by a thread of its own.
pub struct Server {
    thread: JoinHandle<(Box<dyn VirtualCard>, Result<(), TransportError>)>,
    local_addr: Option<SocketAddr>,
    shutdown: ShutdownHandle,
}

impl core::fmt::Debug for Server {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.local_addr)
            .field("shutdown", &self.shutdown.is_shutdown())
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Start serving `card` at `endpoint`. In [`Endpoint::Listen`] mode the socket is bound
    /// before this returns (so "address in use" is reported here).
    ///
    /// # Errors
    /// [`TransportError::Io`] when the listener cannot be bound or the thread not started.
    pub fn spawn(
        endpoint: Endpoint,
        card: Box<dyn VirtualCard>,
        options: ServeOptions,
        shutdown: ShutdownHandle,
    ) -> Result<Self, TransportError> {
        let (listener, local_addr) = match &endpoint {
            Endpoint::Listen(addr) => {
                let listener = TcpListener::bind(addr).map_err(io(format!("binding {addr}")))?;
                listener
                    .set_nonblocking(true)
                    .map_err(io("configuring the listener"))?;
                let local = listener
                    .local_addr()
                    .map_err(io("reading the bound address"))?;
                options.emit(&Event::Listening(local));
                (Some(listener), Some(local))
            }
            Endpoint::Connect(_) => (None, None),
        };
        let stop = shutdown.clone();
        let thread = std::thread::Builder::new()
            .name(format!("vpcd {endpoint:?}"))
            .spawn(move || {
                let mut card = card;
                let result = match listener {
                    Some(listener) => run_listen(&listener, card.as_mut(), &options, &stop),
                    None => match &endpoint {
                        Endpoint::Connect(target) => {
                            run_connect(target, card.as_mut(), &options, &stop)
                        }
                        Endpoint::Listen(_) => Ok(()),
                    },
                };
                (card, result)
            })
            .map_err(io("starting the server thread"))?;
        Ok(Self {
            thread,
            local_addr,
            shutdown,
        })
    }

    /// The bound address in [`Endpoint::Listen`] mode (useful with port 0).
    #[must_use]
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// The handle that stops this server.
    #[must_use]
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.shutdown.clone()
    }

    /// Whether the server thread has ended.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }

    /// Wait for the server to stop (after [`ShutdownHandle::shutdown`]), then call
    /// [`VirtualCard::shutdown`] and hand the card back.
    ///
    /// # Errors
    /// The transport error that ended the server, or the card's flush error.
    pub fn wait(self) -> Result<Box<dyn VirtualCard>, crate::Error> {
        let (mut card, result) = self.thread.join().map_err(|_| TransportError::Io {
            what: "server thread".to_owned(),
            source: std::io::Error::other("server thread panicked"),
        })?;
        let flushed = card.shutdown();
        result?;
        flushed?;
        Ok(card)
    }
}

fn configure(stream: &TcpStream, options: &ServeOptions) -> Result<(), TransportError> {
    stream
        .set_nonblocking(false)
        .map_err(io("configuring the connection"))?;
    stream
        .set_read_timeout(Some(options.poll_interval))
        .map_err(io("configuring the connection"))?;
    stream
        .set_write_timeout(Some(Duration::from_secs(10)))
        .map_err(io("configuring the connection"))?;
    // Single small frames both ways: do not wait for more data before sending.
    stream
        .set_nodelay(true)
        .map_err(io("configuring the connection"))
}

fn run_listen(
    listener: &TcpListener,
    card: &mut dyn VirtualCard,
    options: &ServeOptions,
    shutdown: &ShutdownHandle,
) -> Result<(), TransportError> {
    let mut session = SessionState::new();
    while !shutdown.is_shutdown() {
        match listener.accept() {
            Ok((mut stream, peer)) => {
                configure(&stream, options)?;
                options.emit(&Event::Connected(peer));
                let end = serve_connection(&mut stream, card, &mut session, options, shutdown);
                options.emit(&Event::Disconnected);
                if let Err(e) = end {
                    // One broken connection does not end the server: vpcd reconnects.
                    options.emit(&Event::ConnectionError(e.to_string()));
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {
                std::thread::sleep(options.poll_interval.min(Duration::from_millis(50)));
            }
            Err(e) => return Err(io("accepting a vpcd connection")(e)),
        }
    }
    Ok(())
}

fn run_connect(
    target: &str,
    card: &mut dyn VirtualCard,
    options: &ServeOptions,
    shutdown: &ShutdownHandle,
) -> Result<(), TransportError> {
    let mut session = SessionState::new();
    while !shutdown.is_shutdown() {
        let addrs: Vec<SocketAddr> = match target.to_socket_addrs() {
            Ok(addrs) => addrs.collect(),
            Err(_) => return Err(TransportError::Address(target.to_owned())),
        };
        let connected = addrs.iter().find_map(|a| {
            TcpStream::connect_timeout(a, Duration::from_secs(2))
                .ok()
                .map(|s| (s, *a))
        });
        match connected {
            Some((mut stream, peer)) => {
                configure(&stream, options)?;
                options.emit(&Event::Connected(peer));
                let end = serve_connection(&mut stream, card, &mut session, options, shutdown);
                options.emit(&Event::Disconnected);
                if let Err(e) = end {
                    options.emit(&Event::ConnectionError(e.to_string()));
                }
                // Do not spin if vpcd accepts and drops connections at once.
                sleep_unless_shutdown(options.poll_interval, options.poll_interval, shutdown);
            }
            None => {
                options.emit(&Event::ConnectFailed(target.to_owned()));
                sleep_unless_shutdown(options.reconnect_delay, options.poll_interval, shutdown);
            }
        }
    }
    Ok(())
}

fn sleep_unless_shutdown(total: Duration, step: Duration, shutdown: &ShutdownHandle) {
    let mut left = total;
    let step = step.max(Duration::from_millis(1));
    while !left.is_zero() && !shutdown.is_shutdown() {
        let nap = left.min(step);
        std::thread::sleep(nap);
        left = left.saturating_sub(nap);
    }
}
