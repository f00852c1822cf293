//! Media probing on hostile input (issue 13): every probe returns quickly, never panics, reads
//! what the platforms check (codecs, frame rate, bit rate), and a malformed file is recorded in
//! `Media::probe_error`, which validation reports as `media_unreadable`.
//!
//! The seeds are built here: MP4s written box by box (H.264 + AAC, HEVC rotated with `mdat`
//! first), one real MP4 header written by FFmpeg (`fixtures/ffmpeg-moov.mp4`: its `ftyp` and
//! `moov`, with an empty `mdat`), and small JPEG, PNG, GIF and WebP headers. A deterministic
//! PRNG mutates them a few thousand times; each mutant is probed from memory and from a file,
//! each call on its own thread with a deadline, so a hang fails the test instead of stalling it.

use std::sync::LazyLock;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use konektly_core::{Capabilities, Content, Media, MediaKind, validate_against_capabilities};

/// Every probe must return within this.
const LIMIT: Duration = Duration::from_secs(2);

static RUNTIME: LazyLock<tokio::runtime::Runtime> =
    LazyLock::new(|| tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap());

static FFMPEG_MOOV: &[u8] = include_bytes!("fixtures/ffmpeg-moov.mp4");

// ---------------------------------------------------------------------------------------------
// Running a probe with a deadline

/// Runs `f` on its own thread and waits at most [`LIMIT`]; a hang or a panic fails the test
/// (the hung thread is left behind: the test binary exits without it).
fn within<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    let started = Instant::now();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(LIMIT) {
        Ok(value) => {
            assert!(started.elapsed() < LIMIT, "{what}: took {:?}", started.elapsed());
            value
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{what}: no answer within {LIMIT:?} (hangs)"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{what}: the probe panicked"),
    }
}

fn probe_bytes(what: &str, data: &[u8]) -> Media {
    let data = data.to_vec();
    within(&format!("{what} (from_bytes)"), move || Media::from_bytes(data))
}

fn probe_file(what: &str, dir: &tempfile::TempDir, data: &[u8]) -> Media {
    let path = dir.path().join("upload");
    std::fs::write(&path, data).unwrap();
    let media = within(&format!("{what} (from_file)"), move || RUNTIME.block_on(Media::from_file(path)));
    media.unwrap_or_else(|e| panic!("{what} (from_file): {e}"))
}

/// Both probes, which must agree.
fn probe(what: &str, dir: &tempfile::TempDir, data: &[u8]) -> Media {
    let from_bytes = probe_bytes(what, data);
    let from_file = probe_file(what, dir, data);
    assert_eq!(facts(&from_bytes), facts(&from_file), "{what}: from_bytes and from_file disagree");
    from_bytes
}

/// Everything a probe sets.
fn facts(m: &Media) -> String {
    format!(
        "{} size={:?} {:?}x{:?} duration={:?} video={:?} audio={:?} fps={:?} bps={:?} error={:?}",
        m.mime,
        m.size,
        m.width,
        m.height,
        m.duration,
        m.video_codec,
        m.audio_codec,
        m.frame_rate,
        m.bit_rate,
        m.probe_error
    )
}

// ---------------------------------------------------------------------------------------------
// Writing boxes

fn bx(kind: &[u8; 4], parts: &[&[u8]]) -> Vec<u8> {
    let len = 8 + parts.iter().map(|p| p.len()).sum::<usize>();
    let mut v = Vec::with_capacity(len);
    v.extend_from_slice(&u32::try_from(len).unwrap().to_be_bytes());
    v.extend_from_slice(kind);
    for p in parts {
        v.extend_from_slice(p);
    }
    v
}

/// A full box: version and flags first.
fn full(kind: &[u8; 4], version: u8, flags: u32, parts: &[&[u8]]) -> Vec<u8> {
    let vf = [version, (flags >> 16) as u8, (flags >> 8) as u8, flags as u8];
    let mut all: Vec<&[u8]> = vec![&vf];
    all.extend_from_slice(parts);
    bx(kind, &all)
}

fn be16(x: u16) -> [u8; 2] {
    x.to_be_bytes()
}

fn be32(x: u32) -> [u8; 4] {
    x.to_be_bytes()
}

fn matrix(rotate: bool) -> Vec<u8> {
    let (a, b, c, d): (u32, u32, u32, u32) =
        if rotate { (0, 0x0001_0000, 0xffff_0000, 0) } else { (0x0001_0000, 0, 0, 0x0001_0000) };
    [a, b, 0, c, d, 0, 0, 0, 0x4000_0000].iter().flat_map(|x| x.to_be_bytes()).collect()
}

