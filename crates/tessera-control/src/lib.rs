//! The control socket of a Tessera daemon.
//!
//! One process owns a store (sled and the log allow no other), so while `tessera
//! serve` runs, a `tessera` command typed beside it cannot open the store. Instead it
//! sends what was typed to the daemon over a Unix socket in the data directory
//! (permissions 0600: only the user who runs the node), and the daemon runs it on the
//! store it holds and sends back what the command printed and its exit code.
//!
//! The exchange, each message a frame (4-byte big-endian length, then JSON):
//!
//! ```text
//! daemon -> client  Hello { protocol, pid }          at once, before any work
//! client -> daemon  Request { protocol, args, cwd, locale, passphrase?, operator? }
//! daemon -> client  Working                          every WORKING_EVERY while it runs
//! daemon -> client  Done { stdout, stderr, code }    or Refused { reason }
//! ```
//!
//! `Hello` and `Working` let the client tell a busy daemon from a stuck one: no frame
//! for [`SILENCE_MAX`] and it gives up with [`ControlError::NotAnswering`]. Frames are
//! bounded ([`REQUEST_MAX`], [`REPLY_MAX`]); a longer one is an error, not an
//! allocation. This crate knows nothing of the commands themselves.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

#[cfg(unix)]
pub mod server;

/// Version of the exchange; a daemon refuses a client of another version.
pub const PROTOCOL: u32 = 1;
/// Largest request: what was typed, the directory and the locale.
pub const REQUEST_MAX: usize = 1 << 20;
/// Largest reply: a command's whole output (a long `audit log`, a report as CSV).
pub const REPLY_MAX: usize = 256 << 20;
/// How often a daemon says it is still working on a request.
pub const WORKING_EVERY: Duration = Duration::from_secs(2);
/// How long a client waits for any frame before it calls the daemon stuck.
pub const SILENCE_MAX: Duration = Duration::from_secs(20);

/// What a client asks: run this command line as if typed in `cwd`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub protocol: u32,
    /// The arguments after the program's name.
    pub args: Vec<String>,
    /// The client's working directory: relative paths in `args` are relative to it.
    pub cwd: PathBuf,
    /// The client's locale (`$LC_ALL`, else `$LANG`): the language of the answer.
    pub locale: String,
    /// The passphrase of a key file the command reads, asked by the client of its
    /// operator (the daemon has no terminal). Never printed: see `Debug`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passphrase: Option<String>,
    /// Who is working at the client (`$TESSERA_OPERATOR` there): recorded with the
    /// changes the command makes. A staff member's name: hidden from `Debug` too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("protocol", &self.protocol)
            .field("args", &self.args)
            .field("cwd", &self.cwd)
            .field("locale", &self.locale)
            .field("passphrase", &self.passphrase.as_ref().map(|_| "(hidden)"))
            .field("operator", &self.operator.as_ref().map(|_| "(hidden)"))
            .finish()
    }
}

/// What a command printed and how it ended.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Done {
    pub stdout: String,
    pub stderr: String,
    pub code: u8,
}

