//! A harness that runs the real `kafka-pdp` binary on loopback.
//!
//! Servers bind port 0 and the harness reads the bound address from the
//! `listening on` line; nothing sleeps to wait, everything polls with a
//! deadline.

#![allow(dead_code)]

pub mod pki;

use std::{
    io::{BufRead, BufReader, Read},
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::{mpsc, Arc, Mutex},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use kafka_pdp_server::{
    client::Connect,
    proto::{
        authorizer_client::AuthorizerClient, policy_admin_client::PolicyAdminClient, Action,
        Operation, Principal, RequestContext, ResourceType,
    },
};
use tonic::transport::Channel;

pub const BIN: &str = env!("CARGO_BIN_EXE_kafka-pdp");

/// How long a server may take to start, and any awaited change to show.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// The repository's default policy directory.
pub fn policies_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies")
}

/// A running `kafka-pdp serve`, killed on drop.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    /// The metrics endpoint, when started with `--metrics-listen`.
    pub metrics: Option<SocketAddr>,
    stderr: Arc<Mutex<String>>,
}

impl Server {
    /// Starts `kafka-pdp serve --listen 127.0.0.1:0 <args>`.
    pub fn start(args: &[&str]) -> Server {
        Self::try_start(args).unwrap_or_else(|e| panic!("server did not start: {e}"))
    }

    /// Starts a plaintext server on loopback.
    pub fn plaintext(args: &[&str]) -> Server {
        let mut all = vec!["--plaintext"];
        all.extend_from_slice(args);
        Self::start(&all)
    }

    pub fn try_start(args: &[&str]) -> Result<Server, String> {
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        let (stderr, stderr_done) = collect(child.stderr.take().expect("stderr is piped"));
        // `listening on ADDR`, then `metrics on ADDR` when the endpoint is on.
        let lines = if args.contains(&"--metrics-listen") {
            2
        } else {
            1
        };
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout is piped");
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            for _ in 0..lines {
                let mut line = String::new();
                let _ = reader.read_line(&mut line);
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + DEADLINE;
        let next_line = || {
            let left = deadline.saturating_duration_since(Instant::now());
            rx.recv_timeout(left).unwrap_or_default()
        };
        let line = next_line();
        let metrics_line = if lines == 2 {
            next_line()
        } else {
            String::new()
        };
        let metrics = metrics_line.trim().strip_prefix("metrics on ");
        let Some(addr) = line
            .trim()
            .strip_prefix("listening on ")
            .filter(|_| lines == 1 || metrics.is_some())
        else {
            let _ = child.kill();
            let _ = child.wait();
            // The process is gone: wait for the last of its stderr.
            let _ = stderr_done.join();
            let log = stderr.lock().unwrap().clone();
            return Err(format!(
                "stdout said {line:?} {metrics_line:?}; stderr:\n{log}"
            ));
        };
        let parse = |addr: &str| {
            addr.parse()
                .map_err(|e| format!("bad address {addr:?}: {e}"))
        };
        Ok(Server {
            child,
            addr: parse(addr)?,
            metrics: metrics.map(parse).transpose()?,
            stderr,
        })
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits for the exit, up to [`DEADLINE`].
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().ok()?;
        assert!(sent.success(), "kill -TERM {pid}");
        let start = Instant::now();
        while start.elapsed() < DEADLINE {
            if let Some(status) = self.child.try_wait().ok()? {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn plaintext_connect(&self) -> Connect {
        Connect {
            server: self.addr.to_string(),
            plaintext: true,
            ca: None,
            identity: None,
        }
    }

    pub async fn channel(&self) -> Channel {
        self.plaintext_connect().channel().await.expect("connect")
    }

    pub async fn authorizer(&self) -> AuthorizerClient<Channel> {
        AuthorizerClient::new(self.channel().await)
    }

    pub async fn admin(&self) -> PolicyAdminClient<Channel> {
        PolicyAdminClient::new(self.channel().await)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads a pipe to its end on a thread, into a shared string; the handle
/// finishes when the pipe is closed and read.
fn collect(mut pipe: impl Read + Send + 'static) -> (Arc<Mutex<String>>, JoinHandle<()>) {
    let text = Arc::new(Mutex::new(String::new()));
    let sink = text.clone();
    let done = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    (text, done)
}

/// Runs the binary to completion.
pub fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("run kafka-pdp")
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Polls `f` until it returns `Some`, or panics after [`DEADLINE`].
pub async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = f().await {
            return value;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A request context for `principal` (`User:alice`) from 10.0.0.7 over SASL_SSL.
pub fn context(principal: &str) -> RequestContext {
    let (kind, name) = principal.split_once(':').expect("type:name");
    RequestContext {
        principal: Some(Principal {
            r#type: kind.into(),
            name: name.into(),
        }),
        client_address: "10.0.0.7".into(),
        listener: "SASL_SSL".into(),
        security_protocol: "SASL_SSL".into(),
        client_id: "test".into(),
        request_api: "FETCH".into(),
        ..Default::default()
    }
}

pub fn action(op: Operation, rt: ResourceType, name: &str) -> Action {
    Action {
        operation: op as i32,
        resource_type: rt as i32,
        resource_name: name.into(),
        ..Default::default()
    }
}

/// Copies a policy directory (top-level files only) into a fresh temp dir.
pub fn copy_policies(from: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for entry in std::fs::read_dir(from).expect("read policies") {
        let path = entry.expect("entry").path();
        if path.is_file() {
            std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).expect("copy");
        }
    }
    dir
}

/// A fresh key pair made by `audit keygen`, and an empty log directory.
pub struct Trail {
    _root: tempfile::TempDir,
    /// The audit log directory (created by the server).
    pub dir: PathBuf,
    /// The private signing key; the public one is beside it, `.pub`.
    pub key: PathBuf,
}

impl Trail {
    pub fn new() -> Trail {
        let root = tempfile::tempdir().unwrap();
        let key = root.path().join("audit.key");
        let out = run(&["audit", "keygen", "--out", key.to_str().unwrap()]);
        assert!(out.status.success(), "keygen: {}", stderr(&out));
        Trail {
            dir: root.path().join("log"),
            key,
            _root: root,
        }
    }

    /// The temporary folder that holds the key and the log.
    pub fn root(&self) -> &Path {
        self._root.path()
    }

    /// A plaintext server recording into this trail.
    pub fn serve(&self) -> Server {
        self.serve_with(&[])
    }

    /// [`Trail::serve`] with more flags.
    pub fn serve_with(&self, args: &[&str]) -> Server {
        let mut all = vec![
            "--audit-dir",
            self.dir.to_str().unwrap(),
            "--audit-key",
            self.key.to_str().unwrap(),
        ];
        all.extend_from_slice(args);
        Server::plaintext(&all)
    }
}
