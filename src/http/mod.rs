//! The HTTP surface: `router()` builds every route and the middleware
//! stack. Handlers read like sentences — extract, call a domain function,
//! map to a response — and live one file per resource.

pub mod assets;
pub mod auth;
pub mod extract;
pub mod middleware;
pub mod ops;
pub mod tiers;
pub mod versioned;
pub mod viewer;

use crate::error::Error;
use crate::state::AppState;
use axum::Router;
use axum::routing::get;

/// Every route playgate serves, without middleware.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/v1/me", get(viewer::me))
        .route("/v1/assets", get(assets::list))
        .route(
            "/v1/assets/{id}",
            get(assets::get).put(assets::put).delete(assets::delete),
        )
        .route("/v1/tiers", get(tiers::list))
        .route(
            "/v1/tiers/{name}",
            get(tiers::get).put(tiers::put).delete(tiers::delete),
        )
}

/// The full application: `routes()` plus `extra` (used by tests to mount
/// probes) wrapped in the middleware stack.
pub fn app(state: AppState, extra: Router<AppState>) -> Router {
    let router = routes()
        .merge(extra)
        .fallback(|| async { Error::NotFound })
        .method_not_allowed_fallback(|| async { Error::MethodNotAllowed });
    middleware::wrap(router, &state).with_state(state)
}

pub fn router(state: AppState) -> Router {
    app(state, Router::new())
}