#[derive(Clone)]
struct Spec {
    video: [u8; 4],
    width: u16,
    height: u16,
    timescale: u32,
    frames: u32,
    delta: u32,
    rotate: bool,
    audio: bool,
    mdat_first: bool,
}

impl Default for Spec {
    fn default() -> Self {
        Self {
            video: *b"avc1",
            width: 320,
            height: 240,
            timescale: 15360,
            frames: 30,
            delta: 512,
            rotate: false,
            audio: true,
            mdat_first: false,
        }
    }
}

impl Spec {
    /// Milliseconds of video.
    fn millis(&self) -> u32 {
        (u64::from(self.frames) * u64::from(self.delta) * 1000 / u64::from(self.timescale)) as u32
    }
}

#[allow(clippy::too_many_arguments)]
fn trak(
    id: u32,
    duration_ms: u32,
    timescale: u32,
    media_duration: u32,
    handler: &[u8; 4],
    media_header: Vec<u8>,
    entry: Vec<u8>,
    frames: u32,
    delta: u32,
    width: u16,
    height: u16,
    rotate: bool,
    chunk_offset: u32,
) -> Vec<u8> {
    let tkhd = full(
        b"tkhd",
        0,
        3,
        &[
            &be32(0),
            &be32(0),
            &be32(id),
            &be32(0),
            &be32(duration_ms),
            &[0; 8],
            &be16(0),
            &be16(0),
            &be16(if handler == b"soun" { 0x0100 } else { 0 }),
            &be16(0),
            &matrix(rotate),
            &be32(u32::from(width) << 16),
            &be32(u32::from(height) << 16),
        ],
    );
    let mdhd =
        full(b"mdhd", 0, 0, &[&be32(0), &be32(0), &be32(timescale), &be32(media_duration), &be16(0x55c4), &be16(0)]);
    let hdlr = full(b"hdlr", 0, 0, &[&be32(0), handler, &[0; 12], b"konektly\0"]);
    let dinf = bx(b"dinf", &[&full(b"dref", 0, 0, &[&be32(1), &full(b"url ", 0, 1, &[])])]);
    let stsd = full(b"stsd", 0, 0, &[&be32(1), &entry]);
    let stts = full(b"stts", 0, 0, &[&be32(1), &be32(frames), &be32(delta)]);
    let stsc = full(b"stsc", 0, 0, &[&be32(1), &be32(1), &be32(frames), &be32(1)]);
    let sizes: Vec<u8> = (0..frames).flat_map(|_| be32(6)).collect();
    let stsz = full(b"stsz", 0, 0, &[&be32(0), &be32(frames), &sizes]);
    let stco = full(b"stco", 0, 0, &[&be32(1), &be32(chunk_offset)]);
    let stbl = bx(b"stbl", &[&stsd, &stts, &stsc, &stsz, &stco]);
    let minf = bx(b"minf", &[&media_header, &dinf, &stbl]);
    let mdia = bx(b"mdia", &[&mdhd, &hdlr, &minf]);
    bx(b"trak", &[&tkhd, &mdia])
}

fn avc1(kind: &[u8; 4], width: u16, height: u16) -> Vec<u8> {
    let config = if kind == b"hvc1" {
        // An (abridged) HEVC decoder configuration: its content is not read.
        bx(
            b"hvcC",
            &[&[1, 1, 0x60, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 0x5d, 0xf0, 0, 0xfc, 0xfd, 0xf8, 0xf8, 0, 0, 0x0f, 0]],
        )
    } else {
        let sps = [0x67, 0x42, 0x00, 0x1e, 0x95, 0xa8, 0x28, 0x0f, 0x64];
        let pps = [0x68, 0xce, 0x38, 0x80];
        bx(
            b"avcC",
            &[&[1, 0x42, 0x00, 0x1e, 0xff, 0xe1], &be16(sps.len() as u16), &sps, &[1], &be16(pps.len() as u16), &pps],
        )
    };
    let mut compressor = [0u8; 32];
    compressor[0] = 8;
    compressor[1..9].copy_from_slice(b"konektly");
    bx(
        kind,
        &[
            &[0; 6],
            &be16(1),
            &[0; 16],
            &be16(width),
            &be16(height),
            &be32(0x0048_0000),
            &be32(0x0048_0000),
            &be32(0),
            &be16(1),
            &compressor,
            &be16(0x18),
            &be16(0xffff),
            &config,
        ],
    )
}

