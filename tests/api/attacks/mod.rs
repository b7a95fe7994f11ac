//! The attack suite: one test per way across a trust boundary, read as a
//! list of attack → refusal. Each was seen to fail on the code before its
//! check existed (issue 17).
//!
//! Uploader (`playgate:ingest`), `uploads.rs`:
//! - an HLS playlist named `evil.mp4` pointing at another asset's premium
//!   segments → job `ERROR` "source is not a supported media container…",
//!   nothing published (`a_playlist_posing_as_an_mp4_cannot_copy_another_asset`);
//! - `file:///outside/secret.ts` in a playlist, relative ffconcat entries →
//!   the same, no outside bytes stored (`references_to_files_outside_the_root_are_not_followed`);
//! - a live playlist (ffmpeg would wait forever), `data:` and `subfile`
//!   URIs, an SDP description, a still image → the same, promptly
//!   (`playlists_descriptions_and_images_are_refused_promptly`);
//! - a playlist over HTTP pointing at a loopback server (SSRF in mode aws)
//!   → the same, and the server sees no request
//!   (`tests/contract/jobs.rs`, `run_jobs`, the SSRF step);
//! - an encode past its wall-clock limit → killed with its process group,
//!   job `ERROR` naming the limit (`an_encode_past_its_time_limit_is_killed_and_the_job_says_so`);
//! - `x.m3u8`, `list.ffconcat`, no extension, a `Content-Type` with CR/LF
//!   or two types → 400/415 when the upload is declared
//!   (`names_and_types_are_checked_when_the_upload_is_declared`);
//! - two PUTs racing for one upload → one 409, the record's SHA-256 is the
//!   bytes on disk (`racing_uploads_leave_the_winners_bytes_under_the_winners_hash`);
//! - and real MP4, MOV, MKV, WebM and MPEG-TS sources still encode
//!   (`real_containers_still_encode`).
//!
//! Viewer (JWT), `tokens.rs`:
//! - no `aud`, `"aud":123`, `"aud":{"x":1}`, … with an audience configured
//!   → 401 (`a_missing_or_malformed_audience_is_401`);
//! - `?%74oken=<JWT>` and every other spelling of a secret query name →
//!   `[redacted]` in the access log (`secret_query_values_are_redacted_however_the_name_is_encoded`).
//!
//! Operator (`playgate:admin`) and backend (`playgate:sign`), `lifetimes.rs`:
//! - a tier's `signature_ttl = "5000y"`, `playlist_ttl` over
//!   `signing.max_ttl` → 400 naming the field, in the API and the config
//!   (`tier_lifetimes_above_the_signing_limit_are_refused`);
//! - such a tier already stored → every grant still ends within
//!   `signing.max_ttl`; `9000y` no longer panics (`stored_lifetimes_are_capped_when_signing`);
//! - any panic → a 500 problem with the request id, the connection kept
//!   (`a_panicking_handler_is_an_opaque_500_problem`).
//!
//! Backend (`playgate:sign`) and the edge, `signing.rs`:
//! - `{cdn}/assets/*`, `…/source/*`, `assets/../playgate.db`, `%2e%2e`,
//!   `%2f`, `v1*`, an unknown asset or unpublished version → 400
//!   (`grants_stay_inside_one_assets_published_output`);
//! - a valid signature for `assets/{id}/source/…` → 403 at the edge
//!   (`the_edge_never_serves_an_uploaded_source`);
//! - 16 concurrent whole and ranged reads of a 500 MB object → peak RSS
//!   under 100 MiB (`big_objects_are_streamed_by_the_edge`).
//!
//! Other sites' pages, `cors.rs`:
//! - `Origin: https://evil.example` with credentials → no CORS headers;
//!   `*` → `*` without credentials (`credentials_go_only_to_listed_origins`);
//! - preflights → 2xx per the Fetch standard for listed origins only
//!   (`preflights_are_answered_per_the_fetch_standard`);
//! - hls.js in Chromium on an unlisted origin → `manifestLoadError`; on a
//!   listed one it plays (`hlsjs_plays_from_a_listed_page_origin_only`).
//!
//! EventBridge and the demo, `boundaries.rs`:
//! - a `CANCELED` without `asset_id`, for another asset or MediaConvert
//!   job, or for a job ffmpeg runs here → not applied
//!   (`hook_events_touch_only_the_mediaconvert_job_they_name`);
//! - the hook secret is compared as fixed-size digests
//!   (`src/http/hooks.rs`, `comparison_time_does_not_depend_on_the_length`);
//! - `/demo/token` through a proxy (`Forwarded`, `X-Forwarded-For`) or on
//!   a gateway listening beyond loopback → 404
//!   (`the_demo_token_is_refused_through_a_proxy_and_off_loopback`).

mod boundaries;
mod cors;
mod lifetimes;
mod signing;
mod tokens;
mod uploads;
