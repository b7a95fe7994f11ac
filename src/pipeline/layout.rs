//! Making a published HLS tree path-separable before an asset points at
//! it. Cookie delivery needs one directory per rendition (a cookie's `Path`
//! matches whole path segments), and no encoder promises that layout:
//! MediaConvert's documented naming puts child manifests
//! (`{destination}{nameModifier}.m3u8`) beside the master, and with
//! `SINGLE_DIRECTORY` its segments too; `SUBDIRECTORY_PER_STREAM` is
//! documented only as "whether segments should be placed in
//! subdirectories". So playgate does not depend on either: it reads the
//! master and every playlist it names, and when some rendition's files
//! share a directory with another's, it copies each rendition into
//! `hls/{name}/` (server-side copies on S3), rewrites the media playlists
//! and the master to the new names, and only then deletes the old files.
//!
//! Renditions that share files (a variant and its I-frame playlist, which
//! points into the same segments) move together. A tree that is already
//! separable (ffmpeg's, playgate's own) is left as it is. Re-running after
//! an interruption is safe: the master is rewritten last, so either the
//! old names still work and the copy is redone, or the tree is separable.

use crate::backends::storage::{ObjectKey, ObjectStore, StorageError};
use crate::engine::hls::master::{MasterUri, UriKind};
use std::collections::{BTreeMap, BTreeSet};
use url::Url;

#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("{0} is missing")]
    Missing(String),
    #[error("{key}: {why}")]
    Unreadable { key: String, why: String },
    #[error(
        "{0} is outside the version's hls/ directory; playgate publishes only what the version holds"
    )]
    Outside(String),
    #[error(transparent)]
    Storage(StorageError),
}

/// What a published version holds, after `ensure_separable`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Separable {
    /// Each rendition group's directory under `hls/` (`360p`, `audio`),
    /// sorted.
    pub renditions: Vec<String>,
    /// How many files were moved into per-rendition directories.
    pub moved: usize,
}

/// A base URL to resolve playlist URIs against; never fetched.
const BASE: &str = "https://layout.invalid/";

fn key_of(url: &Url) -> Option<String> {
    if url.host_str() != Some("layout.invalid") || url.scheme() != "https" {
        return None;
    }
    let path = percent_encoding::percent_decode_str(url.path().trim_start_matches('/'))
        .decode_utf8()
        .ok()?;
    Some(path.into_owned())
}

fn dir_of(key: &str) -> &str {
    key.rfind('/').map_or("", |i| &key[..=i])
}

fn base_name(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or(key)
}

/// One rendition as the master names it, with every file it uses.
struct Rendition {
    /// The playlist's key.
    playlist: String,
    kind: UriKind,
    files: BTreeSet<String>,
}

/// Disjoint sets of renditions: those sharing any file are one.
fn groups(renditions: &[Rendition]) -> Vec<Vec<usize>> {
    let mut parent: Vec<usize> = (0..renditions.len()).collect();
    fn root(p: &mut [usize], i: usize) -> usize {
        let mut r = i;
        while p[r] != r {
            r = p[r];
        }
        p[i] = r;
        r
    }
    let mut owner: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, r) in renditions.iter().enumerate() {
        for f in &r.files {
            match owner.get(f.as_str()) {
                Some(&j) => {
                    let (a, b) = (root(&mut parent, i), root(&mut parent, j));
                    parent[a] = b;
                }
                None => {
                    owner.insert(f, i);
                }
            }
        }
    }
    let mut by_root: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for i in 0..renditions.len() {
        let r = root(&mut parent, i);
        by_root.entry(r).or_default().push(i);
    }
    let mut out: Vec<Vec<usize>> = by_root.into_values().collect();
    out.sort_by_key(|g| g[0]);
    out
}

