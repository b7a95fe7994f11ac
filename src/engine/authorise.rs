//! What a tier's viewer receives for a master playlist: the filtered
//! master with its URIs rewritten for the delivery, and one signature per
//! allowed rendition scope, so the edge opens exactly those renditions.
//! Pure: no HTTP, no I/O. The caller hands in what it fetched (the media
//! playlists' URIs) and how to sign (so it can cache signatures per scope
//! and expiry bucket).
//!
//! - Cookie delivery: URIs become absolute CDN URLs; each scope becomes a
//!   cookie triple with the scope's directory as `Path`. Needs a
//!   path-separable layout, and says so when there is none.
//! - URL delivery: each rendition's media playlist URI points at the
//!   gateway's `/v1/play/{asset}/hls/{rest}` with the signature of the
//!   rendition's scope; the gateway serves that media playlist with the same
//!   signature on every URI.

use crate::engine::cloudfront::signer::{SignError, Signature};
use crate::engine::dash::mpd::{MpdError, MpdOptions};
use crate::engine::hls::master::{Filtered, MasterUri, UriKind, rewrite};
use crate::engine::hls::scope::{Scope, ScopeError, Scopes, scopes};
use crate::engine::hls::{HlsError, media};
use crate::engine::tiers::{Delivery, TierRules};
use std::collections::HashMap;
use std::time::Duration;
use url::Url;

#[derive(Debug, thiserror::Error)]
pub enum PlaybackError {
    #[error(transparent)]
    Hls(#[from] HlsError),
    #[error(transparent)]
    Scope(#[from] ScopeError),
    #[error("rendition URI {0:?} cannot be resolved to an http(s) URL")]
    Unresolvable(String),
    #[error(
        "rendition URI {0:?} uses a variable the master does not define (a QUERYPARAM missing from the master URL?)"
    )]
    UndefinedVariable(String),
    #[error(
        "cookie delivery needs one directory per rendition, and this asset's layout has none; use URL delivery"
    )]
    NotPathSeparable,
    #[error(
        "URL delivery needs media playlists under {{cdn}}/assets/{{id}}/v{{n}}/hls/, and {0} is not"
    )]
    NotGatewayLayout(String),
    #[error(transparent)]
    Sign(#[from] SignError),
    #[error(transparent)]
    Mpd(#[from] MpdError),
}

/// Where things live: the CDN that serves `assets/…` and the gateway.
#[derive(Debug, Clone)]
pub struct Layout<'a> {
    /// e.g. `https://cdn.example.com` (no trailing slash needed).
    pub cdn_base: &'a str,
    /// e.g. `https://play.example.com`.
    pub gateway: &'a str,
}

impl Layout<'_> {
    /// `{cdn}/assets/{id}/v{n}/hls/{rest}` → `{gateway}/v1/play/{id}/hls/{rest}`.
    pub fn gateway_media_url(&self, cdn_url: &Url) -> Option<String> {
        let s = cdn_url.as_str();
        let rest = s
            .strip_prefix(self.cdn_base.trim_end_matches('/'))?
            .strip_prefix("/assets/")?;
        let (asset, rest) = rest.split_once('/')?;
        let (version, rest) = rest.split_once('/')?;
        let rest = rest.strip_prefix("hls/")?;
        let versioned = version
            .strip_prefix('v')
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if !versioned || crate::domain::AssetId::parse(asset).is_err() || rest.is_empty() {
            return None;
        }
        Some(format!(
            "{}/v1/play/{asset}/hls/{rest}",
            self.gateway.trim_end_matches('/')
        ))
    }
}

/// `now + ttl`, rounded up to the next multiple of `bucket`, so every
/// viewer inside one bucket shares one signature.
pub fn expiry(now: u64, ttl: Duration, bucket: Duration) -> u64 {
    let raw = now.saturating_add(ttl.as_secs());
    let b = bucket.as_secs().max(1);
    raw.div_ceil(b).saturating_mul(b)
}

/// One allowed rendition scope and its signature.
#[derive(Debug, Clone)]
pub struct Grant {
    pub scope: Scope,
    pub signature: Signature,
}

/// The authorised master.
#[derive(Debug, Clone)]
pub struct Authorised {
    pub playlist: String,
    pub grants: Vec<Grant>,
}

