//! The active policy set, swapped atomically on reload.
//!
//! A request takes one [`Active`] (an `Arc`) when it starts and decides every
//! action under it, so a response always carries the one version all its
//! decisions were made under, however many reloads happen meanwhile.
//!
//! A reload builds the new snapshot on a blocking thread beside the old one,
//! which keeps serving; only a set that loads and validates is swapped in.
//! A rejected set is logged at warn with every problem as
//! `file:line:column: message` and shows in `Status.last_reload`.

use std::{
    path::PathBuf,
    sync::{
        atomic::{AtomicU64, Ordering::Relaxed},
        Arc, Mutex,
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use arc_swap::ArcSwap;
use kafka_pdp_core::{
    LoadError, LoadProblem, PolicySnapshot, SourceFile, BINDINGS_FILE, LINKS_FILE, SCHEMA_FILE,
};
use tokio::sync::watch;

use crate::{error::ServiceError, proto, EmbeddedPolicies};

/// The snapshot serving now, with when it became active.
#[derive(Debug)]
pub struct Active {
    pub snapshot: PolicySnapshot,
    /// Counts activations in this process; part of every cache key.
    pub generation: u64,
    pub activated_at_unix_ms: i64,
}

impl Active {
    pub fn version(&self) -> &str {
        self.snapshot.version()
    }
}

/// The policy store: the active snapshot and where it came from.
#[derive(Debug)]
pub struct PolicyStore {
    active: ArcSwap<Active>,
    dir: Option<PathBuf>,
    generations: AtomicU64,
    versions: watch::Sender<proto::PolicyVersion>,
    last_reload: Mutex<Option<proto::ReloadOutcome>>,
    /// Reloads since start: `[accepted, rejected]`.
    reloads: [AtomicU64; 2],
    // One reload at a time: two concurrent builds of a 100k-policy set would
    // double the peak memory for nothing.
    reloading: tokio::sync::Mutex<()>,
}

impl PolicyStore {
    /// Loads `dir` on a blocking thread; an invalid set is an error.
    pub async fn open_dir(dir: PathBuf) -> Result<Self, LoadError> {
        let snapshot = load_blocking(dir.clone()).await?;
        Ok(Self::new(snapshot, Some(dir)))
    }

    /// Builds the embedded set; it never reloads.
    pub fn embedded(policies: &EmbeddedPolicies) -> Result<Self, LoadError> {
        Ok(Self::new(policies.build()?, None))
    }

    /// A store over a snapshot already built (local `check`, tests).
    pub fn new(snapshot: PolicySnapshot, dir: Option<PathBuf>) -> Self {
        let active = Active {
            snapshot,
            generation: 1,
            activated_at_unix_ms: now_unix_ms(),
        };
        let (versions, _) = watch::channel(version_message(&active));
        Self {
            active: ArcSwap::from_pointee(active),
            dir,
            generations: AtomicU64::new(1),
            versions,
            last_reload: Mutex::new(None),
            reloads: Default::default(),
            reloading: tokio::sync::Mutex::new(()),
        }
    }

    /// The snapshot serving now. Take it once per request.
    pub fn active(&self) -> Arc<Active> {
        self.active.load_full()
    }

    /// The policy directory, if this store reloads from one.
    pub fn dir(&self) -> Option<&PathBuf> {
        self.dir.as_ref()
    }

    /// The active version now, then every new one.
    pub fn subscribe(&self) -> watch::Receiver<proto::PolicyVersion> {
        self.versions.subscribe()
    }

    pub fn last_reload(&self) -> Option<proto::ReloadOutcome> {
        lock(&self.last_reload).clone()
    }

    /// Reloads since start, `(accepted, rejected)`; an accepted reload of
    /// unchanged files counts too.
    pub fn reload_counts(&self) -> (u64, u64) {
        let [accepted, rejected] = &self.reloads;
        (accepted.load(Relaxed), rejected.load(Relaxed))
    }

    /// Reloads the directory: swaps in a valid set, keeps the old one on a
    /// rejected set. `cause` is logged (`file change`, `SIGHUP`, `rpc`).
    pub async fn reload(&self, cause: &str) -> Result<proto::ReloadOutcome, ServiceError> {
        let dir = self.dir.clone().ok_or(ServiceError::NotReloadable)?;
        let _one_at_a_time = self.reloading.lock().await;
        let loaded = load_blocking(dir.clone()).await;
        let outcome = match loaded {
            Ok(snapshot) => self.activate(snapshot, cause),
            Err(error) => self.reject(&error, cause),
        };
        *lock(&self.last_reload) = Some(outcome.clone());
        let counter = &self.reloads[usize::from(!outcome.accepted)];
        counter.fetch_add(1, Relaxed);
        Ok(outcome)
    }

    fn activate(&self, snapshot: PolicySnapshot, cause: &str) -> proto::ReloadOutcome {
        let version = snapshot.version().to_owned();
        if version == self.active().version() {
            tracing::info!(policy.version = %version, cause, "policies unchanged");
            return outcome(true, version, String::new());
        }
        let active = Arc::new(Active {
            snapshot,
            generation: self.generations.fetch_add(1, Relaxed) + 1,
            activated_at_unix_ms: now_unix_ms(),
        });
        let message = version_message(&active);
        let old = self.active.swap(active);
        self.versions.send_replace(message);
        retire(old);
        tracing::info!(policy.version = %version, cause, "policies reloaded");
        outcome(true, version, String::new())
    }

    fn reject(&self, error: &LoadError, cause: &str) -> proto::ReloadOutcome {
        let active = self.active();
        tracing::warn!(
            policy.version = %active.version(),
            cause,
            "policy reload rejected; the active set keeps serving:\n{error}"
        );
        outcome(false, String::new(), error.to_string())
    }
}

impl EmbeddedPolicies {
    /// Builds the snapshot of the embedded set.
    pub fn build(&self) -> Result<PolicySnapshot, LoadError> {
        PolicySnapshot::from_sources(self.sources())
    }

    /// The files of the set, named as in a policy directory.
    pub fn sources(&self) -> Vec<SourceFile> {
        let mut files = vec![SourceFile::new(SCHEMA_FILE, self.schema)];
        files.extend(
            self.policies
                .iter()
                .map(|(name, text)| SourceFile::new(*name, *text)),
        );
        if !self.entities.is_empty() {
            files.push(SourceFile::new(BINDINGS_FILE, self.entities));
        }
        if !self.links.is_empty() {
            files.push(SourceFile::new(LINKS_FILE, self.links));
        }
        files
    }
}

/// Drops a replaced snapshot once no request holds it any more, on a
/// blocking thread rather than on whichever request happens to hold it last
/// (freeing a 100,000-policy set takes long enough to show as a latency
/// spike), then hands the freed memory back to the operating system.
fn retire(old: Arc<Active>) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return drop(old);
    };
    runtime.spawn_blocking(move || {
        let mut old = old;
        // Requests hold a snapshot for the length of one call.
        loop {
            match Arc::try_unwrap(old) {
                Ok(last) => break drop(last),
                Err(shared) => old = shared,
            }
            std::thread::sleep(RETIRE_POLL);
        }
        release_free_memory();
    });
}

