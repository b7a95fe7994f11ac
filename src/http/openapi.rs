//! `GET /openapi.json`: the OpenAPI 3.1 description of the API, generated
//! from the handlers' `#[utoipa::path]` attributes and their typed bodies.
//! Every operation also answers problem+json (RFC 9457) on error: added
//! here as each operation's `default` response; operation ids are
//! `{tag}_{handler}`.
//!
//! Not described, on purpose: `/cdn/{*path}` (mode local's stand-in for
//! CloudFront, not part of the API in mode aws) and `/demo*` (a developer
//! page in mode local). `tests/api/openapi.rs` holds the description and
//! the router to each other.

use crate::http::problem::{PROBLEM_JSON, Problem};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use std::sync::OnceLock;
use utoipa::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "playgate",
        description = "Secure playback gateway and CloudFront edge signer for video on demand.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        super::ops::healthz,
        super::ops::readyz,
        super::ops::metrics,
        openapi_json,
        super::viewer::me,
        super::play::master,
        super::play::mpd,
        super::play::session,
        super::play::media,
        super::keys::key,
        super::sign::cookies,
        super::sign::urls,
        super::assets::list,
        super::assets::get,
        super::assets::put,
        super::assets::delete,
        super::tiers::list,
        super::tiers::get,
        super::tiers::put,
        super::tiers::delete,
        super::uploads::create_upload,
        super::uploads::put_source,
        super::uploads::complete_upload,
        super::uploads::transcode,
        super::uploads::job,
        super::uploads::cancel,
        super::hooks::mediaconvert,
    ),
    components(schemas(Problem)),
    modifiers(&Conventions),
    tags(
        (name = "playback", description = "Viewers: authorised manifests, signed media playlists, content keys"),
        (name = "signing", description = "Backends: CloudFront signed cookies and URLs"),
        (name = "assets", description = "Operators: assets"),
        (name = "tiers", description = "Operators: tier rules"),
        (name = "pipeline", description = "Uploads, encodes, jobs, MediaConvert events"),
        (name = "viewers", description = "What playgate makes of a viewer token"),
        (name = "operations", description = "Health, readiness, metrics, this description"),
    ),
)]
pub struct ApiDoc;

/// The security schemes, and problem+json as every operation's `default`.
struct Conventions;

impl utoipa::Modify for Conventions {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let bearer = |what: &str| {
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(what))
                    .build(),
            )
        };
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "viewer",
            bearer("A viewer JWT from a configured issuer, with a tier claim."),
        );
        components.add_security_scheme(
            "viewer_query",
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
                "token",
                "The viewer JWT in the query, for players that cannot set headers (master and MPD only).",
            ))),
        );
        components.add_security_scheme(
            "service",
            bearer("An API key or a service JWT with the playgate:sign scope."),
        );
        components.add_security_scheme(
            "admin",
            bearer("An API key or a JWT with the playgate:admin scope."),
        );
        components.add_security_scheme(
            "ingest",
            bearer("An API key or a JWT with the playgate:ingest scope."),
        );
        components.add_security_scheme(
            "hook",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                super::hooks::SECRET_HEADER,
                "notify.mediaconvert_hook_secret, as the EventBridge API destination sends it.",
            ))),
        );
        components.add_security_scheme(
            "key_token",
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
                "kt",
                "A key token, as the gateway puts it on the key URIs of URL-delivery playlists.",
            ))),
        );
        components.add_security_scheme(
            "key_cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::protect::COOKIE,
                "The key token cookie the master and session set.",
            ))),
        );
        let problem = ResponseBuilder::new()
            .description("A problem (RFC 9457)")
            .content(
                PROBLEM_JSON,
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build(),
            )
            .build();
        for item in api.paths.paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                // Handler names repeat across resources (`list`, `get`):
                // the tag makes each operation id unique.
                if let (Some(tag), Some(id)) = (
                    op.tags.as_ref().and_then(|t| t.first()),
                    op.operation_id.as_mut(),
                ) && !id.starts_with(tag.as_str())
                {
                    *id = format!("{tag}_{id}");
                }
                op.responses
                    .responses
                    .entry("default".to_owned())
                    .or_insert_with(|| problem.clone().into());
            }
        }
    }
}

/// The description as JSON, made once.
pub fn document() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| ApiDoc::openapi().to_pretty_json().unwrap_or_default())
}

/// This description.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 description", body = Object)))]
pub async fn openapi_json() -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        document(),
    )
        .into_response()
}

/// This resource's routes.
pub fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing::get;
    axum::Router::new().route("/openapi.json", get(openapi_json))
}
