#!/usr/bin/env bash
# Makes a test clip in playgate's output layout with real ffmpeg:
#   OUT/hls/master.m3u8            (written here, with every attribute tiers filter on)
#   OUT/hls/{360p,480p,720p}/      index.m3u8, init_N.mp4, seg_NNN.m4s (fMP4, 1 s segments)
#   OUT/hls/audio/                 AAC in its own rendition group
#   OUT/dash/manifest.mpd          the same ladder as DASH, one directory per
#   OUT/dash/r{0,1,2,3}/           representation (r3 is the audio)
# Usage: scripts/make-clip.sh OUT [SECONDS]
set -euo pipefail
out="${1:?usage: make-clip.sh OUT [SECONDS]}"
secs="${2:-4}"
command -v ffmpeg >/dev/null || { echo "make-clip: ffmpeg is not installed (scripts/ensure-deps.sh installs it)" >&2; exit 1; }
rm -rf "$out/hls" "$out/dash"
mkdir -p "$out/hls" "$out/dash/r0" "$out/dash/r1" "$out/dash/r2" "$out/dash/r3"
ladder=(
  -f lavfi -i "testsrc2=size=1280x720:rate=30:duration=$secs"
  -f lavfi -i "sine=frequency=440:sample_rate=48000:duration=$secs"
  -filter_complex "[0:v]split=3[a][b][c];[a]scale=640:360[v0];[b]scale=854:480[v1];[c]copy[v2]"
  -map "[v0]" -map "[v1]" -map "[v2]" -map 1:a
  -c:v libx264 -profile:v main -level:v 3.1 -preset veryfast -g 30 -keyint_min 30 -sc_threshold 0
  -b:v:0 600k -maxrate:v:0 700k -bufsize:v:0 1200k
  -b:v:1 1000k -maxrate:v:1 1100k -bufsize:v:1 2000k
  -b:v:2 2500k -maxrate:v:2 2800k -bufsize:v:2 5000k
  -c:a aac -b:a 96k -ac 2
)
ffmpeg -nostdin -hide_banner -loglevel error "${ladder[@]}" \
  -f dash -seg_duration 1 -use_template 1 -use_timeline 0 -adaptation_sets "id=0,streams=v id=1,streams=a" \
  -init_seg_name 'r$RepresentationID$/init.mp4' -media_seg_name 'r$RepresentationID$/seg_$Number%03d$.m4s' \
  "$out/dash/manifest.mpd"
ffmpeg -nostdin -hide_banner -loglevel error "${ladder[@]}" \
  -f hls -hls_time 1 -hls_playlist_type vod -hls_segment_type fmp4 -hls_flags independent_segments \
  -hls_segment_filename "$out/hls/%v/seg_%03d.m4s" \
  -var_stream_map "v:0,agroup:aud,name:360p v:1,agroup:aud,name:480p v:2,agroup:aud,name:720p a:0,agroup:aud,name:audio" \
  "$out/hls/%v/index.m3u8"
# ffmpeg's own master has no FRAME-RATE and lists audio as a variant;
# playgate's pipeline writes this shape.
cat > "$out/hls/master.m3u8" <<'M3U8'
#EXTM3U
#EXT-X-VERSION:7
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="English",LANGUAGE="en",DEFAULT=YES,AUTOSELECT=YES,CHANNELS="2",URI="audio/index.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=800000,AVERAGE-BANDWIDTH=700000,RESOLUTION=640x360,FRAME-RATE=30.000,CODECS="avc1.4d401f,mp4a.40.2",AUDIO="aud"
360p/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=1200000,AVERAGE-BANDWIDTH=1100000,RESOLUTION=854x480,FRAME-RATE=30.000,CODECS="avc1.4d401f,mp4a.40.2",AUDIO="aud"
480p/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=2900000,AVERAGE-BANDWIDTH=2600000,RESOLUTION=1280x720,FRAME-RATE=30.000,CODECS="avc1.4d401f,mp4a.40.2",AUDIO="aud"
720p/index.m3u8
M3U8