fn url_of(u: &MasterUri) -> Result<&Url, PlaybackError> {
    u.url.as_ref().ok_or_else(|| {
        if u.uri.contains("{$") {
            PlaybackError::UndefinedVariable(u.uri.clone())
        } else {
            PlaybackError::Unresolvable(u.uri.clone())
        }
    })
}

/// The allowed renditions' playlist URLs (each once, even when two tags
/// name one playlist) and their scopes, given what each rendition uses
/// (`media_uris`: the server reads the media playlist; with the master
/// alone, pass the playlist URL itself). A forbidden rendition's playlist
/// is never inside a scope, even when an allowed rendition lists it.
pub fn scope_master(
    filtered: &Filtered,
    mut media_uris: impl FnMut(&Url) -> Result<Vec<Url>, PlaybackError>,
) -> Result<(Vec<Url>, Scopes), PlaybackError> {
    let mut allowed: Vec<Url> = Vec::new();
    for u in filtered.kept.iter().filter(|u| u.kind.is_rendition()) {
        let url = url_of(u)?;
        if !allowed.contains(url) {
            allowed.push(url.clone());
        }
    }
    let allowed_uris = allowed
        .iter()
        .map(&mut media_uris)
        .collect::<Result<Vec<_>, _>>()?;
    let mut forbidden = Vec::new();
    let mut playlists = Vec::new();
    for u in &filtered.removed {
        let url = url_of(u)?;
        forbidden.extend(media_uris(url)?);
        if u.kind.is_rendition() && !allowed.contains(url) {
            playlists.push(url.clone());
        }
    }
    let scoped = scopes(&allowed_uris, &forbidden, &playlists)?;
    Ok((allowed, scoped))
}

/// Why a delivery cannot carry this tier on this layout, if it cannot.
pub fn delivery_problem(
    allowed: &[Url],
    scoped: &Scopes,
    delivery: Delivery,
    layout: &Layout<'_>,
) -> Option<PlaybackError> {
    match delivery {
        Delivery::Cookies if !scoped.path_separable => Some(PlaybackError::NotPathSeparable),
        Delivery::Cookies => None,
        Delivery::Urls => allowed
            .iter()
            .find(|u| layout.gateway_media_url(u).is_none())
            .map(|u| PlaybackError::NotGatewayLayout(u.to_string())),
    }
}

/// What a tier asking for `asked` gets on this layout.
#[derive(Debug)]
pub enum Deliverable {
    /// The delivery asked for.
    Asked(Delivery),
    /// The tier's `fallback` (cookies cannot carry this layout).
    Fallback(Delivery),
    /// Neither: why, and the delivery that would work, if any.
    Unavailable {
        why: PlaybackError,
        works: Option<Delivery>,
    },
}

/// Whether `asked` (else `fallback`) can carry the tier on this layout.
pub fn deliverable(
    allowed: &[Url],
    scoped: &Scopes,
    asked: Delivery,
    fallback: Option<Delivery>,
    layout: &Layout<'_>,
) -> Deliverable {
    let Some(why) = delivery_problem(allowed, scoped, asked, layout) else {
        return Deliverable::Asked(asked);
    };
    let other = match asked {
        Delivery::Cookies => Delivery::Urls,
        Delivery::Urls => Delivery::Cookies,
    };
    let works = delivery_problem(allowed, scoped, other, layout)
        .is_none()
        .then_some(other);
    match works {
        Some(w) if fallback == Some(w) => Deliverable::Fallback(w),
        _ => Deliverable::Unavailable { why, works },
    }
}

/// Builds what the viewer gets. `media_uris` as for `scope_master`; `sign`
/// signs a scope's pattern.
pub fn authorise_master(
    filtered: &Filtered,
    master_url: &Url,
    delivery: Delivery,
    layout: &Layout<'_>,
    media_uris: impl FnMut(&Url) -> Result<Vec<Url>, PlaybackError>,
    sign: impl FnMut(&Scope) -> Result<Signature, SignError>,
) -> Result<Authorised, PlaybackError> {
    let (allowed, scoped) = scope_master(filtered, media_uris)?;
    if let Some(why) = delivery_problem(&allowed, &scoped, delivery, layout) {
        return Err(why);
    }
    authorise_scoped(
        filtered, master_url, delivery, layout, &allowed, &scoped, sign,
    )
}

