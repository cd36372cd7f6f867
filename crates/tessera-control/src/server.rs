//! The daemon's side: the socket (0600, a stale one from a killed daemon replaced,
//! a live one never), and one exchange per connection.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use crate::{
    decode, encode, frame_len, ControlError, Done, Reply, Request, PROTOCOL, REQUEST_MAX, WORKING_EVERY,
};

/// How long a client has to send its request once connected.
const REQUEST_WITHIN: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("another daemon already answers on {0}")]
    InUse(PathBuf),
    #[error("cannot open the control socket {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The listening socket; the file is removed when it is dropped.
#[derive(Debug)]
pub struct Listener {
    inner: tokio::net::UnixListener,
    path: PathBuf,
}

impl Listener {
    /// Listens on `path`, readable and writable by this user only. A socket file left
    /// by a daemon that died is replaced; one a live daemon answers on is not.
    pub fn bind(path: &Path) -> Result<Listener, BindError> {
        use std::os::unix::fs::PermissionsExt;
        let io = |source| BindError::Io { path: path.to_path_buf(), source };
        if path.exists() {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(BindError::InUse(path.to_path_buf()));
            }
            std::fs::remove_file(path).map_err(io)?;
        }
        let inner = tokio::net::UnixListener::bind(path).map_err(io)?;
        let listener = Listener { inner, path: path.to_path_buf() };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        Ok(listener)
    }

    pub async fn accept(&self) -> std::io::Result<UnixStream> {
        Ok(self.inner.accept().await?.0)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

async fn send(stream: &mut UnixStream, reply: &Reply) -> Result<(), ControlError> {
    let frame = encode(reply)?;
    let io = |source| ControlError::Io { socket: PathBuf::new(), source };
    stream.write_all(&frame).await.map_err(io)?;
    stream.flush().await.map_err(io)
}

/// Says no to a connection (too many at once, shutting down).
pub async fn refuse(mut stream: UnixStream, reason: String) {
    let _ = send(&mut stream, &Reply::Refused { reason }).await;
}

/// One exchange: hello, the request, `Working` while `handler` runs, then its answer.
/// A client that goes away does not stop the handler: a command once started
/// finishes (its writes are durable either way), only its output is lost.
pub async fn answer<F, Fut>(mut stream: UnixStream, handler: F) -> Result<(), ControlError>
where
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = Done>,
{
    send(&mut stream, &Reply::Hello { protocol: PROTOCOL, pid: std::process::id() }).await?;
    let request = match tokio::time::timeout(REQUEST_WITHIN, read_request(&mut stream)).await {
        Ok(request) => request?,
        Err(_) => {
            return Err(ControlError::NotAnswering {
                socket: PathBuf::new(),
                seconds: REQUEST_WITHIN.as_secs(),
            });
        }
    };
    if request.protocol != PROTOCOL {
        let reason = format!("control protocol {} asked, {PROTOCOL} spoken", request.protocol);
        send(&mut stream, &Reply::Refused { reason }).await?;
        return Ok(());
    }
    let work = handler(request);
    tokio::pin!(work);
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + WORKING_EVERY, WORKING_EVERY);
    let mut client_gone = false;
    let done = loop {
        tokio::select! {
            done = &mut work => break done,
            _ = ticks.tick(), if !client_gone => {
                client_gone = send(&mut stream, &Reply::Working).await.is_err();
            }
        }
    };
    if client_gone {
        return Ok(());
    }
    send(&mut stream, &Reply::Done(done)).await
}

async fn read_request(stream: &mut UnixStream) -> Result<Request, ControlError> {
    let io = |source| ControlError::Io { socket: PathBuf::new(), source };
    let mut header = [0u8; 4];
    stream.read_exact(&mut header).await.map_err(io)?;
    let len = frame_len(header, REQUEST_MAX)?;
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).await.map_err(io)?;
    decode(&body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Client;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
    }

    fn request(args: &[&str]) -> Request {
        Request {
            protocol: PROTOCOL,
            args: args.iter().map(|a| a.to_string()).collect(),
            cwd: "/".into(),
            locale: "it_IT.UTF-8".into(),
            passphrase: Some("frase segreta di prova".into()),
            operator: Some("Operatrice Prova".into()),
        }
    }

    #[test]
    fn a_request_is_answered_with_the_handlers_output_even_after_a_long_wait() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control.sock");
        let rt = runtime();
        let listener = rt.block_on(async { Listener::bind(&path) }).unwrap();
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        rt.spawn(async move {
            let stream = listener.accept().await.unwrap();
            answer(stream, |request| async move {
                // Longer than WORKING_EVERY: the client sees Working frames first.
                tokio::time::sleep(WORKING_EVERY + Duration::from_millis(500)).await;
                Done { stdout: request.args.join(" "), stderr: request.locale, code: 3 }
            })
            .await
            .unwrap();
            drop(listener);
        });
        let client = Client::connect(&path).unwrap().expect("a daemon answers");
        assert_eq!(client.pid, std::process::id());
        let asked = request(&["status", "--lang", "it"]);
        assert!(!format!("{asked:?}").contains("frase segreta"), "a passphrase is never printed");
        let done = client.call(&asked).unwrap();
        assert_eq!(done, Done { stdout: "status --lang it".into(), stderr: "it_IT.UTF-8".into(), code: 3 });
    }

    #[test]
    fn a_live_socket_is_not_taken_over_and_a_silent_one_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control.sock");
        let rt = runtime();
        // A "daemon" that accepts and never says anything: a stuck process.
        let silent = std::os::unix::net::UnixListener::bind(&path).unwrap();
        assert!(matches!(rt.block_on(async { Listener::bind(&path) }), Err(BindError::InUse(_))));
        let stuck = Client::connect_within(&path, Duration::from_millis(300));
        assert!(matches!(stuck, Err(ControlError::NotAnswering { .. })), "{stuck:?}");
        drop(silent);
        // Once it is gone, its file is replaced.
        let listener = rt.block_on(async { Listener::bind(&path) }).unwrap();
        drop(listener);
        assert!(!path.exists());
    }

    #[test]
    fn oversized_and_malformed_requests_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control.sock");
        let rt = runtime();
        let listener = rt.block_on(async { Listener::bind(&path) }).unwrap();
        let results = rt.spawn(async move {
            let mut results = Vec::new();
            for _ in 0..2 {
                let stream = listener.accept().await.unwrap();
                results.push(answer(stream, |_| async { Done::default() }).await);
            }
            results
        });
        for bytes in [(u32::MAX).to_be_bytes().to_vec(), [&5u32.to_be_bytes()[..], b"{nope"].concat()] {
            use std::io::{Read as _, Write as _};
            let mut stream = std::os::unix::net::UnixStream::connect(&path).unwrap();
            let mut hello = [0u8; 4];
            stream.read_exact(&mut hello).unwrap();
            stream.write_all(&bytes).unwrap();
        }
        let results = rt.block_on(results).unwrap();
        assert!(matches!(results[0], Err(ControlError::TooLarge { .. })), "{:?}", results[0]);
        assert!(matches!(results[1], Err(ControlError::Malformed(_))), "{:?}", results[1]);
    }
}