/// The longest directory (ending in `/`) that holds every key.
fn common_dir<'a>(keys: impl IntoIterator<Item = &'a String>) -> String {
    let mut it = keys.into_iter();
    let Some(first) = it.next() else {
        return String::new();
    };
    let mut dir = dir_of(first).to_owned();
    for k in it {
        while !k.starts_with(&dir) {
            let trimmed = dir.trim_end_matches('/');
            dir = match trimmed.rfind('/') {
                Some(i) => trimmed[..=i].to_owned(),
                None => String::new(),
            };
        }
    }
    dir
}

/// `to` as a URI relative to the directory `from_dir` (both keys).
fn relative(from_dir: &str, to: &str) -> String {
    let from: Vec<&str> = from_dir.trim_end_matches('/').split('/').collect();
    let to_parts: Vec<&str> = to.split('/').collect();
    let common = from
        .iter()
        .zip(&to_parts)
        .take_while(|(a, b)| a == b)
        .count()
        .min(to_parts.len().saturating_sub(1));
    let mut out = "../".repeat(from.len() - common);
    out.push_str(&to_parts[common..].join("/"));
    out
}

/// A directory name for a group, from its playlist's file name less the
/// master's (`master_360p.m3u8` beside `master.m3u8` → `360p`).
fn name_for(playlist: &str, master_stem: &str, taken: &BTreeSet<String>, index: usize) -> String {
    let stem = base_name(playlist)
        .strip_suffix(".m3u8")
        .unwrap_or(base_name(playlist));
    let rest = stem.strip_prefix(master_stem).unwrap_or(stem);
    let clean: String = rest
        .trim_matches(['_', '-', '.'])
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    let name = if clean.is_empty() || clean == "hls" {
        format!("r{index}")
    } else {
        clean
    };
    if taken.contains(&name) {
        format!("{name}_{index}")
    } else {
        name
    }
}

async fn read(objects: &dyn ObjectStore, key: &str) -> Result<bytes::Bytes, LayoutError> {
    let k = ObjectKey::parse(key).map_err(|_| LayoutError::Outside(key.to_owned()))?;
    match objects.get(&k).await {
        Ok(b) => Ok(b),
        Err(StorageError::NotFound(_)) => Err(LayoutError::Missing(key.to_owned())),
        Err(e) => Err(LayoutError::Storage(e)),
    }
}

fn object_key(key: &str) -> Result<ObjectKey, LayoutError> {
    ObjectKey::parse(key).map_err(|_| LayoutError::Outside(key.to_owned()))
}

/// What `inspect` found: a separable tree, or the moves that make it one.
pub enum Inspection {
    Separable(Vec<String>),
    Moves(Box<Moves>),
}

/// The files to move (old key → new key), the playlists to rewrite, the
/// master, and the rendition directories they make.
pub struct Moves {
    hls: String,
    master_key: String,
    master_url: Url,
    master: bytes::Bytes,
    playlists: Vec<String>,
    moves: BTreeMap<String, String>,
    names: Vec<String>,
}

impl Moves {
    /// How many files move.
    pub fn len(&self) -> usize {
        self.moves.len()
    }

    pub fn is_empty(&self) -> bool {
        self.moves.is_empty()
    }
}

fn unreadable(key: &str, why: impl ToString) -> LayoutError {
    LayoutError::Unreadable {
        key: key.to_owned(),
        why: why.to_string(),
    }
}

/// One group master's variant: its attributes and URI.
struct Variant {
    attrs: Vec<(String, String)>,
    uri: String,
}

