//! `AuditStream.Subscribe`: the audit trail, live, for SIEMs and tools.
//!
//! Each subscriber gets its own [`Follower`] over the log directory: it reads
//! complete record lines only, in log order, across rotations, so a
//! subscriber sees exactly what the trail holds and never a half-written
//! record. A replay (`from_sequence`) reads the log from its oldest segment.
//! A slow subscriber slows only its own reader (a bounded channel), never
//! the decision path, which does not know subscribers exist.
//!
//! Known shortcomings: a replay reads the log from its oldest segment and
//! drops records before `from_sequence`, so replaying the last few records
//! of a large log reads all of it first. Any client the transport lets in
//! (with `--tls-client-ca`, any holder of a certificate from that CA) may
//! subscribe; there is no per-RPC authorization of who may read the trail.

use std::{path::PathBuf, pin::Pin, time::Duration};

use kafka_pdp_audit::{AuditError, AuditRecord, Filter, Follower};
use tokio::sync::mpsc;
use tokio_stream::{wrappers::ReceiverStream, Stream};
use tonic::{Request, Response, Status};

use crate::proto::{self, audit_stream_server::AuditStream};

/// How often a follower looks for new records.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Records buffered per subscriber before its reader waits.
const BUFFER: usize = 1_024;

/// The service; `dir` is the audit log directory, `None` when the PDP
/// writes no trail.
#[derive(Clone, Debug)]
pub struct AuditStreamService {
    dir: Option<PathBuf>,
}

impl AuditStreamService {
    pub fn new(dir: Option<PathBuf>) -> Self {
        Self { dir }
    }
}

type RecordStream = Pin<Box<dyn Stream<Item = Result<proto::AuditRecord, Status>> + Send>>;

#[tonic::async_trait]
impl AuditStream for AuditStreamService {
    type SubscribeStream = RecordStream;

    async fn subscribe(
        &self,
        request: Request<proto::SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let Some(dir) = self.dir.clone() else {
            return Err(Status::failed_precondition(
                "this PDP writes no audit trail (`serve --audit-dir`)",
            ));
        };
        let selection = Selection::of(request.into_inner())?;
        let follower = match selection.from {
            // Finding the end reads the newest segment: off the async workers.
            0 => tokio::task::spawn_blocking(move || Follower::from_end(&dir))
                .await
                .map_err(|_| Status::internal("the audit reader failed"))?
                .map_err(status)?,
            _ => Follower::from_start(&dir),
        };
        let (tx, rx) = mpsc::channel(BUFFER);
        tokio::spawn(follow(follower, selection, tx));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// Which records a subscriber asked for.
#[derive(Debug)]
struct Selection {
    filter: Filter,
    resource_type: String,
    name_prefix: String,
    from: u64,
}

impl Selection {
    fn of(request: proto::SubscribeRequest) -> Result<Self, Status> {
        let decision = match proto::Decision::try_from(request.decision) {
            Ok(proto::Decision::Unspecified) => None,
            Ok(proto::Decision::Allow) => Some(kafka_pdp_audit::Decision::Allow),
            Ok(proto::Decision::Deny) => Some(kafka_pdp_audit::Decision::Deny),
            Err(_) => {
                let value = request.decision;
                return Err(Status::invalid_argument(format!(
                    "`decision` has unknown value {value}"
                )));
            }
        };
        let filter = Filter {
            principal: Some(request.principal).filter(|p| !p.is_empty()),
            decision,
            ..Filter::default()
        };
        Ok(Self {
            filter,
            resource_type: request.resource_type,
            name_prefix: request.resource_name_prefix,
            from: request.from_sequence,
        })
    }

    fn matches(&self, record: &AuditRecord) -> bool {
        let resource = &record.event.resource;
        record.seq >= self.from
            && (self.resource_type.is_empty() || resource.kind == self.resource_type)
            && resource.name.starts_with(&self.name_prefix)
            && self.filter.matches(record)
    }
}

/// Reads new records every [`POLL_INTERVAL`] and sends the matching ones
/// until the subscriber goes away or the log cannot be read.
async fn follow(
    mut follower: Follower,
    selection: Selection,
    tx: mpsc::Sender<Result<proto::AuditRecord, Status>>,
) {
    let mut tick = tokio::time::interval(POLL_INTERVAL);
    loop {
        tick.tick().await;
        if tx.is_closed() {
            return;
        }
        // The follower reads files: keep that off the async workers.
        let polled = tokio::task::spawn_blocking(move || {
            let records = follower.poll();
            (follower, records)
        })
        .await;
        let records = match polled {
            Ok((back, Ok(records))) => {
                follower = back;
                records
            }
            Ok((_, Err(error))) => {
                let _ = tx.send(Err(status(error))).await;
                return;
            }
            Err(_) => {
                let _ = tx
                    .send(Err(Status::internal("the audit reader failed")))
                    .await;
                return;
            }
        };
        for record in records.iter().filter(|r| selection.matches(r)) {
            let sent = proto::AuditRecord {
                sequence: record.seq,
                json: record.to_json().to_string(),
            };
            if tx.send(Ok(sent)).await.is_err() {
                return;
            }
        }
    }
}

/// A log that cannot be read ends the stream; it is never skipped.
fn status(error: AuditError) -> Status {
    Status::data_loss(format!("the audit trail cannot be read: {error}"))
}
