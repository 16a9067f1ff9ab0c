//! Application state: one cheap-to-clone handle on everything a request may need.

use std::ops::Deref;
use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use tokio_util::sync::CancellationToken;

use crate::cache::ArrangementCache;
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::engine::Calendar;
use crate::messages::Messages;
use crate::providers::CallControl;
use crate::store::SharedStore;

pub struct App {
    pub config: Arc<Config>,
    pub store: SharedStore,
    pub cache: ArrangementCache,
    pub calendar: Calendar,
    pub messages: Messages,
    pub clock: Arc<dyn Clock>,
    pub twilio: Arc<dyn CallControl>,
    /// The Twilio auth token's HMAC key and the signed URL forms, prepared once.
    pub twilio_verifier: crate::providers::twilio::Verifier,
    /// The TwiML of a call that continues into the normal flow: the same document for every
    /// such call, rendered once.
    pub twilio_continue: bytes::Bytes,
    /// The Vonage signature secret's JWT key, prepared once.
    pub vonage_verifier: crate::providers::vonage::Verifier,
    pub telnyx: Arc<dyn CallControl>,
    /// The Telnyx webhook's REST client and memory (deduplication, recent callers). Unless
    /// overridden, `telnyx` is this same object, so terminations can look callers up.
    pub telnyx_calls: Arc<crate::providers::telnyx::TelnyxCalls>,
    pub vonage: Arc<dyn CallControl>,
    /// The callers of recent Vonage conversations (for an unanswered staff leg).
    pub vonage_callers: Arc<crate::providers::vonage::RecentCallers>,
    pub metrics: Option<PrometheusHandle>,
    /// Wakes the notification outbox worker; holds its back-off base.
    pub outbox: Arc<crate::outbox::OutboxControl>,
    /// Cancelled when the process is shutting down.
    pub shutdown: CancellationToken,
    /// Work that outlives the request that started it (Telnyx commands): drained at shutdown.
    pub tasks: tokio_util::task::TaskTracker,
    /// The queue in front of the live-call writer (the staff console's Live calls).
    pub live_calls: Arc<crate::console::live::LiveCalls>,
    /// Terminations kept locally while the store is down (SPEC §11).
    pub spool: Arc<crate::spool::Spool>,
    /// How many background notice sweeps (SPEC §13) have finished, failed ones included: the
    /// first one runs at start, concurrently with everything else.
    pub notice_sweeps: std::sync::atomic::AtomicU64,
}

#[derive(Clone)]
pub struct AppState(pub Arc<App>);

impl Deref for AppState {
    type Target = App;
    fn deref(&self) -> &App {
        &self.0
    }
}

/// What tests may swap out when building the state.
#[derive(Default)]
pub struct Overrides {
    pub clock: Option<Arc<dyn Clock>>,
    pub twilio: Option<Arc<dyn CallControl>>,
    pub telnyx: Option<Arc<dyn CallControl>>,
    pub vonage: Option<Arc<dyn CallControl>>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("could not open the store: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("could not set up a platform client: {0}")]
    Provider(#[from] crate::providers::ProviderError),
}

impl AppState {
    /// Open the store (creating and migrating it) and build everything else from the config.
    pub async fn build(config: Config, overrides: Overrides) -> Result<AppState, StartError> {
        let store = crate::store::open(&config.storage).await?;
        Self::with_store(config, store, overrides)
    }

    pub fn with_store(
        config: Config,
        store: SharedStore,
        overrides: Overrides,
    ) -> Result<AppState, StartError> {
        let cache =
            ArrangementCache::new(store.clone(), &config.cache, config.decision.lookup_timeout);
        let calendar = Calendar {
            tz: config.organisation.timezone,
            closed_dates: config.organisation.closed_dates.clone(),
        };
        let messages = Messages::new(&config.organisation.name, &config.messages);
        let twilio: Arc<dyn CallControl> = match overrides.twilio {
            Some(t) => t,
            None => Arc::new(crate::providers::twilio::TwilioClient::new(&config.twilio)?),
        };
        let telnyx_calls = Arc::new(crate::providers::telnyx::TelnyxCalls::new(
            crate::providers::telnyx::TelnyxClient::new(&config.telnyx)?,
        ));
        let telnyx: Arc<dyn CallControl> = match overrides.telnyx {
            Some(t) => t,
            None => telnyx_calls.clone(),
        };
        let vonage: Arc<dyn CallControl> = match overrides.vonage {
            Some(v) => v,
            None => Arc::new(crate::providers::vonage::VonageClient::new(&config.vonage)?),
        };
        let spool = Arc::new(crate::spool::Spool::new(crate::spool::spool_dir(
            &config.storage,
        )));
        let twilio_verifier = crate::providers::twilio::Verifier::new(
            &config.server.public_url,
            &config.twilio.auth_token,
        );
        let vonage_verifier =
            crate::providers::vonage::Verifier::new(&config.vonage.signature_secret);
        let twilio_continue = bytes::Bytes::from(crate::providers::twilio::twiml::render_continue(
            &config.twilio.continue_url,
        ));
        Ok(AppState(Arc::new(App {
            config: Arc::new(config),
            twilio_verifier,
            twilio_continue,
            vonage_verifier,
            store,
            cache,
            calendar,
            messages,
            clock: overrides.clock.unwrap_or_else(|| Arc::new(SystemClock)),
            twilio,
            telnyx,
            telnyx_calls,
            vonage,
            vonage_callers: Arc::default(),
            metrics: crate::telemetry::prometheus(),
            outbox: Arc::new(crate::outbox::OutboxControl::from_env()),
            shutdown: CancellationToken::new(),
            tasks: tokio_util::task::TaskTracker::new(),
            live_calls: Arc::new(crate::console::live::LiveCalls::default()),
            spool,
            notice_sweeps: std::sync::atomic::AtomicU64::new(0),
        })))
    }

    pub fn call_control(&self, provider: crate::domain::Provider) -> Arc<dyn CallControl> {
        match provider {
            crate::domain::Provider::Twilio => self.twilio.clone(),
            crate::domain::Provider::Telnyx => self.telnyx.clone(),
            crate::domain::Provider::Vonage => self.vonage.clone(),
        }
    }
}