/// How often a retiring snapshot checks whether its last request is done.
const RETIRE_POLL: Duration = Duration::from_millis(10);

/// Returns freed heap pages to the OS. Without it glibc keeps the pages of
/// a replaced policy set mapped, and the resident size after a reload stays
/// at the peak of building two sets side by side.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn release_free_memory() {
    extern "C" {
        fn malloc_trim(pad: usize) -> std::os::raw::c_int;
    }
    // SAFETY: `malloc_trim` takes no pointers and only walks glibc's own free
    // lists under its own locks; it is safe to call from any thread.
    unsafe {
        malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release_free_memory() {}

async fn load_blocking(dir: PathBuf) -> Result<PolicySnapshot, LoadError> {
    let dir_shown = dir.display().to_string();
    tokio::task::spawn_blocking(move || PolicySnapshot::load_dir(&dir))
        .await
        .unwrap_or_else(|join| Err(panicked(&dir_shown, &join)))
}

/// A loader that panicked rejects the set like any other problem.
fn panicked(dir: &str, join: &tokio::task::JoinError) -> LoadError {
    LoadError {
        problems: vec![LoadProblem {
            file: dir.to_owned(),
            line: 0,
            column: 0,
            message: format!("the policy loader failed: {join}"),
        }],
    }
}

fn version_message(active: &Active) -> proto::PolicyVersion {
    proto::PolicyVersion {
        version: active.version().to_owned(),
        activated_at_unix_ms: active.activated_at_unix_ms,
    }
}

fn outcome(accepted: bool, version: String, error: String) -> proto::ReloadOutcome {
    proto::ReloadOutcome {
        accepted,
        version,
        error,
        at_unix_ms: now_unix_ms(),
    }
}

pub(crate) fn now_unix_ms() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

/// A poisoned lock only means a panic elsewhere; the value is still whole.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
