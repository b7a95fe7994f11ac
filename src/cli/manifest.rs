//! `playgate manifest filter|sign`: what a tier's viewer gets, offline.

use super::{DeliveryArg, Fail, ManifestCommand, load_config};
use crate::clock::{Clock, SystemClock};
use crate::domain::TierName;
use crate::engine::cloudfront::keys::KeyRing;
use crate::engine::cloudfront::signer::{SignOptions, Signature};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub(super) fn read_input(file: &str) -> Result<Vec<u8>, Fail> {
    use std::io::Read;
    let mut buf = Vec::new();
    if file == "-" {
        std::io::stdin()
            .take(crate::engine::hls::MAX_PLAYLIST_BYTES as u64 + 1)
            .read_to_end(&mut buf)
            .map_err(|e| Fail(format!("standard input: {e}")))?;
    } else {
        let f = std::fs::File::open(file).map_err(|e| Fail(format!("{file}: {e}")))?;
        f.take(crate::engine::hls::MAX_PLAYLIST_BYTES as u64 + 1)
            .read_to_end(&mut buf)
            .map_err(|e| Fail(format!("{file}: {e}")))?;
    }
    Ok(buf)
}

pub(super) fn parse_url(arg: &str) -> Result<url::Url, Fail> {
    let url = url::Url::parse(arg).map_err(|e| Fail(format!("--url {arg:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Fail(format!("--url {arg:?}: must be http(s)")));
    }
    Ok(url)
}

pub(super) fn manifest(cmd: ManifestCommand) -> Result<ExitCode, Fail> {
    match cmd {
        ManifestCommand::Filter {
            config,
            tier,
            url,
            delivery,
            media,
            file,
        } => manifest_filter(&config, &tier, &url, delivery, media, &file),
        ManifestCommand::Sign { query, url, file } => {
            if query.is_empty()
                || query
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '#'))
            {
                return Err(Fail(
                    "--query must be a URL query without spaces, quotes or '#'".into(),
                ));
            }
            let url = parse_url(&url)?;
            let input = read_input(&file)?;
            let out = crate::engine::hls::media::sign_at(&input, &query, Some(&url))
                .map_err(|e| Fail(format!("{file}: {e}")))?;
            print!("{out}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The media playlist behind `playlist` (a URL under the master's
/// directory `base`) in the local directory `media`, if it is there.
pub(super) fn local_media(media: &Path, base: &url::Url, playlist: &url::Url) -> Option<Vec<u8>> {
    let dir = &base.as_str()[..base.as_str().rfind('/')? + 1];
    let rest = playlist
        .as_str()
        .split(['?', '#'])
        .next()?
        .strip_prefix(dir)?;
    let rest = percent_encoding::percent_decode_str(rest)
        .decode_utf8()
        .ok()?;
    if rest
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return None;
    }
    std::fs::read(media.join(rest.as_ref())).ok()
}

pub(super) fn manifest_filter(
    path: &Path,
    tier: &str,
    url: &str,
    delivery: Option<DeliveryArg>,
    media: Option<PathBuf>,
    file: &str,
) -> Result<ExitCode, Fail> {
    use crate::engine::authorise::{Layout, PlaybackError, authorise_master, expiry};
    use crate::engine::tiers::Delivery;
    let config = load_config(path)?;
    let name = TierName::parse(tier)?;
    let rules = config
        .tiers
        .get(&name)
        .ok_or_else(|| Fail(format!("no tier named {name} in {}", path.display())))?;
    let url = parse_url(url)?;
    let delivery = match delivery {
        Some(DeliveryArg::Cookies) => Delivery::Cookies,
        Some(DeliveryArg::Urls) => Delivery::Urls,
        None => rules.delivery,
    };
    let input = read_input(file)?;
    let nothing_left = || {
        eprintln!("playgate: nothing playable remains for tier {name}");
        Ok(ExitCode::from(3))
    };
    let head = input.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&input);
    if head.trim_ascii_start().starts_with(b"<") {
        if delivery == Delivery::Urls {
            return Err(Fail(
                "DASH manifests are served with cookie delivery; pass --delivery cookies".into(),
            ));
        }
        let opts = crate::engine::dash::mpd::MpdOptions {
            url: Some(&url),
            signed_query: None,
        };
        let f = match crate::engine::dash::mpd::filter(&input, rules, &opts) {
            Err(crate::engine::dash::mpd::MpdError::NoVideoVariant) => return nothing_left(),
            other => other.map_err(|e| Fail(format!("{file}: {e}")))?,
        };
        print!("{}", f.mpd);
        return Ok(ExitCode::SUCCESS);
    }
    let filtered = match crate::engine::hls::master::filter(&input, rules, Some(&url)) {
        Err(crate::engine::hls::master::MasterError::NoVideoVariant) => return nothing_left(),
        other => other.map_err(|e| Fail(format!("{file}: {e}")))?,
    };
    let ring = KeyRing::from_specs(&config.signing.active, &config.signing.keys)?;
    let ttl = rules
        .signature_ttl
        .map_or(config.signing.default_ttl, |d| d.0)
        .min(config.signing.max_ttl);
    let expires = expiry(SystemClock.now_epoch(), ttl, config.signing.expiry_bucket);
    let layout = Layout {
        cdn_base: &config.cdn.base_url,
        gateway: &config.server.public_url,
    };
    // The media playlists beside the master (or in --media), read as the
    // server reads them; without them a scope is only the playlist's own
    // directory or name, which URL delivery cannot use (a flat layout's
    // `…/title_360p.m3u8*` does not open `title_360p_00000.ts`).
    let media_dir = media.or_else(|| {
        (file != "-").then(|| {
            Path::new(file)
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default()
        })
    });
    let mut unseen = None;
    let out = authorise_master(
        &filtered,
        &url,
        delivery,
        &layout,
        |u| match media_dir.as_deref().and_then(|d| local_media(d, &url, u)) {
            Some(bytes) => Ok(crate::engine::hls::scope::media_uris(u, &bytes)?),
            None => {
                unseen.get_or_insert_with(|| u.to_string());
                Ok::<_, PlaybackError>(vec![u.clone()])
            }
        },
        |scope| {
            Signature::for_resource(
                ring.active(),
                &scope.pattern(),
                &SignOptions {
                    expires,
                    hash: config.signing.hash,
                    ..Default::default()
                },
            )
        },
    )
    .map_err(|e| Fail(e.to_string()))?;
    if let (Some(u), Delivery::Urls) = (&unseen, delivery) {
        return Err(Fail(format!(
            "URL delivery signs what each media playlist lists, and {u} is not {}; pass --media DIR (the directory the master's URIs are relative to)",
            match &media_dir {
                Some(d) => format!("under {}", d.display()),
                None => "readable (the master came from standard input)".into(),
            }
        )));
    }
    if let Some(u) = &unseen {
        eprintln!(
            "note: {u} is not beside the master; its scope is its playlist's directory (pass --media DIR to read it)"
        );
    }
    print!("{}", out.playlist);
    for g in &out.grants {
        match g.scope.cookie_path() {
            Some(p) if delivery == Delivery::Cookies => {
                eprintln!("scope {} (cookie Path={p})", g.scope.pattern());
            }
            _ => eprintln!("scope {}", g.scope.pattern()),
        }
    }
    Ok(ExitCode::SUCCESS)
}