/// A message from the daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    Hello {
        protocol: u32,
        pid: u32,
    },
    Working,
    Done(Done),
    /// The daemon would not run the request (another protocol, too many at once).
    Refused {
        reason: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("the daemon on {socket} did not answer for {seconds} s")]
    NotAnswering { socket: PathBuf, seconds: u64 },
    #[error("the daemon on {socket} refused the request: {reason}")]
    Refused { socket: PathBuf, reason: String },
    #[error("the daemon on {socket} closed the connection before answering")]
    Closed { socket: PathBuf },
    #[error("a message of {len} bytes is larger than the limit of {max}")]
    TooLarge { len: usize, max: usize },
    #[error("a message from the control socket is not valid: {0}")]
    Malformed(#[from] serde_json::Error),
    #[error("the daemon on {socket} speaks version {theirs} of the control protocol, this program {ours}: use the same version of Tessera for both")]
    Version { socket: PathBuf, theirs: u32, ours: u32 },
    #[error("cannot talk to the daemon on {socket}")]
    Io {
        socket: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One frame: its length, then its JSON.
pub fn encode<T: Serialize>(message: &T) -> Result<Vec<u8>, ControlError> {
    let json = serde_json::to_vec(message)?;
    let len =
        u32::try_from(json.len()).map_err(|_| ControlError::TooLarge { len: json.len(), max: REPLY_MAX })?;
    let mut frame = Vec::with_capacity(4 + json.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&json);
    Ok(frame)
}

/// The length a frame header announces, refused above `max` before anything is read.
pub fn frame_len(header: [u8; 4], max: usize) -> Result<usize, ControlError> {
    let len = u32::from_be_bytes(header) as usize;
    if len > max {
        return Err(ControlError::TooLarge { len, max });
    }
    Ok(len)
}

pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, ControlError> {
    Ok(serde_json::from_slice(body)?)
}

/// Reads one frame of at most `max` bytes (blocking).
fn read_frame<T: DeserializeOwned>(
    reader: &mut impl Read,
    max: usize,
) -> std::io::Result<Result<T, ControlError>> {
    let mut header = [0u8; 4];
    reader.read_exact(&mut header)?;
    let len = match frame_len(header, max) {
        Ok(len) => len,
        Err(e) => return Ok(Err(e)),
    };
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body)?;
    Ok(decode(&body))
}

/// A connection to a daemon that has said hello.
#[cfg(unix)]
#[derive(Debug)]
pub struct Client {
    stream: std::os::unix::net::UnixStream,
    socket: PathBuf,
    silence_max: Duration,
    pub pid: u32,
}

#[cfg(unix)]
impl Client {
    /// Connects to the daemon on `socket`. `Ok(None)` when none runs there: no socket
    /// file, or one left by a daemon that died (nobody accepts on it).
    pub fn connect(socket: &Path) -> Result<Option<Client>, ControlError> {
        Client::connect_within(socket, SILENCE_MAX)
    }

    /// [`Client::connect`] with another wait for the hello (tests).
    pub fn connect_within(socket: &Path, silence_max: Duration) -> Result<Option<Client>, ControlError> {
        use std::io::ErrorKind;
        let io = |source| ControlError::Io { socket: socket.to_path_buf(), source };
        let stream = match std::os::unix::net::UnixStream::connect(socket) {
            Ok(stream) => stream,
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::ConnectionRefused) => {
                return Ok(None)
            }
            Err(e) => return Err(io(e)),
        };
        stream.set_read_timeout(Some(silence_max)).map_err(io)?;
        let mut client = Client { stream, socket: socket.to_path_buf(), silence_max, pid: 0 };
        match client.next_reply(silence_max)? {
            Reply::Hello { protocol, pid } if protocol == PROTOCOL => {
                client.pid = pid;
                Ok(Some(client))
            }
            Reply::Hello { protocol, .. } => {
                Err(ControlError::Version { socket: socket.to_path_buf(), theirs: protocol, ours: PROTOCOL })
            }
            Reply::Refused { reason } => Err(ControlError::Refused { socket: socket.to_path_buf(), reason }),
            other => Err(ControlError::Malformed(serde::de::Error::custom(format!(
                "expected a hello, got {other:?}"
            )))),
        }
    }

    /// How long [`Client::call`] waits for a frame (default [`SILENCE_MAX`]).
    pub fn with_silence(mut self, silence_max: Duration) -> Client {
        self.silence_max = silence_max;
        self
    }

    /// Sends the request and waits for its answer, however long the command takes, as
    /// long as the daemon keeps saying it is working.
    pub fn call(mut self, request: &Request) -> Result<Done, ControlError> {
        let frame = encode(request)?;
        if frame.len() > REQUEST_MAX + 4 {
            return Err(ControlError::TooLarge { len: frame.len() - 4, max: REQUEST_MAX });
        }
        self.stream
            .write_all(&frame)
            .map_err(|source| ControlError::Io { socket: self.socket.clone(), source })?;
        loop {
            self.stream
                .set_read_timeout(Some(self.silence_max))
                .map_err(|source| ControlError::Io { socket: self.socket.clone(), source })?;
            match self.next_reply(self.silence_max)? {
                Reply::Working => continue,
                Reply::Done(done) => return Ok(done),
                Reply::Refused { reason } => {
                    return Err(ControlError::Refused { socket: self.socket, reason })
                }
                Reply::Hello { .. } => {
                    return Err(ControlError::Malformed(serde::de::Error::custom("a second hello")));
                }
            }
        }
    }

    fn next_reply(&mut self, silence_max: Duration) -> Result<Reply, ControlError> {
        use std::io::ErrorKind;
        match read_frame(&mut self.stream, REPLY_MAX) {
            Ok(reply) => reply,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                Err(ControlError::NotAnswering {
                    socket: self.socket.clone(),
                    seconds: silence_max.as_secs(),
                })
            }
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => {
                Err(ControlError::Closed { socket: self.socket.clone() })
            }
            Err(source) => Err(ControlError::Io { socket: self.socket.clone(), source }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_is_its_length_then_its_json() {
        let done = Reply::Done(Done { stdout: "ok\n".into(), stderr: String::new(), code: 2 });
        let frame = encode(&done).unwrap();
        let len = frame_len(frame[..4].try_into().unwrap(), REPLY_MAX).unwrap();
        assert_eq!(len, frame.len() - 4);
        assert_eq!(decode::<Reply>(&frame[4..]).unwrap(), done);
    }

    #[test]
    fn a_length_over_the_limit_is_refused_before_reading() {
        let header = (REQUEST_MAX as u32 + 1).to_be_bytes();
        assert!(matches!(frame_len(header, REQUEST_MAX), Err(ControlError::TooLarge { .. })));
        assert!(matches!(frame_len(u32::MAX.to_be_bytes(), REPLY_MAX), Err(ControlError::TooLarge { .. })));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bytes in [&b""[..], b"{", b"\xff\xfe", b"{\"Done\":{\"code\":999}}", b"[1,2,3]"] {
            assert!(decode::<Reply>(bytes).is_err(), "{bytes:?}");
            assert!(decode::<Request>(bytes).is_err(), "{bytes:?}");
        }
    }

    #[test]
    fn no_daemon_is_none() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Client::connect(&dir.path().join("absent.sock")).unwrap().is_none());
        // A socket file nobody accepts on: what a killed daemon leaves.
        let path = dir.path().join("stale.sock");
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        assert!(Client::connect(&path).unwrap().is_none());
    }
}
