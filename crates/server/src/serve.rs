//! Wiring: policies, services, TLS, limits, health and reflection on one socket.

use std::{future::Future, net::SocketAddr, sync::Arc};

use kafka_pdp_core::LoadError;
use tonic::transport::{server::TcpIncoming, Server};
use tonic_health::server::HealthReporter;

use crate::{
    alerts::{AlertConfigError, Alerts},
    audit,
    audit_stream::AuditStreamService,
    config::{MetricsEndpoint, PolicySource, ServeConfig, Transport, SHUTDOWN_GRACE},
    decide::Pdp,
    metrics_http,
    proto::{
        audit_stream_server::AuditStreamServer, authorizer_server::AuthorizerServer,
        policy_admin_server::PolicyAdminServer,
    },
    service::Service,
    store::PolicyStore,
    tls, watcher,
};

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(
        "refusing to serve plaintext on non-loopback address `{0}`; \
         use a loopback address, TLS, or `--allow-remote-plaintext`"
    )]
    PlaintextNotLoopback(SocketAddr),
    #[error(
        "refusing to serve metrics on non-loopback address `{0}`; \
         use a loopback address or `--allow-remote-metrics`"
    )]
    MetricsNotLoopback(SocketAddr),
    #[error("invalid alert configuration: {0}")]
    Alerts(#[from] AlertConfigError),
    #[error("the policy set is invalid:\n{0}")]
    Policies(#[from] LoadError),
    #[error(transparent)]
    TlsFile(#[from] tls::TlsFileError),
    #[error("cannot listen on `{addr}`: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot watch the policy directory: {0}")]
    Watch(#[from] notify::Error),
    #[error("cannot install the SIGHUP handler: {0}")]
    Signal(std::io::Error),
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("cannot open the audit trail: {0}")]
    Audit(#[from] kafka_pdp_audit::AuditError),
    #[error("transport: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// The addresses actually bound (the real ports when port 0 was asked for).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bound {
    /// The gRPC services.
    pub listen: SocketAddr,
    /// The Prometheus endpoint, when on.
    pub metrics: Option<SocketAddr>,
}

/// Runs the PDP until `shutdown` resolves. `on_bound` is called once with
/// the addresses bound, after the first policy set is active.
pub async fn serve(
    config: ServeConfig,
    on_bound: impl FnOnce(Bound),
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    if let Transport::Plaintext {
        allow_remote: false,
    } = config.transport
    {
        // INVARIANT: plaintext leaves this host only when explicitly allowed.
        if !config.listen.ip().is_loopback() {
            return Err(ServeError::PlaintextNotLoopback(config.listen));
        }
    }
    if let Some(MetricsEndpoint {
        listen,
        allow_remote: false,
    }) = &config.metrics
    {
        // INVARIANT: the unauthenticated endpoint leaves this host only when asked.
        if !listen.ip().is_loopback() {
            return Err(ServeError::MetricsNotLoopback(*listen));
        }
    }
    config.alerts.validate()?;
    let mut server = Server::builder()
        .timeout(config.limits.request_timeout)
        .max_concurrent_streams(config.limits.max_concurrent_streams)
        .tcp_nodelay(true);
    if let Transport::Tls {
        cert,
        key,
        client_ca,
    } = &config.transport
    {
        server = server.tls_config(tls::server_config(cert, key, client_ca.as_deref())?)?;
    }

    let store = Arc::new(open_store(&config.policies).await?);
    let mut pdp = Pdp::new(
        store.clone(),
        config.cache_max_entries,
        config.limits.clone(),
    );
    if let Some(settings) = &config.audit {
        pdp = pdp.with_audit(audit::open(settings)?);
    }
    pdp = pdp.with_alerts(Alerts::new(config.alerts.clone()));
    let audit_log = pdp.auditor().map(|a| a.log().clone());
    let pdp = Arc::new(pdp);
    let _watcher = start_reloads(&store, &pdp)?;

    let (health, health_service) = tonic_health::server::health_reporter();
    // Both reflection versions: older grpcurl and IDE clients ask v1alpha.
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let (reflection_v1, reflection_v1alpha) =
        (reflection().build_v1()?, reflection().build_v1alpha()?);
    let (stopping, shutdown_rx) = tokio::sync::watch::channel(false);
    let audit_stream = AuditStreamService::new(config.audit.as_ref().map(|a| a.dir.clone()));
    let service = Service::new(pdp.clone(), shutdown_rx);
    let max = config.limits.max_message_bytes;
    let router = server
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(AuthorizerServer::new(service.clone()).max_decoding_message_size(max))
        .add_service(PolicyAdminServer::new(service).max_decoding_message_size(max))
        .add_service(AuditStreamServer::new(audit_stream));

    let incoming = TcpIncoming::bind(config.listen)
        .map_err(|source| ServeError::Bind {
            addr: config.listen,
            source,
        })?
        .with_nodelay(Some(true));
    let bound = incoming.local_addr().map_err(|source| ServeError::Bind {
        addr: config.listen,
        source,
    })?;
    let metrics = match &config.metrics {
        Some(endpoint) => Some(start_metrics(endpoint, &pdp, &stopping).await?),
        None => None,
    };
    report_serving(&health).await;
    tracing::info!(
        listen = %bound,
        tls = matches!(config.transport, Transport::Tls { .. }),
        policy.version = store.active().version(),
        "serving"
    );
    on_bound(Bound {
        listen: bound,
        metrics,
    });
    let mut stopped = stopping.subscribe();
    let shutdown = async move {
        shutdown.await;
        tracing::info!("shutting down");
        // Ends the open watch streams, which graceful shutdown waits for.
        let _ = stopping.send(true);
    };
    let grace = async move {
        let _ = stopped.wait_for(|stop| *stop).await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    let serving = router.serve_with_incoming_shutdown(incoming, shutdown);
    tokio::select! {
        served = serving => served?,
        () = grace => tracing::warn!("connections still open after the grace period; stopping"),
    }
    if let Some(log) = audit_log {
        // Signs a last checkpoint; every decision already answered is durable.
        if let Err(error) = log.shutdown().await {
            tracing::warn!(%error, "closing the audit trail");
        }
    }
    tracing::info!("stopped");
    Ok(())
}

async fn open_store(source: &PolicySource) -> Result<PolicyStore, LoadError> {
    match source {
        PolicySource::Dir(dir) => PolicyStore::open_dir(dir.clone()).await,
        PolicySource::Embedded(policies) => PolicyStore::embedded(policies),
    }
}

/// Reloads on file change and SIGHUP, and empties the decision cache after
/// every swap. The embedded set has nothing to watch.
fn start_reloads(
    store: &Arc<PolicyStore>,
    pdp: &Arc<Pdp>,
) -> Result<Option<notify::RecommendedWatcher>, ServeError> {
    let mut versions = store.subscribe();
    let on_swap = pdp.clone();
    tokio::spawn(async move {
        while versions.changed().await.is_ok() {
            on_swap.clear_cache();
        }
    });
    let Some(dir) = store.dir() else {
        return Ok(None);
    };
    #[cfg(unix)]
    watcher::reload_on_sighup(store.clone()).map_err(ServeError::Signal)?;
    Ok(Some(watcher::watch_dir(dir, store.clone())?))
}

/// Binds the Prometheus endpoint and serves it until the server stops.
async fn start_metrics(
    endpoint: &MetricsEndpoint,
    pdp: &Arc<Pdp>,
    stopping: &tokio::sync::watch::Sender<bool>,
) -> Result<SocketAddr, ServeError> {
    let bind_error = |source| ServeError::Bind {
        addr: endpoint.listen,
        source,
    };
    let listener = metrics_http::bind(endpoint.listen)
        .await
        .map_err(bind_error)?;
    let bound = listener.local_addr().map_err(bind_error)?;
    let mut stopped = stopping.subscribe();
    let shutdown = async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    let pdp = pdp.clone();
    tokio::spawn(async move {
        if let Err(error) = metrics_http::run(listener, pdp, shutdown).await {
            tracing::error!(%error, "metrics endpoint stopped");
        }
    });
    tracing::info!(metrics.listen = %bound, "serving metrics");
    Ok(bound)
}

/// SERVING for the whole server and each service, once policies are active.
async fn report_serving(health: &HealthReporter) {
    health.set_serving::<AuthorizerServer<Service>>().await;
    health.set_serving::<PolicyAdminServer<Service>>().await;
    health
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
}