impl Variant {
    fn get(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
    fn number(&self, name: &str) -> Option<u64> {
        self.get(name)?.parse().ok()
    }
}

/// The `EXT-X-STREAM-INF` variants of a master (attributes as written).
fn variants(text: &str) -> Vec<Variant> {
    let mut out = Vec::new();
    let mut lines = text.lines().map(str::trim);
    while let Some(l) = lines.next() {
        let Some(list) = l.strip_prefix("#EXT-X-STREAM-INF:") else {
            continue;
        };
        let attrs = crate::engine::hls::attributes(list)
            .iter()
            .map(|a| (a.name.to_owned(), a.raw.to_owned()))
            .collect();
        if let Some(uri) = lines
            .by_ref()
            .find(|l| !l.is_empty() && !l.starts_with('#'))
        {
            out.push(Variant {
                attrs,
                uri: uri.to_owned(),
            });
        }
    }
    out
}

/// An encrypted MediaConvert job writes one group per rendition
/// (`hls/{rendition}/master.m3u8`, each listing its one output) and no
/// `hls/master.m3u8`: this writes that master from theirs — the audio
/// group's variant as the `EXT-X-MEDIA` audio rendition, each video
/// variant with the audio's bit rate and codec added and `AUDIO` naming
/// it. `Ok(false)` when there is a master already, or no group masters.
pub async fn compose_master(objects: &dyn ObjectStore, version: &str) -> Result<bool, LayoutError> {
    let hls = format!("{version}/hls/");
    let master_key = format!("{hls}master.m3u8");
    match objects.head(&object_key(&master_key)?).await {
        Ok(_) => return Ok(false),
        Err(StorageError::NotFound(_)) => {}
        Err(e) => return Err(LayoutError::Storage(e)),
    }
    let mut groups: Vec<String> = objects
        .list(&hls)
        .await
        .map_err(LayoutError::Storage)?
        .iter()
        .filter_map(|k| k.as_str().strip_prefix(&hls)?.strip_suffix("/master.m3u8"))
        .filter(|dir| !dir.contains('/'))
        .map(str::to_owned)
        .collect();
    if groups.is_empty() {
        return Ok(false);
    }
    groups.sort();
    let mut audio: Option<(String, Variant)> = None;
    let mut video: Vec<(String, Variant)> = Vec::new();
    for dir in groups {
        let key = format!("{hls}{dir}/master.m3u8");
        let text = read(objects, &key).await?;
        let text = std::str::from_utf8(&text).map_err(|e| unreadable(&key, e))?;
        let mut found = variants(text);
        if found.len() != 1 {
            return Err(unreadable(
                &key,
                "a rendition group's master lists one variant",
            ));
        }
        let v = found.remove(0);
        if v.uri.contains(['/', '?', '#', ':']) {
            return Err(unreadable(&key, "its variant is not a file beside it"));
        }
        if v.get("RESOLUTION").is_some() {
            video.push((dir, v));
        } else if audio.is_none() {
            audio = Some((dir, v));
        } else {
            return Err(unreadable(&key, "a second audio-only group"));
        }
    }
    if video.is_empty() {
        return Err(LayoutError::Missing(format!(
            "{hls}…: a video rendition group"
        )));
    }
    video.sort_by_key(|(_, v)| v.number("BANDWIDTH").unwrap_or(0));
    let mut m = String::from("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    if let Some((dir, a)) = &audio {
        m.push_str(&format!(
            "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"{AUDIO_GROUP}\",NAME=\"Audio\",DEFAULT=YES,AUTOSELECT=YES,URI=\"{dir}/{}\"\n",
            a.uri
        ));
    }
    for (dir, v) in &video {
        let mut attrs = Vec::new();
        for (name, raw) in &v.attrs {
            let value = match (name.as_str(), &audio) {
                ("BANDWIDTH" | "AVERAGE-BANDWIDTH", Some((_, a))) => {
                    let add = a.number(name).or(a.number("BANDWIDTH")).unwrap_or(0);
                    (raw.parse::<u64>().unwrap_or(0) + add).to_string()
                }
                ("CODECS", Some((_, a))) => match a.get("CODECS") {
                    Some(ac) => format!("\"{},{}\"", raw.trim_matches('"'), ac.trim_matches('"')),
                    None => raw.clone(),
                },
                ("AUDIO", _) => continue,
                _ => raw.clone(),
            };
            attrs.push(format!("{name}={value}"));
        }
        if audio.is_some() {
            attrs.push(format!("AUDIO=\"{AUDIO_GROUP}\""));
        }
        m.push_str(&format!(
            "#EXT-X-STREAM-INF:{}\n{dir}/{}\n",
            attrs.join(","),
            v.uri
        ));
    }
    objects
        .put(&object_key(&master_key)?, m.into_bytes().into())
        .await
        .map_err(LayoutError::Storage)?;
    Ok(true)
}

/// The audio group of a composed master.
const AUDIO_GROUP: &str = "program_audio";

/// Makes `{version}/hls/` (e.g. `assets/a/v3`) path-separable, moving files
/// when it is not; the rendition directories.
pub async fn ensure_separable(
    objects: &dyn ObjectStore,
    version: &str,
) -> Result<Separable, LayoutError> {
    match inspect(objects, version).await? {
        Inspection::Separable(renditions) => Ok(Separable {
            renditions,
            moved: 0,
        }),
        Inspection::Moves(m) => apply(objects, &m).await,
    }
}

/// Reads the master and every playlist it names (no writes): whether the
/// tree is separable, and if not, how to make it so.
pub async fn inspect(objects: &dyn ObjectStore, version: &str) -> Result<Inspection, LayoutError> {
    let hls = format!("{version}/hls/");
    let master_key = format!("{hls}master.m3u8");
    let master_url = Url::parse(&format!("{BASE}{master_key}"))
        .map_err(|e| LayoutError::Outside(e.to_string()))?;
    let master = read(objects, &master_key).await?;
    let all = crate::engine::tiers::TierRules::default();
    let filtered = crate::engine::hls::master::filter(&master, &all, Some(&master_url))
        .map_err(|e| unreadable(&master_key, e))?;
    let inside = |url: &Url| -> Result<String, LayoutError> {
        key_of(url)
            .filter(|k| k.starts_with(&hls) && ObjectKey::parse(k).is_ok())
            .ok_or_else(|| LayoutError::Outside(url.to_string()))
    };
    let mut renditions: Vec<Rendition> = Vec::new();
    for MasterUri { kind, url, .. } in filtered.kept.iter().filter(|u| u.kind.is_rendition()) {
        let Some(url) = url else { continue };
        let playlist = inside(url)?;
        if renditions.iter().any(|r| r.playlist == playlist) {
            continue;
        }
        let text = read(objects, &playlist).await?;
        let uris = crate::engine::hls::scope::media_uris(url, &text)
            .map_err(|e| unreadable(&playlist, e))?;
        let files = uris
            .iter()
            .map(inside)
            .collect::<Result<BTreeSet<_>, _>>()?;
        renditions.push(Rendition {
            playlist,
            kind: *kind,
            files,
        });
    }
    let groups = groups(&renditions);
    let dirs: Vec<String> = groups
        .iter()
        .map(|g| common_dir(g.iter().flat_map(|&i| &renditions[i].files)))
        .collect();
    let separable = dirs.iter().enumerate().all(|(gi, dir)| {
        dir.len() > hls.len()
            && groups.iter().enumerate().all(|(gj, other)| {
                gi == gj
                    || other
                        .iter()
                        .all(|&i| renditions[i].files.iter().all(|f| !f.starts_with(dir)))
            })
    });
    if separable {
        let mut names: Vec<String> = dirs
            .iter()
            .map(|d| d[hls.len()..].trim_end_matches('/').to_owned())
            .collect();
        names.sort();
        return Ok(Inspection::Separable(names));
    }

    // The new home of every file: `hls/{group}/{file name}`.
    let master_stem = "master";
    let mut taken = BTreeSet::new();
    let mut moves: BTreeMap<String, String> = BTreeMap::new();
    let mut names = Vec::new();
    for (gi, g) in groups.iter().enumerate() {
        // Named after its variant (a video or audio playlist), not its
        // I-frame playlist.
        let primary = g
            .iter()
            .copied()
            .find(|&i| !matches!(renditions[i].kind, UriKind::IFrame))
            .unwrap_or(g[0]);
        let name = name_for(&renditions[primary].playlist, master_stem, &taken, gi);
        taken.insert(name.clone());
        let mut used = BTreeSet::new();
        let files: BTreeSet<&String> = g.iter().flat_map(|&i| &renditions[i].files).collect();
        for f in files {
            let mut file = base_name(f).to_owned();
            let mut n = 1;
            while !used.insert(file.clone()) {
                file = format!("{n}_{}", base_name(f));
                n += 1;
            }
            moves.insert(f.clone(), format!("{hls}{name}/{file}"));
        }
        names.push(name);
    }
    Ok(Inspection::Moves(Box::new(Moves {
        hls,
        master_key,
        master_url,
        master,
        playlists: renditions.into_iter().map(|r| r.playlist).collect(),
        moves,
        names,
    })))
}

/// Carries out `m`: segments first (server-side copies), then the
/// rewritten media playlists, then the master; then the old files go.
pub async fn apply(objects: &dyn ObjectStore, m: &Moves) -> Result<Separable, LayoutError> {
    let playlists: BTreeSet<&str> = m.playlists.iter().map(String::as_str).collect();
    let mut moved = 0;
    for (from, to) in &m.moves {
        if playlists.contains(from.as_str()) || from == to {
            continue;
        }
        objects
            .copy(&object_key(from)?, &object_key(to)?)
            .await
            .map_err(LayoutError::Storage)?;
        moved += 1;
    }
    for playlist in &m.playlists {
        let text = read(objects, playlist).await?;
        let url = Url::parse(&format!("{BASE}{playlist}"))
            .map_err(|e| LayoutError::Outside(e.to_string()))?;
        let new_key = &m.moves[playlist];
        let new_dir = dir_of(new_key);
        let rewritten = crate::engine::hls::media::map_uris(&text, &url, |u| {
            let k = key_of(u)?;
            m.moves.get(&k).map(|to| relative(new_dir, to))
        })
        .map_err(|e| unreadable(playlist, e))?;
        objects
            .put(&object_key(new_key)?, rewritten.into())
            .await
            .map_err(LayoutError::Storage)?;
        moved += 1;
    }
    let text = std::str::from_utf8(&m.master).map_err(|e| unreadable(&m.master_key, e))?;
    let new_master = crate::engine::hls::master::rewrite(text, &m.master_url, |_, u| {
        let k = key_of(u)?;
        Some(relative(&m.hls, m.moves.get(&k).unwrap_or(&k)))
    })
    .map_err(|e| unreadable(&m.master_key, e))?;
    objects
        .put(&object_key(&m.master_key)?, new_master.into())
        .await
        .map_err(LayoutError::Storage)?;
    // What stays where it was (already in its directory) is not deleted.
    let kept: BTreeSet<&String> = m.moves.values().collect();
    for from in m.moves.keys().filter(|f| !kept.contains(f)) {
        if let Ok(k) = ObjectKey::parse(from) {
            let _ = objects.delete(&k).await;
        }
    }
    tracing::info!(master = %m.master_key, renditions = ?m.names, files = moved, "moved the renditions into one directory each");
    let mut renditions = m.names.clone();
    renditions.sort();
    Ok(Separable { renditions, moved })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn put(objects: &dyn ObjectStore, key: &str, text: &str) {
        objects
            .put(
                &ObjectKey::parse(key).unwrap(),
                text.as_bytes().to_vec().into(),
            )
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn the_master_of_an_encrypted_job_is_composed_from_its_groups() {
        let d = tempfile::tempdir().unwrap();
        let objects = crate::backends::storage::local::LocalStore::open(d.path()).unwrap();
        let v = "assets/a/v1";
        let head = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n";
        put(&objects, &format!("{v}/hls/360p/master.m3u8"), &format!("{head}#EXT-X-STREAM-INF:BANDWIDTH=900000,AVERAGE-BANDWIDTH=800000,RESOLUTION=640x360,FRAME-RATE=30.000,CODECS=\"avc1.64001e\"\nmaster_360p.m3u8\n")).await;
        put(&objects, &format!("{v}/hls/270p/master.m3u8"), &format!("{head}#EXT-X-STREAM-INF:BANDWIDTH=400000,RESOLUTION=480x270,CODECS=\"avc1.640015\"\nmaster_270p.m3u8\n")).await;
        put(
            &objects,
            &format!("{v}/hls/audio/master.m3u8"),
            &format!(
                "{head}#EXT-X-STREAM-INF:BANDWIDTH=160000,CODECS=\"mp4a.40.2\"\nmaster_audio.m3u8\n"
            ),
        )
        .await;
        put(
            &objects,
            &format!("{v}/hls/360p/master_360p.m3u8"),
            "#EXTM3U\n",
        )
        .await;
        assert!(compose_master(&objects, v).await.unwrap());
        let got = objects
            .get(&ObjectKey::parse(&format!("{v}/hls/master.m3u8")).unwrap())
            .await
            .unwrap();
        assert_eq!(
            std::str::from_utf8(&got).unwrap(),
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n\
             #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"program_audio\",NAME=\"Audio\",DEFAULT=YES,AUTOSELECT=YES,URI=\"audio/master_audio.m3u8\"\n\
             #EXT-X-STREAM-INF:BANDWIDTH=560000,RESOLUTION=480x270,CODECS=\"avc1.640015,mp4a.40.2\",AUDIO=\"program_audio\"\n270p/master_270p.m3u8\n\
             #EXT-X-STREAM-INF:BANDWIDTH=1060000,AVERAGE-BANDWIDTH=960000,RESOLUTION=640x360,FRAME-RATE=30.000,CODECS=\"avc1.64001e,mp4a.40.2\",AUDIO=\"program_audio\"\n360p/master_360p.m3u8\n"
        );
        // Once there, the master is kept (a second COMPLETE changes nothing).
        assert!(!compose_master(&objects, v).await.unwrap());
    }

    #[tokio::test]
    async fn a_group_master_pointing_elsewhere_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let objects = crate::backends::storage::local::LocalStore::open(d.path()).unwrap();
        let v = "assets/a/v1";
        assert!(
            !compose_master(&objects, v).await.unwrap(),
            "no groups: nothing to do"
        );
        put(
            &objects,
            &format!("{v}/hls/360p/master.m3u8"),
            "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,RESOLUTION=2x2\n../720p/master_720p.m3u8\n",
        )
        .await;
        let e = compose_master(&objects, v).await.unwrap_err();
        assert!(e.to_string().contains("not a file beside it"), "{e}");
    }

    #[test]
    fn directories_and_names() {
        let keys: Vec<String> = ["a/v1/hls/360p/i.m3u8", "a/v1/hls/360p/s/1.ts"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(common_dir(&keys), "a/v1/hls/360p/");
        let flat: Vec<String> = ["a/v1/hls/m_1.m3u8", "a/v1/hls/m_1_1.ts"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(common_dir(&flat), "a/v1/hls/");
        assert_eq!(relative("a/v1/hls/", "a/v1/hls/360p/i.m3u8"), "360p/i.m3u8");
        assert_eq!(relative("a/v1/hls/360p/", "a/v1/hls/360p/1.ts"), "1.ts");
        assert_eq!(
            relative("a/v1/hls/360p/", "a/v1/thumbs/t.jpg"),
            "../../thumbs/t.jpg"
        );
        let taken = BTreeSet::new();
        assert_eq!(
            name_for("a/v1/hls/master_360p.m3u8", "master", &taken, 0),
            "360p"
        );
        assert_eq!(
            name_for("a/v1/hls/master_audio.m3u8", "master", &taken, 1),
            "audio"
        );
        assert_eq!(name_for("a/v1/hls/master.m3u8", "master", &taken, 2), "r2");
        assert_eq!(name_for("a/v1/hls/x y.m3u8", "master", &taken, 3), "x_y");
        let taken: BTreeSet<String> = ["360p".to_owned()].into();
        assert_eq!(
            name_for("a/v1/hls/master_360p.m3u8", "master", &taken, 4),
            "360p_4"
        );
    }
}
