//! Media playlist signing: 1,200 segments (a two-hour VOD at 6 s) with the
//! full signed query on every URI. Target (DESIGN.md): ≤ 150 µs.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

fn playlist(segments: usize) -> String {
    let mut s = String::from(
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:6\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-MAP:URI=\"init.mp4\"\n",
    );
    for i in 0..segments {
        s.push_str(&format!("#EXTINF:6.006,\nseg_{i:05}.m4s\n"));
    }
    s.push_str("#EXT-X-ENDLIST\n");
    s
}

fn bench(c: &mut Criterion) {
    let p = playlist(1200);
    // A realistic custom-policy query: ~180 B policy, 344 B RSA signature.
    let query = format!(
        "Policy={}&Signature={}&Key-Pair-Id=K2JCJMDEHXQW5F",
        "e".repeat(240),
        "s".repeat(344)
    );
    c.bench_function("media_sign_1200_segments", |b| {
        b.iter(|| playgate::hls::media::sign(black_box(p.as_bytes()), black_box(&query)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