/// An `esds` box for AAC-LC, 48 kHz stereo, with `extra` nested ES descriptors wrapped around it.
fn esds(extra: usize) -> Vec<u8> {
    let dsi = [0x05, 0x02, 0x11, 0x90];
    let mut dc = vec![0x04, 13 + dsi.len() as u8, 0x40, 0x15, 0, 0x18, 0, 0, 0x01, 0xf4, 0, 0, 0x01, 0xf4, 0];
    dc.extend_from_slice(&dsi);
    let mut es = vec![0x03, (3 + dc.len() + 3) as u8, 0, 1, 0];
    es.extend_from_slice(&dc);
    es.extend_from_slice(&[0x06, 0x01, 0x02]);
    // Each wrapping ES descriptor: tag, a 4-byte expandable size, ES_ID, flags, then the one
    // inside. Written outermost first: the one at depth `k` holds `extra - k` more.
    let mut nested = Vec::with_capacity(extra * 8 + es.len());
    for k in 0..extra {
        let len = 3 + (extra - k - 1) * 8 + es.len();
        let size = [
            0x80 | (len >> 21) as u8 & 0x7f,
            0x80 | (len >> 14) as u8 & 0x7f,
            0x80 | (len >> 7) as u8 & 0x7f,
            len as u8 & 0x7f,
        ];
        nested.push(0x03);
        nested.extend_from_slice(&size);
        nested.extend_from_slice(&[0, 1, 0]);
    }
    nested.extend_from_slice(&es);
    full(b"esds", 0, 0, &[&nested])
}

fn mp4a(esds: &[u8]) -> Vec<u8> {
    bx(
        b"mp4a",
        &[
            &[0; 6],
            &be16(1),
            &be16(0),
            &be16(0),
            &be32(0),
            &be16(2),
            &be16(16),
            &be16(0),
            &be16(0),
            &be32(48_000 << 16),
            esds,
        ],
    )
}

fn mp4(spec: &Spec) -> Vec<u8> {
    mp4_with(spec, esds(0))
}

/// An MP4: `ftyp`, then `moov` (`mvhd`, a video track, an audio track, `udta`) and `mdat` in
/// the order the spec says.
fn mp4_with(spec: &Spec, esds: Vec<u8>) -> Vec<u8> {
    let ftyp = bx(b"ftyp", &[b"isom", &be32(512), b"isom", b"iso2", b"avc1", b"mp41"]);
    let samples: Vec<u8> = (0..spec.frames).flat_map(|_| [0, 0, 0, 2, 0x65, 0x88]).collect();
    let mdat = bx(b"mdat", &[&samples]);
    let ms = spec.millis();
    let audio_frames = ms * 48 / 1024;
    let moov = |offset: u32| {
        let mvhd = full(
            b"mvhd",
            0,
            0,
            &[
                &be32(0),
                &be32(0),
                &be32(1000),
                &be32(ms),
                &be32(0x0001_0000),
                &be16(0x0100),
                &[0; 10],
                &matrix(false),
                &[0; 24],
                &be32(3),
            ],
        );
        let video = trak(
            1,
            ms,
            spec.timescale,
            spec.frames * spec.delta,
            b"vide",
            full(b"vmhd", 0, 1, &[&[0; 8]]),
            avc1(&spec.video, spec.width, spec.height),
            spec.frames,
            spec.delta,
            spec.width,
            spec.height,
            spec.rotate,
            offset,
        );
        let audio = trak(
            2,
            audio_frames * 1024 / 48,
            48_000,
            audio_frames * 1024,
            b"soun",
            full(b"smhd", 0, 0, &[&[0; 4]]),
            mp4a(&esds),
            audio_frames,
            1024,
            0,
            0,
            false,
            offset,
        );
        let udta = bx(b"udta", &[&bx(b"titl", &[b"konektly"])]);
        if spec.audio { bx(b"moov", &[&mvhd, &video, &audio, &udta]) } else { bx(b"moov", &[&mvhd, &video, &udta]) }
    };
    let moov_len = moov(0).len() as u32;
    if spec.mdat_first {
        [ftyp.clone(), mdat, moov(ftyp.len() as u32 + 8)].concat()
    } else {
        [ftyp.clone(), moov(ftyp.len() as u32 + moov_len + 8), mdat].concat()
    }
}

