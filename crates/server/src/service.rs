//! The tonic services: thin adapters from RPCs to [`Pdp`].
//!
//! Each handler runs in a span named after its RPC and converts errors with
//! `?`: the one conversion to `tonic::Status` lives in `error.rs`.

use std::{pin::Pin, sync::Arc};

use tokio::sync::{mpsc, watch};
use tokio_stream::{wrappers::ReceiverStream, Stream};
use tonic::{metadata::MetadataValue, Request, Response, Status};
use tracing::Instrument;

use crate::{
    decide::Pdp,
    metrics::FailClosed,
    proto::{self, authorizer_server::Authorizer, policy_admin_server::PolicyAdmin},
};

/// Both gRPC services over one [`Pdp`].
#[derive(Clone, Debug)]
pub struct Service {
    pdp: Arc<Pdp>,
    /// Turns true when the server shuts down; open watch streams then end,
    /// or graceful shutdown would wait for them forever.
    shutdown: watch::Receiver<bool>,
}

impl Service {
    pub fn new(pdp: Arc<Pdp>, shutdown: watch::Receiver<bool>) -> Self {
        Self { pdp, shutdown }
    }
}

type VersionStream = Pin<Box<dyn Stream<Item = Result<proto::PolicyVersion, Status>> + Send>>;

#[tonic::async_trait]
impl Authorizer for Service {
    async fn authorize(
        &self,
        request: Request<proto::AuthorizeRequest>,
    ) -> Result<Response<proto::AuthorizeResponse>, Status> {
        let actions = request.get_ref().actions.len();
        let span = tracing::info_span!("authorize", actions);
        let response = self.pdp.authorize(request.into_inner()).instrument(span);
        Ok(Response::new(response.await?))
    }

    async fn authorize_by_resource_type(
        &self,
        request: Request<proto::AuthorizeByResourceTypeRequest>,
    ) -> Result<Response<proto::AuthorizeByResourceTypeResponse>, Status> {
        let span = tracing::info_span!("authorize_by_resource_type");
        let response = self.pdp.authorize_by_resource_type(request.into_inner());
        Ok(Response::new(response.instrument(span).await?))
    }

    async fn report_cached_decisions(
        &self,
        request: Request<proto::ReportCachedDecisionsRequest>,
    ) -> Result<Response<proto::ReportCachedDecisionsResponse>, Status> {
        let decisions = request.get_ref().decisions.len();
        let span = tracing::info_span!("report_cached_decisions", decisions);
        let response = self.pdp.report_cached(request.into_inner());
        Ok(Response::new(response.instrument(span).await?))
    }

    type WatchPolicyVersionStream = VersionStream;

    async fn watch_policy_version(
        &self,
        _request: Request<proto::WatchPolicyVersionRequest>,
    ) -> Result<Response<Self::WatchPolicyVersionStream>, Status> {
        tracing::debug!("policy version watch opened");
        let (tx, rx) = mpsc::channel(4);
        let versions = self.pdp.store().subscribe();
        tokio::spawn(forward_versions(versions, self.shutdown.clone(), tx));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

#[tonic::async_trait]
impl PolicyAdmin for Service {
    async fn check(
        &self,
        request: Request<proto::CheckRequest>,
    ) -> Result<Response<proto::CheckResponse>, Status> {
        let span = tracing::info_span!("check");
        let response = self.pdp.check(request.into_inner()).instrument(span);
        Ok(Response::new(response.await?))
    }

    async fn status(
        &self,
        _request: Request<proto::StatusRequest>,
    ) -> Result<Response<proto::StatusResponse>, Status> {
        let store = self.pdp.store();
        let active = store.active();
        let status = proto::StatusResponse {
            active_version: active.version().to_owned(),
            activated_at_unix_ms: active.activated_at_unix_ms,
            policy_count: u32::try_from(active.snapshot.policy_count()).unwrap_or(u32::MAX),
            policy_dir: store
                .dir()
                .map(|d| d.display().to_string())
                .unwrap_or_default(),
            last_reload: store.last_reload(),
            recent_alerts: self.pdp.alerts().recent().iter().map(alert).collect(),
        };
        let mut response = Response::new(status);
        self.add_counters(response.metadata_mut());
        Ok(response)
    }

    async fn reload(
        &self,
        _request: Request<proto::ReloadRequest>,
    ) -> Result<Response<proto::ReloadResponse>, Status> {
        let store = self.pdp.store().clone();
        let outcome = store
            .reload("rpc")
            .instrument(tracing::info_span!("reload"))
            .await?;
        Ok(Response::new(proto::ReloadResponse {
            outcome: Some(outcome),
            active_version: store.active().version().to_owned(),
        }))
    }
}

/// Sends the current version at once, then each new one, until the client
/// goes away or the server shuts down (which ends the stream cleanly).
async fn forward_versions(
    mut versions: watch::Receiver<proto::PolicyVersion>,
    mut shutdown: watch::Receiver<bool>,
    tx: mpsc::Sender<Result<proto::PolicyVersion, Status>>,
) {
    loop {
        let current = versions.borrow_and_update().clone();
        if tx.send(Ok(current)).await.is_err() {
            return;
        }
        tokio::select! {
            changed = versions.changed() => if changed.is_err() { return },
            _ = shutdown.wait_for(|stop| *stop) => return,
            () = tx.closed() => return,
        }
    }
}

/// Metadata keys of the counters sent with every `Status` response. The
/// contract has no fields for them yet; these keep them visible meanwhile
/// (`grpcurl -v`, `kafka-pdp status`).
pub const COUNTER_KEYS: [&str; 7] = [
    "x-pdp-decisions",
    "x-pdp-cache-hits",
    "x-pdp-fail-closed-invalid-request",
    "x-pdp-fail-closed-evaluation-error",
    "x-pdp-fail-closed-audit-unavailable",
    "x-pdp-fail-closed-audit-export-behind",
    "x-pdp-audit-export-lag",
];

impl Service {
    fn add_counters(&self, metadata: &mut tonic::metadata::MetadataMap) {
        let metrics = self.pdp.metrics();
        let (decisions, hits) = metrics.decisions();
        let gates = self.pdp.auditor().map_or(&[][..], |a| a.export_gates());
        let export_denied = gates.iter().map(|g| g.stats().denied).sum();
        let export_lag = gates.iter().map(|g| g.stats().lag).max().unwrap_or(0);
        let values = [
            decisions,
            hits,
            metrics.fail_closed_count(FailClosed::InvalidRequest),
            metrics.fail_closed_count(FailClosed::EvaluationError),
            metrics.fail_closed_count(FailClosed::AuditUnavailable),
            export_denied,
            export_lag,
        ];
        for (key, value) in COUNTER_KEYS.into_iter().zip(values) {
            metadata.insert(key, MetadataValue::from(value));
        }
    }
}

fn alert(alert: &crate::alerts::Alert) -> proto::Alert {
    let at = alert
        .at
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    proto::Alert {
        rule: alert.rule.as_str().to_owned(),
        subject: alert.subject.clone(),
        count: alert.count,
        window_secs: alert.window.as_secs(),
        threshold: alert.threshold,
        at_unix_ms: i64::try_from(at.as_millis()).unwrap_or(i64::MAX),
    }
}