/// `authorise_master` once the scopes are known (and the delivery checked
/// with `delivery_problem`). Cookie delivery signs one scope per cookie
/// path; URL delivery signs, for each rendition, the scope holding its
/// media playlist (the gateway signs the rest when it serves that
/// playlist, see `Play::signed_media`).
pub fn authorise_scoped(
    filtered: &Filtered,
    master_url: &Url,
    delivery: Delivery,
    layout: &Layout<'_>,
    allowed: &[Url],
    scoped: &Scopes,
    mut sign: impl FnMut(&Scope) -> Result<Signature, SignError>,
) -> Result<Authorised, PlaybackError> {
    let mut grants: Vec<Grant> = Vec::new();
    let mut grant_of = |scope: &Scope| -> Result<usize, PlaybackError> {
        if let Some(at) = grants.iter().position(|g| g.scope == *scope) {
            return Ok(at);
        }
        let signature = sign(scope)?;
        grants.push(Grant {
            scope: scope.clone(),
            signature,
        });
        Ok(grants.len() - 1)
    };
    let playlist = match delivery {
        Delivery::Cookies => {
            let dirs = scoped
                .cookies
                .as_ref()
                .ok_or(PlaybackError::NotPathSeparable)?;
            for scope in dirs {
                grant_of(scope)?;
            }
            rewrite(&filtered.playlist, master_url, |_, _| None)?
        }
        Delivery::Urls => {
            let mut by_url: HashMap<String, usize> = HashMap::new();
            for (i, u) in allowed.iter().enumerate() {
                let scope = scoped
                    .covering(i, u)
                    .ok_or(PlaybackError::Scope(ScopeError::Overlap(i)))?;
                by_url.insert(u.to_string(), grant_of(scope)?);
            }
            let mut unmapped = None;
            let out = rewrite(&filtered.playlist, master_url, |kind, url| {
                if kind == UriKind::Other {
                    return None;
                }
                let grant = &grants[*by_url.get(url.as_str())?];
                match layout.gateway_media_url(url) {
                    Some(g) => Some(grant.signature.append_to(&g)),
                    None => {
                        unmapped.get_or_insert_with(|| url.to_string());
                        None
                    }
                }
            })?;
            if let Some(u) = unmapped {
                return Err(PlaybackError::NotGatewayLayout(u));
            }
            out
        }
    };
    Ok(Authorised { playlist, grants })
}

/// The authorised MPD.
#[derive(Debug)]
pub struct AuthorisedMpd {
    pub mpd: String,
    pub grants: Vec<Grant>,
    /// The kept representations' ids.
    pub renditions: Vec<String>,
}

/// What a tier's viewer of an MPD gets: the MPD filtered for `rules`, and
/// one signed cookie scope per rendition directory (DASH is delivered with
/// cookies only, so a layout without a directory per rendition is
/// `NotPathSeparable`). The DASH twin of `authorise_master`.
pub fn authorise_mpd(
    mpd: &[u8],
    mpd_url: &Url,
    rules: &TierRules,
    mut sign: impl FnMut(&Scope) -> Result<Signature, SignError>,
) -> Result<AuthorisedMpd, PlaybackError> {
    let opts = MpdOptions {
        url: Some(mpd_url),
        signed_query: None,
    };
    let filtered = crate::engine::dash::mpd::filter(mpd, rules, &opts)?;
    let dirs = filtered
        .scopes()?
        .cookies
        .ok_or(PlaybackError::NotPathSeparable)?;
    let mut grants = Vec::with_capacity(dirs.len());
    for scope in dirs {
        let signature = sign(&scope)?;
        grants.push(Grant { scope, signature });
    }
    let renditions = filtered
        .renditions
        .iter()
        .filter(|r| r.kept)
        .map(|r| r.id.clone())
        .collect();
    Ok(AuthorisedMpd {
        mpd: filtered.mpd,
        grants,
        renditions,
    })
}

