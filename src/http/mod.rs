//! The HTTP surface: `router()` merges each resource file's `routes()` and
//! wraps them in the middleware stack. Handlers read like sentences —
//! extract, call a domain function, map to a response — and live one file
//! per resource, with their typed bodies.

pub mod assets;
pub mod auth;
pub mod demo;
pub mod edge;
pub mod extract;
pub mod hooks;
pub mod keys;
pub mod middleware;
pub mod openapi;
pub mod ops;
pub mod play;
pub mod problem;
pub mod sign;
pub mod tiers;
pub mod uploads;
pub mod versioned;
pub mod viewer;

use crate::http::problem::Error;
use crate::state::AppState;
use axum::Router;

/// The viewer's routes (CORS with credentials).
fn play_routes(state: &AppState) -> Router<AppState> {
    let mut r = play::routes().merge(keys::routes());
    if state.config.mode == crate::config::Mode::Local {
        r = r.merge(edge::routes());
    }
    // The 405 fallback is set here, before the CORS layer, so the layer
    // wraps it too and answers preflights (`OPTIONS`) itself; the
    // router-wide fallback in `app()` replaces only unset ones.
    r.method_not_allowed_fallback(|| async { Error::MethodNotAllowed })
        .layer(middleware::cors(&state.config.server.cors_allowed_origins))
}

/// Every route playgate serves, without middleware: each resource file's
/// `routes()`.
pub fn routes(state: &AppState) -> Router<AppState> {
    let mut r = ops::routes()
        .merge(openapi::routes())
        .merge(viewer::routes())
        .merge(assets::routes())
        .merge(tiers::routes())
        .merge(uploads::routes())
        .merge(hooks::routes())
        .merge(sign::routes())
        .merge(play_routes(state));
    if state.config.mode == crate::config::Mode::Local && state.config.demo.enabled {
        r = r.merge(demo::routes());
    }
    r
}

/// The full application: `routes()` plus `extra` (used by tests to mount
/// probes) wrapped in the middleware stack.
pub fn app(state: AppState, extra: Router<AppState>) -> Router {
    let router = routes(&state)
        .merge(extra)
        .fallback(|| async { Error::NotFound })
        .method_not_allowed_fallback(|| async { Error::MethodNotAllowed });
    middleware::wrap(router, &state).with_state(state)
}

pub fn router(state: AppState) -> Router {
    app(state, Router::new())
}
