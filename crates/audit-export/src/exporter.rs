//! The loop every sink shares: tail the log from the cursor, ship a batch,
//! move the cursor once the sink confirms it, keep the lag gauge fresh, and
//! back off after a failure.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::{cursor::Cursor, error::ExportError, tail, Gate, RawRecord, Tail};

/// First and longest wait before retrying a failed batch.
pub const BACKOFF_MIN: Duration = Duration::from_millis(200);
pub const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// Most records shipped per batch (and held in memory).
pub const DEFAULT_BATCH: usize = 1_000;

/// How often the exporter looks for new records and refreshes the lag.
pub const DEFAULT_POLL: Duration = Duration::from_millis(100);

/// Where records go. `ship` resolves `Ok` only once the sink has confirmed
/// every record of the batch; anything else retries the whole batch.
pub trait Sink: Send {
    /// Names the sink in logs: `Kafka`, `OTLP`.
    fn name(&self) -> &'static str;

    fn ship(&mut self, batch: &[RawRecord]) -> impl Future<Output = Result<(), String>> + Send;

    /// Called after a failed batch: a sink whose client broke for good
    /// replaces it here.
    fn recover(&mut self) {}
}

/// What every exporter is told, whatever its sink.
#[derive(Clone, Debug)]
pub struct ExportSettings {
    /// The audit log directory (the spool); cursors live in it.
    pub dir: PathBuf,
    /// The cursor's file name in `dir`; one per sink.
    pub cursor_file: &'static str,
    pub max_lag: u64,
    pub batch: usize,
    pub poll: Duration,
}

/// Tails the log and ships it to one sink.
pub struct Exporter<S> {
    settings: ExportSettings,
    sink: S,
    cursor: Cursor,
    tail: Tail,
    gate: Arc<Gate>,
}

impl<S: Sink> Exporter<S> {
    /// Loads the cursor; the sink connects lazily.
    pub fn with_sink(settings: ExportSettings, sink: S) -> Result<Exporter<S>, ExportError> {
        let cursor = Cursor::load(&settings.dir.join(settings.cursor_file))?;
        let tail = Tail::after(&settings.dir, cursor.get())?;
        let gate = Arc::new(Gate::new(settings.max_lag));
        let exporter = Exporter {
            settings,
            sink,
            cursor,
            tail,
            gate,
        };
        exporter.refresh_lag();
        Ok(exporter)
    }

    /// The lag gauge and the over-bound flag, for the decision path.
    pub fn gate(&self) -> Arc<Gate> {
        self.gate.clone()
    }

    /// Ships until `shutdown` resolves. Never returns an error: a broken
    /// log or sink is logged, shows as lag and is retried.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        let sink = self.sink.name();
        tracing::info!(
            sink,
            cursor = self.cursor.get(),
            max_lag = self.settings.max_lag,
            "audit export started"
        );
        tokio::pin!(shutdown);
        let mut backoff = BACKOFF_MIN;
        loop {
            let stepped = tokio::select! {
                () = &mut shutdown => break,
                stepped = self.step() => stepped,
            };
            let wait = match stepped {
                Ok(0) => self.settings.poll,
                Ok(_) => {
                    backoff = BACKOFF_MIN;
                    Duration::ZERO
                }
                Err(why) => {
                    self.gate.failed_batch();
                    tracing::warn!(sink, %why, retry_in = ?backoff, "audit export failed");
                    self.sink.recover();
                    let wait = backoff;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    wait
                }
            };
            tokio::select! {
                () = &mut shutdown => break,
                () = tokio::time::sleep(wait) => {}
            }
        }
        tracing::info!(sink, cursor = self.cursor.get(), "audit export stopped");
    }

    /// Ships one batch; returns how many records it shipped. While the sink
    /// works on it, the lag keeps being refreshed, so an outage shows as it
    /// grows.
    async fn step(&mut self) -> Result<usize, String> {
        self.refresh_lag();
        let (batch, to) = self
            .tail
            .peek(self.settings.batch)
            .map_err(|e| e.to_string())?;
        let Some(last) = batch.last().map(|r| r.seq) else {
            return Ok(0);
        };
        {
            let shipping = self.sink.ship(&batch);
            tokio::pin!(shipping);
            loop {
                tokio::select! {
                    done = &mut shipping => break done?,
                    () = tokio::time::sleep(self.settings.poll) => {
                        refresh_lag(&self.settings, &self.cursor, &self.gate)
                    }
                }
            }
        }
        self.cursor.store(last).map_err(|e| e.to_string())?;
        self.tail.advance(to, last);
        self.gate.delivered(batch.len() as u64);
        self.refresh_lag();
        Ok(batch.len())
    }

    fn refresh_lag(&self) {
        refresh_lag(&self.settings, &self.cursor, &self.gate);
    }
}

/// Lag = newest record in the log minus the cursor.
fn refresh_lag(settings: &ExportSettings, cursor: &Cursor, gate: &Gate) {
    let head = match tail::head_seq(&settings.dir) {
        Ok(head) => head,
        Err(why) => {
            tracing::warn!(%why, "audit export: cannot read the log head");
            return;
        }
    };
    let lag = head.saturating_sub(cursor.get());
    if gate.set_lag(lag) {
        if gate.over_bound() {
            tracing::error!(
                lag,
                max = settings.max_lag,
                "audit export over bound; denying"
            );
        } else {
            tracing::warn!(lag, "audit export back within bound");
        }
    }
}