/// The media playlist a URL-delivery viewer gets: URIs made absolute
/// against the playlist's CDN URL, each carrying `signature`.
pub fn signed_media_playlist(
    media: &[u8],
    cdn_url: &Url,
    signature: &Signature,
) -> Result<String, HlsError> {
    media::sign_at(media, &signature.query(), Some(cdn_url))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_urls_come_only_from_the_asset_layout() {
        let l = Layout {
            cdn_base: "https://cdn.example.com/",
            gateway: "https://play.example.com",
        };
        let map = |u: &str| l.gateway_media_url(&Url::parse(u).unwrap());
        assert_eq!(
            map("https://cdn.example.com/assets/a1/v3/hls/720p/index.m3u8").as_deref(),
            Some("https://play.example.com/v1/play/a1/hls/720p/index.m3u8")
        );
        for bad in [
            "https://other.example.com/assets/a1/v3/hls/720p/index.m3u8",
            "https://cdn.example.com/assets/a1/3/hls/720p/index.m3u8",
            "https://cdn.example.com/assets/a1/v3/dash/720p/index.m3u8",
            "https://cdn.example.com/assets/../v3/hls/x.m3u8",
            "https://cdn.example.com/assets/a1/v3/hls/",
        ] {
            assert_eq!(map(bad), None, "{bad}");
        }
    }

    #[test]
    fn expiry_rounds_up_to_the_bucket() {
        let m5 = Duration::from_secs(300);
        assert_eq!(expiry(1_000, Duration::from_secs(7200), m5), 8_400);
        assert_eq!(expiry(1_200, Duration::from_secs(7200), m5), 8_400);
        assert_eq!(expiry(1_201, Duration::from_secs(7200), m5), 8_700);
        assert_eq!(expiry(5, Duration::ZERO, Duration::ZERO), 5);
    }

    #[test]
    fn an_mpd_gets_one_signed_cookie_scope_per_kept_directory() {
        use crate::engine::cloudfront::keys::{SigningKey, generate};
        use crate::engine::cloudfront::signer::SignOptions;
        let mpd = include_bytes!("../../tests/fixtures/dash/ffmpeg_live_profile.mpd");
        let url = Url::parse("https://cdn.example.com/assets/a/v1/dash/manifest.mpd").unwrap();
        let free = crate::engine::tiers::free_tier();
        let (pem, _) = generate(false).unwrap();
        let id = crate::domain::KeyPairId::parse("KTESTKEY01").unwrap();
        let key = SigningKey::from_pem(id, &pem, "test key").unwrap();
        let opts = SignOptions {
            expires: 2_000_000_000,
            ..SignOptions::default()
        };
        let got = authorise_mpd(mpd, &url, &free, |scope| {
            Signature::for_resource(&key, &scope.pattern(), &opts)
        })
        .unwrap();
        // The same MPD, scopes and renditions as the filter alone gives.
        let opts_mpd = MpdOptions {
            url: Some(&url),
            signed_query: None,
        };
        let f = crate::engine::dash::mpd::filter(mpd, &free, &opts_mpd).unwrap();
        assert_eq!(got.mpd, f.mpd);
        let dirs = f.scopes().unwrap().cookies.unwrap();
        assert!(!dirs.is_empty());
        let scopes: Vec<_> = got.grants.iter().map(|g| &g.scope).collect();
        assert_eq!(scopes, dirs.iter().collect::<Vec<_>>());
        let kept: Vec<_> = f
            .renditions
            .iter()
            .filter(|r| r.kept)
            .map(|r| r.id.clone())
            .collect();
        assert_eq!(got.renditions, kept);
        assert!(
            got.renditions.len() < f.renditions.len(),
            "the free tier keeps everything"
        );
        // A refused signature refuses the MPD; nothing is half signed.
        let refused = authorise_mpd(mpd, &url, &free, |_| Err(SignError::Crypto));
        assert!(matches!(
            refused,
            Err(PlaybackError::Sign(SignError::Crypto))
        ));
        // A tier that may play nothing.
        let none = TierRules {
            max_height: Some(1),
            ..TierRules::default()
        };
        let nothing = authorise_mpd(mpd, &url, &none, |_| Err(SignError::Crypto));
        assert!(matches!(
            nothing,
            Err(PlaybackError::Mpd(MpdError::NoVideoVariant))
        ));
    }
}
