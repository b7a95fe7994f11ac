//! The HTTP surface: `router()` builds every route and the middleware
//! stack. Handlers read like sentences — extract, call a domain function,
//! map to a response — and live one file per resource.

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
use axum::routing::{get, post};

/// The viewer's routes (CORS with credentials).
fn play_routes(state: &AppState) -> Router<AppState> {
    let mut r = Router::new()
        .route("/v1/play/{asset}/master.m3u8", get(play::master))
        .route("/v1/play/{asset}/manifest.mpd", get(play::mpd))
        .route("/v1/play/{asset}/session", post(play::session))
        .route("/v1/play/{asset}/hls/{*rest}", get(play::media))
        .route("/v1/keys/{asset}/{key}", get(keys::key));
    if state.config.mode == crate::config::Mode::Local {
        r = r.route("/cdn/{*path}", get(edge::serve));
    }
    // The 405 fallback is set here, before the CORS layer, so the layer
    // wraps it too and answers preflights (`OPTIONS`) itself; the
    // router-wide fallback in `app()` replaces only unset ones.
    r.method_not_allowed_fallback(|| async { Error::MethodNotAllowed })
        .layer(middleware::cors(&state.config.server.cors_allowed_origins))
}

/// Every route playgate serves, without middleware.
pub fn routes(state: &AppState) -> Router<AppState> {
    let mut r = Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(openapi::openapi_json))
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
        .route("/v1/uploads", post(uploads::create_upload))
        .route(
            "/v1/uploads/{asset}/source",
            axum::routing::put(uploads::put_source),
        )
        .route(
            "/v1/uploads/{asset}/complete",
            post(uploads::complete_upload),
        )
        .route("/v1/assets/{id}/transcode", post(uploads::transcode))
        .route("/v1/jobs/{id}", get(uploads::job).delete(uploads::cancel))
        .route("/hooks/mediaconvert", post(hooks::mediaconvert))
        .route("/v1/sign/cookies", post(sign::cookies))
        .route("/v1/sign/urls", post(sign::urls))
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