/// Where each box of `data` starts, found by walking the tree of the boxes below (a box's
/// children start after its header and, for these, after their fixed fields).
fn boxes(data: &[u8]) -> Vec<(usize, [u8; 4])> {
    fn walk(data: &[u8], from: usize, to: usize, out: &mut Vec<(usize, [u8; 4])>) {
        let mut pos = from;
        while pos + 8 <= to {
            let size = u32::from_be_bytes(data[pos..pos + 4].try_into().unwrap()) as usize;
            let kind: [u8; 4] = data[pos + 4..pos + 8].try_into().unwrap();
            if size < 8 || pos + size > to {
                return;
            }
            out.push((pos, kind));
            let skip = match &kind {
                b"moov" | b"trak" | b"mdia" | b"minf" | b"stbl" | b"dinf" | b"udta" | b"edts" => Some(8),
                b"stsd" | b"dref" => Some(16),
                b"avc1" | b"hvc1" => Some(8 + 78),
                b"mp4a" => Some(8 + 28),
                _ => None,
            };
            if let Some(skip) = skip {
                walk(data, pos + skip, pos + size, out);
            }
            pos += size;
        }
    }
    let mut out = Vec::new();
    walk(data, 0, data.len(), &mut out);
    out
}

fn set_size(data: &mut [u8], at: usize, size: u32) {
    data[at..at + 4].copy_from_slice(&size.to_be_bytes());
}

// ---------------------------------------------------------------------------------------------
// Images

fn png(width: u32, height: u32) -> Vec<u8> {
    let mut v = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    v.extend_from_slice(&width.to_be_bytes());
    v.extend_from_slice(&height.to_be_bytes());
    v.extend_from_slice(&[8, 2, 0, 0, 0, 0x12, 0x34, 0x56, 0x78]);
    v.extend_from_slice(b"\0\0\0\0IEND\xae\x42\x60\x82");
    v
}

