//! What every handler may need, behind one `web::Data`. This module imports no handler: the
//! handlers import it, and `startup` builds it.

use rust_decimal::Decimal;

use crate::console::session::Sessions;
use crate::empayre::reconcile::Reconciler;
use crate::empayre::sources::Sources;
use crate::metrics::Metrics;
use crate::orbipay::auth::OrbipayAuth;
use crate::settings::Settings;
use crate::shutdown::Lifecycle;
use crate::store::Store;
use crate::throttle::AuthThrottle;

/// Everything a handler may need, behind one `web::Data`.
pub struct AppState {
    pub settings: Settings,
    pub store: Store,
    pub orbipay_auth: OrbipayAuth,
    pub empayre_sources: Sources,
    pub min_payment_amount: Decimal,
    pub metrics: Metrics,
    /// Reconciliation runs with the Empayre API: one at a time per source, the newest reports.
    pub reconciler: Reconciler,
    /// The console's signed-in sessions (one table for every worker).
    pub console_sessions: Sessions,
    /// Draining after a stop signal (`shutdown`).
    pub lifecycle: Lifecycle,
    /// Failed authentications per client address, for every channel (`throttle`).
    pub auth_throttle: AuthThrottle,
}
