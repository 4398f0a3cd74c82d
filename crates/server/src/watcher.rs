//! Triggers of a reload: changes in the policy directory and SIGHUP.
//!
//! File events arrive in bursts (an editor writes a temporary file, renames
//! it, touches the directory), so they are debounced: a reload starts once
//! the directory has been quiet for [`RELOAD_DEBOUNCE`]. Only events on the
//! files a policy set is made of count. Known shortcoming: the watch is not
//! recursive, so a policy directory that is itself replaced (a symlink
//! swapped to a new checkout) is not seen; SIGHUP or the Reload RPC covers it.

use std::{path::Path, sync::Arc};

use kafka_pdp_core::{BINDINGS_FILE, LINKS_FILE, POLICY_EXTENSION, SCHEMA_FILE};
use notify::{
    event::{AccessKind, AccessMode},
    EventKind, RecommendedWatcher, RecursiveMode, Watcher,
};
use tokio::sync::mpsc;

use crate::{config::RELOAD_DEBOUNCE, store::PolicyStore};

/// Watches `dir` and reloads `store` after each burst of changes. The
/// returned watcher must be kept alive for as long as the watch should last.
pub fn watch_dir(dir: &Path, store: Arc<PolicyStore>) -> notify::Result<RecommendedWatcher> {
    let (tx, rx) = mpsc::channel(1);
    let root = dir.to_owned();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let relevant = event.is_ok_and(|e| is_change(&e.kind) && touches_policies(&root, &e));
        if relevant {
            // A full channel already holds a pending trigger; one is enough.
            let _ = tx.try_send(());
        }
    })?;
    watcher.watch(dir, RecursiveMode::NonRecursive)?;
    tokio::spawn(debounce_and_reload(rx, store, "file change"));
    Ok(watcher)
}

/// Reloads `store` on every SIGHUP.
#[cfg(unix)]
pub fn reload_on_sighup(store: Arc<PolicyStore>) -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};

    let mut hup = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            reload(&store, "SIGHUP").await;
        }
    });
    Ok(())
}

/// Only writes count: reading the files (as a reload does) must not trigger
/// another reload.
fn is_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_) => true,
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) | EventKind::Any | EventKind::Other => false,
    }
}

/// Whether an event concerns a file the loader reads (or the directory
/// itself). Others, such as `roles.cedar.tmp` written before a rename or an
/// editor's swap file, would only rebuild an unchanged set.
fn touches_policies(dir: &Path, event: &notify::Event) -> bool {
    event.paths.is_empty()
        || event.paths.iter().any(|path| {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            path == dir
                || matches!(name, SCHEMA_FILE | BINDINGS_FILE | LINKS_FILE)
                || name.ends_with(POLICY_EXTENSION)
        })
}

async fn debounce_and_reload(
    mut rx: mpsc::Receiver<()>,
    store: Arc<PolicyStore>,
    cause: &'static str,
) {
    while rx.recv().await.is_some() {
        while let Ok(Some(())) = tokio::time::timeout(RELOAD_DEBOUNCE, rx.recv()).await {}
        reload(&store, cause).await;
    }
}

/// The outcome is logged and kept for `Status` by the store itself.
async fn reload(store: &PolicyStore, cause: &str) {
    if let Err(error) = store.reload(cause).await {
        tracing::error!(cause, "reload failed: {error}");
    }
}