fn jpeg(width: u16, height: u16) -> Vec<u8> {
    let mut v = vec![0xff, 0xd8];
    v.extend_from_slice(&[0xff, 0xe0, 0, 16]);
    v.extend_from_slice(b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0");
    v.extend_from_slice(&[0xff, 0xdb, 0, 67, 0]);
    v.extend_from_slice(&[1; 64]);
    v.extend_from_slice(&[0xff, 0xc0, 0, 17, 8]);
    v.extend_from_slice(&height.to_be_bytes());
    v.extend_from_slice(&width.to_be_bytes());
    v.extend_from_slice(&[3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
    v.extend_from_slice(&[0xff, 0xda, 0, 12, 3, 1, 0, 2, 0x11, 3, 0x11, 0, 0x3f, 0, 0x12, 0x34, 0xff, 0xd9]);
    v
}

fn gif(width: u16, height: u16) -> Vec<u8> {
    let mut v = b"GIF89a".to_vec();
    v.extend_from_slice(&width.to_le_bytes());
    v.extend_from_slice(&height.to_le_bytes());
    v.extend_from_slice(&[0, 0, 0, 0x2c, 0, 0, 0, 0, 1, 0, 1, 0, 0, 2, 2, 0x44, 0x01, 0, 0x3b]);
    v
}

fn webp(width: u32, height: u32) -> Vec<u8> {
    let mut chunk = b"VP8X".to_vec();
    chunk.extend_from_slice(&10u32.to_le_bytes());
    chunk.extend_from_slice(&[0, 0, 0, 0]);
    chunk.extend_from_slice(&(width - 1).to_le_bytes()[..3]);
    chunk.extend_from_slice(&(height - 1).to_le_bytes()[..3]);
    let mut v = b"RIFF".to_vec();
    v.extend_from_slice(&(4 + chunk.len() as u32).to_le_bytes());
    v.extend_from_slice(b"WEBP");
    v.extend_from_slice(&chunk);
    v
}

// ---------------------------------------------------------------------------------------------
// The reproduction of issue 13

/// The MP4 of the issue: a box inside `moov` (here `udta`) whose size is 0. `mp4` 0.14 read it
/// again and again, forever.
#[test]
fn a_zero_size_box_inside_moov_is_refused_quickly() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = mp4(&Spec::default());
    let (udta, _) = *boxes(&data).iter().find(|(_, k)| k == b"udta").unwrap();
    set_size(&mut data, udta, 0);

    let m = probe("udta of size 0", &dir, &data);
    assert_eq!(m.kind(), MediaKind::Video);
    let reason = m.probe_error.clone().expect("the file is malformed");
    assert!(reason.contains("`udta`") && reason.contains("size 0"), "{reason}");
    assert_eq!((m.width, m.height, m.duration, m.video_codec.as_deref()), (None, None, None, None));

    // Validation says so, naming the item.
    let content = Content::text("look").with_media(Media::from_bytes(png(10, 10))).with_media(m);
    let violations = validate_against_capabilities(&capabilities(), &content, |t| t.chars().count());
    let unreadable: Vec<_> = violations.iter().filter(|v| v.code == "media_unreadable").collect();
    assert_eq!(unreadable.len(), 1, "{violations:?}");
    assert_eq!(unreadable[0].field, "media[1]");
    assert!(unreadable[0].message.contains("size 0"), "{}", unreadable[0].message);
}

/// Every box on the way to the sample tables, and every box the parser reads, set to a size
/// smaller than its header: refused, quickly. Boxes nobody reads (inside `dinf`, `udta`) are
/// skipped whole by their parent's size; those only have to return quickly.
#[test]
fn every_box_size_below_its_header_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for spec in [Spec::default(), Spec { video: *b"hvc1", mdat_first: true, ..Spec::default() }] {
        let seed = mp4(&spec);
        let moov = boxes(&seed).iter().find(|(_, k)| k == b"moov").unwrap().0;
        for (at, kind) in boxes(&seed) {
            let name = String::from_utf8_lossy(&kind).into_owned();
            let read = !matches!(&kind, b"dref" | b"url " | b"titl" | b"ftyp" | b"mdat" | b"hvcC");
            for size in [0u32, 2, 4, 7] {
                let mut data = seed.clone();
                set_size(&mut data, at, size);
                let what = format!("`{name}` at {at} of size {size}");
                let m = probe(&what, &dir, &data);
                if at > moov && read {
                    assert!(m.probe_error.is_some(), "{what}: {}", facts(&m));
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// What is read from valid files

#[test]
fn a_valid_mp4_tells_its_codecs_frame_rate_and_bit_rate() {
    let dir = tempfile::tempdir().unwrap();
    let data = mp4(&Spec::default());
    let m = probe("H.264 + AAC", &dir, &data);
    assert_eq!(m.probe_error, None);
    assert_eq!(m.mime.essence_str(), "video/mp4");
    assert_eq!((m.width, m.height), (Some(320), Some(240)));
    assert_eq!(m.duration, Some(Duration::from_secs(1)));
    assert_eq!(m.video_codec.as_deref(), Some("h264"));
    assert_eq!(m.audio_codec.as_deref(), Some("aac"));
    assert_eq!(m.frame_rate, Some(30.0));
    assert_eq!(m.bit_rate, Some(data.len() as u64 * 8));

    // HEVC at 29.97 frames per second, filmed upright (the track turned a quarter), `mdat`
    // first, no sound.
    let spec = Spec {
        video: *b"hvc1",
        width: 1920,
        height: 1080,
        timescale: 30_000,
        frames: 90,
        delta: 1001,
        rotate: true,
        audio: false,
        mdat_first: true,
    };
    let data = mp4(&spec);
    let m = probe("HEVC", &dir, &data);
    assert_eq!(m.probe_error, None);
    assert_eq!((m.width, m.height), (Some(1080), Some(1920)));
    assert_eq!(m.duration, Some(Duration::from_millis(3003)));
    assert_eq!(m.video_codec.as_deref(), Some("hevc"));
    assert_eq!(m.audio_codec, None);
    assert_eq!(m.frame_rate, Some(29.97));
    assert_eq!(m.bit_rate, Some(data.len() as u64 * 8 * 1000 / 3003));
}

#[test]
fn an_mp4_written_by_ffmpeg_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let m = probe("FFmpeg", &dir, FFMPEG_MOOV);
    assert_eq!(m.probe_error, None);
    assert_eq!(m.mime.essence_str(), "video/mp4");
    assert_eq!((m.width, m.height), (Some(540), Some(960)));
    assert_eq!(m.duration, Some(Duration::from_secs(4)));
    assert_eq!(m.video_codec.as_deref(), Some("h264"));
    assert_eq!(m.audio_codec, None);
    assert_eq!(m.frame_rate, Some(30.0));
    assert_eq!(m.bit_rate, Some(FFMPEG_MOOV.len() as u64 * 8 / 4));
}

#[test]
fn images_are_measured_and_broken_headers_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (name, data, mime, size) in [
        ("png", png(1080, 1350), "image/png", (1080, 1350)),
        ("jpeg", jpeg(640, 480), "image/jpeg", (640, 480)),
        ("gif", gif(320, 200), "image/gif", (320, 200)),
        ("webp", webp(800, 600), "image/webp", (800, 600)),
    ] {
        let m = probe(name, &dir, &data);
        assert_eq!(m.mime.essence_str(), mime, "{name}");
        assert_eq!((m.width, m.height), (Some(size.0), Some(size.1)), "{name}");
        assert_eq!(m.probe_error, None, "{name}");
        assert_eq!((m.video_codec.as_ref(), m.frame_rate, m.bit_rate), (None, None, None), "{name}");
    }
    assert_eq!(probe("gif kind", &dir, &gif(1, 1)).kind(), MediaKind::Gif);

    // Cut off before the dimensions.
    let m = probe("png cut off", &dir, &png(10, 10)[..18]);
    assert_eq!(m.mime.essence_str(), "image/png");
    assert!(m.probe_error.as_deref().is_some_and(|e| e.contains("truncated")), "{}", facts(&m));
    // A JPEG whose segments run into garbage.
    let mut broken = jpeg(640, 480);
    broken[20] = 0x00; // where the DQT marker should be
    let m = probe("jpeg broken", &dir, &broken);
    assert!(m.probe_error.is_some(), "{}", facts(&m));

    // Unknown bytes are not guessed, nor called malformed.
    let m = probe("text", &dir, b"hello, plain text");
    assert_eq!((m.kind(), m.probe_error), (MediaKind::Other, None));
}

// ---------------------------------------------------------------------------------------------
// Malformed movies

#[test]
fn malformed_movies_are_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let seed = mp4(&Spec::default());
    let at = |kind: &[u8; 4]| boxes(&seed).iter().find(|(_, k)| k == kind).unwrap().0;
    let mut cases: Vec<(&str, Vec<u8>, &str)> = Vec::new();

    // Truncated in the movie header.
    cases.push(("truncated", seed[..at(b"udta")].to_vec(), "past the end of the file"));
    // `mdat` first and cut short: the movie header never comes.
    let spec = Spec { mdat_first: true, ..Spec::default() };
    let mdat_first = mp4(&spec);
    cases.push(("no moov", mdat_first[..mdat_first.len() / 2].to_vec(), "past the end of the file"));
    cases.push(("only ftyp", seed[..32].to_vec(), "no `moov` box"));
    // A top-level box smaller than its header, and a 64-bit size smaller than its header.
    let mut data = mdat_first.clone();
    set_size(&mut data, 32, 5);
    cases.push(("mdat of size 5", data, "size of 5"));
    let mut data = mdat_first.clone();
    set_size(&mut data, 32, 1);
    data[40..48].copy_from_slice(&8u64.to_be_bytes());
    cases.push(("mdat of 64-bit size 8", data, "64-bit size of 8"));
    // A child running past its parent.
    let mut data = seed.clone();
    set_size(&mut data, at(b"udta"), 4096);
    cases.push(("udta too long", data, "past the end of its parent"));
    // Counts the file cannot hold: nothing may be allocated for them.
    let stco = at(b"stco");
    let mut data = seed.clone();
    data[stco + 12..stco + 16].copy_from_slice(&u32::MAX.to_be_bytes());
    cases.push(("stco count", data, "declares 4294967295 entries"));
    let stsz = at(b"stsz");
    let mut data = seed.clone();
    data[stsz + 16..stsz + 20].copy_from_slice(&0x4000_0000u32.to_be_bytes());
    cases.push(("stsz count", data, "`stsz` box declares"));
    let stsd = at(b"stsd");
    let mut data = seed.clone();
    data[stsd + 12..stsd + 16].copy_from_slice(&100_000u32.to_be_bytes());
    cases.push(("stsd count", data, "sample descriptions"));
    // Descriptors nested 50 000 deep in an `esds` box: read recursively by mp4parse, they would
    // overflow the stack (an abort, which no test could catch).
    cases.push(("deep esds", mp4_with(&Spec::default(), esds(50_000)), "nests its descriptors"));
    // A box the parser refuses (a `moov` child of size 0 is the case, above).
    let mut data = seed.clone();
    let mdhd = at(b"mdhd");
    data[mdhd + 20..mdhd + 24].copy_from_slice(&0u32.to_be_bytes()); // a timescale of 0
    cases.push(("mdhd timescale 0", data, "cannot be read"));

    for (name, data, expected) in cases {
        let m = probe(name, &dir, &data);
        assert_eq!(m.kind(), MediaKind::Video, "{name}");
        let reason = m.probe_error.clone().unwrap_or_else(|| panic!("{name}: not refused: {}", facts(&m)));
        assert!(reason.contains(expected), "{name}: {reason}");
        assert_eq!((m.duration, m.width, m.video_codec.as_ref()), (None, None, None), "{name}");
    }

    // A nesting as deep as real files is fine.
    assert_eq!(probe("esds nested 3 more", &dir, &mp4_with(&Spec::default(), esds(3))).probe_error, None);
}

/// A movie header too large to read (over 32 MiB) leaves the facts unknown: it is not called
/// malformed, and it is not read.
#[test]
fn a_huge_movie_header_is_not_read() {
    let ftyp = bx(b"ftyp", &[b"isom", &be32(512), b"isom"]);
    let mut moov = vec![0u8; 8];
    moov.extend_from_slice(&bx(b"free", &[&vec![0u8; 33 << 20]]));
    let len = moov.len() as u32;
    moov[..4].copy_from_slice(&len.to_be_bytes());
    moov[4..8].copy_from_slice(b"moov");
    let m = probe_bytes("huge moov", &[ftyp, moov].concat());
    assert_eq!(m.kind(), MediaKind::Video);
    assert_eq!((m.probe_error, m.duration), (None, None));
}

#[cfg(unix)]
#[test]
fn a_device_is_not_probed() {
    let err = within("/dev/zero", || RUNTIME.block_on(Media::from_file("/dev/zero"))).unwrap_err();
    assert!(err.to_string().contains("not a regular file"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Serde

#[test]
fn the_new_facts_are_optional_in_json() {
    // Media stored before these facts existed still reads.
    let old = serde_json::json!({
        "source": {"type": "url", "value": "https://cdn.example/v.mp4"},
        "mime": "video/mp4",
        "size": 42,
        "duration": 7000
    });
    let m: Media = serde_json::from_value(old).unwrap();
    assert_eq!((m.video_codec, m.audio_codec, m.frame_rate, m.bit_rate, m.probe_error), (None, None, None, None, None));

    // Unknown facts are left out; known ones round-trip exactly.
    let json = serde_json::to_value(Media::from_bytes(png(2, 2))).unwrap();
    for key in ["video_codec", "audio_codec", "frame_rate", "bit_rate", "probe_error"] {
        assert!(json.get(key).is_none(), "{key} in {json}");
    }
    let spec = Spec { timescale: 30_000, frames: 91, delta: 1001, ..Spec::default() };
    let mut bad = mp4(&spec);
    for m in [Media::from_bytes(mp4(&spec)), {
        let udta = boxes(&bad).iter().find(|(_, k)| k == b"udta").unwrap().0;
        set_size(&mut bad, udta, 0);
        Media::from_bytes(bad)
    }] {
        let text = serde_json::to_string(&m).unwrap();
        assert_eq!(serde_json::from_str::<Media>(&text).unwrap(), m, "{text}");
    }
}

fn capabilities() -> Capabilities {
    serde_json::from_value(serde_json::json!({
        "text_counting": "chars",
        "max_text_len": 500,
        "media": [
            {"kind": "image", "mime_types": ["image/png", "image/jpeg"], "max_count": 4, "max_bytes": 5_000_000},
            {"kind": "video", "mime_types": ["video/mp4"], "max_count": 1, "max_bytes": 500_000_000}
        ],
        "max_media_per_post": 4,
        "mixed_media": true,
        "media_required": false,
        "threads": false,
        "polls": false,
        "links": true,
        "native_scheduling": false,
        "asynchronous_processing": false,
        "rotating_refresh_tokens": false,
        "reconcile": "search",
        "needs_media_host": false
    }))
    .unwrap()
}

#[test]
fn valid_media_has_no_unreadable_violation() {
    let content = Content::text("look").with_media(Media::from_bytes(mp4(&Spec::default())));
    let violations = validate_against_capabilities(&capabilities(), &content, |t| t.chars().count());
    assert!(violations.is_empty(), "{violations:?}");
}

// ---------------------------------------------------------------------------------------------
// Mutations

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

/// One to three mutations of `seed`, and what they were.
fn mutate(seed: &[u8], marks: &[(usize, [u8; 4])], rng: &mut Rng) -> (Vec<u8>, String) {
    let mut data = seed.to_vec();
    let mut done = Vec::new();
    for _ in 0..1 + rng.below(3) {
        if data.is_empty() {
            break;
        }
        let len = data.len();
        match rng.below(9) {
            0 => {
                let (at, bit) = (rng.below(len), rng.below(8));
                data[at] ^= 1 << bit;
                done.push(format!("flip bit {bit} of byte {at}"));
            }
            1 => {
                let at = rng.below(len);
                let random = rng.next() as u8;
                let value = rng.pick(&[0u8, 1, 7, 8, 0x7f, 0x80, 0xff, random]);
                data[at] = value;
                done.push(format!("byte {at} = {value:#x}"));
            }
            2 | 3 if !marks.is_empty() => {
                // A box size: the case and its neighbours.
                let (at, kind) = rng.pick(marks);
                if at + 4 > len {
                    continue;
                }
                let random = rng.next();
                let size =
                    rng.pick(&[0u32, 0, 1, 7, 8, 9, u32::MAX, 0x7fff_ffff, random as u32, (len - at) as u32 + 1]);
                set_size(&mut data, at, size);
                if size == 1 && at + 16 <= len {
                    let large = rng.pick(&[0u64, 8, 15, 16, u64::MAX, (len - at) as u64, random]);
                    data[at + 8..at + 16].copy_from_slice(&large.to_be_bytes());
                    done.push(format!("`{}` at {at}: size 1, 64-bit size {large}", String::from_utf8_lossy(&kind)));
                } else {
                    done.push(format!("`{}` at {at}: size {size}", String::from_utf8_lossy(&kind)));
                }
            }
            4 => {
                let to = rng.below(len);
                data.truncate(to);
                done.push(format!("truncate to {to}"));
            }
            5 => {
                let from = rng.below(len);
                let to = (from + 1 + rng.below(256)).min(len);
                let at = rng.below(len + 1);
                let copy = data[from..to].to_vec();
                data.splice(at..at, copy);
                done.push(format!("copy {from}..{to} to {at}"));
            }
            6 => {
                let from = rng.below(len);
                let to = (from + 1 + rng.below(64)).min(len);
                data.drain(from..to);
                done.push(format!("delete {from}..{to}"));
            }
            7 if len >= 4 => {
                // A count or a size field: 32 bits at a 4-byte boundary.
                let at = rng.below(len / 4) * 4;
                let value = rng.pick(&[u32::MAX, 0x8000_0000, 0x1000_0000, 0x10000, 0]);
                data[at..at + 4].copy_from_slice(&value.to_be_bytes());
                done.push(format!("word at {at} = {value:#x}"));
            }
            _ if !marks.is_empty() => {
                // One box type for another: a leaf read as a container, and the other way.
                let (at, _) = rng.pick(marks);
                let kind = rng.pick(&[b"moov", b"trak", b"mdia", b"stsd", b"esds", b"udta", b"mdat", b"wave", b"avc1"]);
                if at + 8 <= len {
                    data[at + 4..at + 8].copy_from_slice(kind);
                    done.push(format!("box at {at} renamed `{}`", String::from_utf8_lossy(kind)));
                }
            }
            _ => {}
        }
    }
    (data, done.join(", "))
}

/// Where box-like headers are in an image (chunks of PNG and WebP) or a movie.
fn marks(seed: &[u8]) -> Vec<(usize, [u8; 4])> {
    let found = boxes(seed);
    if found.len() > 1 {
        return found;
    }
    // Not a movie: any four letters after four bytes are worth a size.
    (0..seed.len().saturating_sub(8))
        .filter(|&i| seed[i + 4..i + 8].iter().all(u8::is_ascii_alphanumeric))
        .map(|i| (i, seed[i + 4..i + 8].try_into().unwrap()))
        .collect()
}

#[test]
fn mutated_media_never_hangs_panics_or_disagrees() {
    const MUTATIONS: usize = 8_000;
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let seeds: Vec<(&str, Vec<u8>)> = vec![
        ("h264+aac", mp4(&Spec::default())),
        ("hevc, mdat first", mp4(&Spec { video: *b"hvc1", rotate: true, mdat_first: true, ..Spec::default() })),
        ("ffmpeg", FFMPEG_MOOV.to_vec()),
        ("png", png(640, 480)),
        ("jpeg", jpeg(640, 480)),
        ("gif", gif(64, 48)),
        ("webp", webp(640, 480)),
    ];
    let marks: Vec<_> = seeds.iter().map(|(_, s)| marks(s)).collect();
    let mut rng = Rng(0x6b6f_6e65_6b74_6c79);
    let (mut malformed, mut videos, mut measured, mut slowest) = (0, 0, 0, Duration::ZERO);
    for i in 0..MUTATIONS {
        let which = i % seeds.len();
        let (name, seed) = &seeds[which];
        let (data, how) = mutate(seed, &marks[which], &mut rng);
        let what = format!("mutation {i} of {name}: {how}");
        let t = Instant::now();
        let m = probe(&what, &dir, &data);
        slowest = slowest.max(t.elapsed());
        if let Some(reason) = &m.probe_error {
            assert!(
                !reason.contains("reader failed") && !reason.contains("parser failed"),
                "{what}: a parser panicked: {reason}"
            );
            assert_eq!((m.width, m.duration, m.video_codec.as_ref()), (None, None, None), "{what}");
            malformed += 1;
        }
        if m.video_codec.is_some() {
            videos += 1;
        }
        if m.width.is_some() {
            measured += 1;
        }
    }
    eprintln!(
        "{MUTATIONS} mutations in {:?} (slowest pair of probes {slowest:?}): {malformed} malformed, {videos} videos read, {measured} measured",
        started.elapsed()
    );
    // The mutations reach both outcomes.
    assert!(malformed > MUTATIONS / 10, "{malformed}");
    assert!(videos > MUTATIONS / 20, "{videos}");
}
