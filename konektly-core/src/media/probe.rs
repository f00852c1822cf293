//! Reading media facts from untrusted bytes, bounded in time and memory, without panicking.
//!
//! A probe reads a bounded amount of any input:
//!
//! - the first [`HEAD_LEN`] bytes, to sniff the type;
//! - of an image, at most [`IMAGE_WINDOW`] bytes, handed to `imagesize` as a slice (its readers
//!   then only ever walk memory, forward, and stop at its end);
//! - of an MP4/QuickTime file, the top-level box headers up to the `moov` box (at most
//!   [`MAX_TOP_LEVEL_BOXES`]; `mdat` and anything else is seeked over, never read), then that box
//!   (at most [`MAX_MOOV_LEN`] bytes), which is checked here before Mozilla's `mp4parse` (the
//!   parser Firefox fuzzes) reads it from memory.
//!
//! Every box size is checked (size 0 — "to the end of the file" — only at the top level, size 1
//! announces a 64-bit size, anything smaller than the header is malformed, no box runs past its
//! parent), the boxes walked are counted, and the counts `mp4parse` allocates by are checked
//! against the bytes that hold them. A file that breaks these rules gets a `probe_error`, which
//! validation reports as `media_unreadable`; a panic in a parser is caught and reported the same
//! way.

use std::io::{self, Read, Seek, SeekFrom};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use mime::Mime;

/// How many bytes are read to sniff the type.
pub(crate) const HEAD_LEN: usize = 64 * 1024;

/// How many bytes of an image are read for its dimensions (a JPEG's frame header follows its
/// metadata segments: EXIF, ICC profiles, XMP…).
pub(crate) const IMAGE_WINDOW: usize = 4 << 20;

/// The largest `moov` box read: 32 MiB holds the sample tables of over ten hours of video. A
/// larger one is not read (the facts stay unknown; the file is not called malformed).
pub(crate) const MAX_MOOV_LEN: u64 = 32 << 20;

/// How many top-level boxes may precede the `moov` box.
const MAX_TOP_LEVEL_BOXES: usize = 100_000;

/// How many boxes are walked inside the `moov` box.
const MAX_MOOV_BOXES: usize = 10_000;

/// How many tracks a movie may have.
const MAX_TRACKS: usize = 256;

/// How many sample descriptions one `stsd` box may declare.
const MAX_SAMPLE_DESCRIPTIONS: u32 = 256;

/// How many key ids one `pssh` box may declare.
const MAX_PSSH_KEY_IDS: u32 = 4096;

/// How deep the descriptors of an `esds` box may nest (a real one nests 3 deep).
const MAX_DESCRIPTOR_DEPTH: usize = 16;

/// What a probe found.
#[derive(Debug)]
pub(crate) struct Facts {
    pub(crate) mime: Mime,
    pub(crate) width: Option<u32>,
    pub(crate) height: Option<u32>,
    pub(crate) duration: Option<Duration>,
    pub(crate) video_codec: Option<String>,
    pub(crate) audio_codec: Option<String>,
    pub(crate) frame_rate: Option<f64>,
    pub(crate) bit_rate: Option<u64>,
    pub(crate) probe_error: Option<String>,
}

impl Facts {
    fn new(mime: Mime) -> Self {
        Self {
            mime,
            width: None,
            height: None,
            duration: None,
            video_codec: None,
            audio_codec: None,
            frame_rate: None,
            bit_rate: None,
            probe_error: None,
        }
    }

    /// Only the type, and why nothing else could be read.
    fn failed(mime: Mime, reason: impl Into<String>) -> Self {
        Self { probe_error: Some(reason.into()), ..Self::new(mime) }
    }
}

/// The type of a file from its first bytes.
pub(crate) fn sniff(head: &[u8]) -> Mime {
    infer::get(head).and_then(|t| t.mime_type().parse().ok()).unwrap_or(mime::APPLICATION_OCTET_STREAM)
}

fn is_mp4_like(mime: &Mime) -> bool {
    mime.type_() == mime::VIDEO && matches!(mime.subtype().as_str(), "mp4" | "quicktime" | "x-m4v")
}

/// The facts of bytes in memory.
pub(crate) fn probe_bytes(bytes: &[u8]) -> Facts {
    let mime = sniff(&bytes[..bytes.len().min(HEAD_LEN)]);
    let len = bytes.len() as u64;
    let probed = catch_unwind(AssertUnwindSafe(|| {
        let mut facts = Facts::new(mime.clone());
        if facts.mime.type_() == mime::IMAGE {
            let window = &bytes[..bytes.len().min(IMAGE_WINDOW)];
            read_image(window, window.len() == bytes.len(), &mut facts);
        } else if is_mp4_like(&facts.mime) {
            // Reading a slice cannot fail: a short read is reported as a truncated file.
            if let Err(e) = read_mp4(&mut SliceSource(bytes), &mut facts) {
                facts.probe_error = Some(format!("the movie cannot be read: {e}"));
            }
        }
        facts
    }));
    let mut facts = probed.unwrap_or_else(|_| Facts::failed(mime, "the media reader failed on this file"));
    facts.bit_rate = bit_rate(len, facts.duration);
    facts
}

/// The facts of an open file of `len` bytes, read from its start. An error is an I/O failure,
/// not a malformed file (that is a `probe_error`).
pub(crate) fn probe_file(file: &mut std::fs::File, len: u64) -> io::Result<Facts> {
    let mut head = Vec::with_capacity(HEAD_LEN);
    file.rewind()?;
    (&mut *file).take(HEAD_LEN as u64).read_to_end(&mut head)?;
    let mime = sniff(&head);
    let mut facts = Facts::new(mime.clone());
    if facts.mime.type_() == mime::IMAGE {
        let mut window = head;
        (&mut *file).take((IMAGE_WINDOW - window.len().min(IMAGE_WINDOW)) as u64).read_to_end(&mut window)?;
        let complete = window.len() as u64 >= len;
        if catch_unwind(AssertUnwindSafe(|| read_image(&window, complete, &mut facts))).is_err() {
            facts = Facts::failed(mime, "the media reader failed on this file");
        }
    } else if is_mp4_like(&facts.mime) {
        let mut source = FileSource { file, len };
        match catch_unwind(AssertUnwindSafe(|| read_mp4(&mut source, &mut facts))) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => facts = Facts::failed(mime, "the media reader failed on this file"),
        }
    }
    facts.bit_rate = bit_rate(len, facts.duration);
    Ok(facts)
}

/// Average bits per second over the whole file.
fn bit_rate(len: u64, duration: Option<Duration>) -> Option<u64> {
    let nanos = duration?.as_nanos();
    if nanos == 0 {
        return None;
    }
    u64::try_from(u128::from(len) * 8 * 1_000_000_000 / nanos).ok()
}

// ---------------------------------------------------------------------------------------------
// Images

/// Dimensions from an image's header. `complete` says whether `window` is the whole file: a
/// header cut off by the window is unknown, one cut off by the end of the file is malformed.
fn read_image(window: &[u8], complete: bool, facts: &mut Facts) {
    match imagesize::blob_size(window) {
        Ok(size) => {
            facts.width = u32::try_from(size.width).ok();
            facts.height = u32::try_from(size.height).ok();
        }
        // A format imagesize does not read (JPEG 2000…): its dimensions are unknown.
        Err(imagesize::ImageError::NotSupported) => {}
        Err(imagesize::ImageError::CorruptedImage) => {
            facts.probe_error = Some("the image is corrupt: its header cannot be read".into());
        }
        Err(imagesize::ImageError::IoError(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
            if complete {
                facts.probe_error = Some("the image is truncated: it ends before its dimensions".into());
            }
        }
        Err(imagesize::ImageError::IoError(e)) => {
            facts.probe_error = Some(format!("the image's header is invalid: {e}"));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// MP4 / QuickTime: the top level

/// Bytes that can be read at an offset.
trait Source {
    fn len(&self) -> u64;
    /// Fills `buf` from `offset`; `offset + buf.len()` is at most `len()`.
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()>;
}

struct SliceSource<'a>(&'a [u8]);

impl Source for SliceSource<'_> {
    fn len(&self) -> u64 {
        self.0.len() as u64
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let bytes = usize::try_from(offset)
            .ok()
            .and_then(|start| self.0.get(start..start.checked_add(buf.len())?))
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        buf.copy_from_slice(bytes);
        Ok(())
    }
}

struct FileSource<'a> {
    file: &'a mut std::fs::File,
    len: u64,
}

impl Source for FileSource<'_> {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.file.seek(SeekFrom::Start(offset))?;
        self.file.read_exact(buf)
    }
}

/// Reads the movie's facts into `facts`; a malformed file sets `probe_error`. An error is an
/// I/O failure of the source.
fn read_mp4<S: Source>(source: &mut S, facts: &mut Facts) -> io::Result<()> {
    let moov = match find_moov(source) {
        Ok(Some(moov)) => moov,
        // Too large to read: unknown, not malformed.
        Ok(None) => return Ok(()),
        Err(TopLevel::Malformed(reason)) => {
            facts.probe_error = Some(reason);
            return Ok(());
        }
        // The file changed (shrank) while it was read.
        Err(TopLevel::Io(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
            facts.probe_error = Some("the file ends before its boxes do".into());
            return Ok(());
        }
        Err(TopLevel::Io(e)) => return Err(e),
    };
    match read_movie(&moov) {
        Ok(movie) => movie.apply(facts),
        Err(reason) => facts.probe_error = Some(reason),
    }
    Ok(())
}

enum TopLevel {
    Malformed(String),
    Io(io::Error),
}

impl From<io::Error> for TopLevel {
    fn from(e: io::Error) -> Self {
        TopLevel::Io(e)
    }
}

/// The `moov` box (a normalised header, then its content), found by walking the top-level box
/// headers; `None` when it is larger than [`MAX_MOOV_LEN`].
fn find_moov<S: Source>(source: &mut S) -> Result<Option<Vec<u8>>, TopLevel> {
    let len = source.len();
    let mut offset = 0u64;
    let mut count = 0usize;
    while len - offset >= 8 {
        count += 1;
        if count > MAX_TOP_LEVEL_BOXES {
            return Err(TopLevel::Malformed(format!(
                "more than {MAX_TOP_LEVEL_BOXES} top-level boxes and no `moov` box among them"
            )));
        }
        let rest = len - offset;
        let mut header = [0u8; 16];
        source.read_at(offset, &mut header[..8])?;
        let size32 = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        let kind = [header[4], header[5], header[6], header[7]];
        let (header_len, size) = match size32 {
            // "To the end of the file": allowed at the top level only.
            0 => (8u64, rest),
            1 => {
                if rest < 16 {
                    return Err(TopLevel::Malformed(format!(
                        "the `{}` box at byte {offset} is cut off in its 64-bit size",
                        fourcc(kind)
                    )));
                }
                source.read_at(offset + 8, &mut header[8..16])?;
                let large = u64::from_be_bytes([
                    header[8], header[9], header[10], header[11], header[12], header[13], header[14], header[15],
                ]);
                if large < 16 {
                    return Err(TopLevel::Malformed(format!(
                        "the `{}` box at byte {offset} declares a 64-bit size of {large}, less than its 16-byte header",
                        fourcc(kind)
                    )));
                }
                (16, large)
            }
            n if n < 8 => {
                return Err(TopLevel::Malformed(format!(
                    "the `{}` box at byte {offset} declares a size of {n}, less than its 8-byte header",
                    fourcc(kind)
                )));
            }
            n => (8, u64::from(n)),
        };
        if size > rest {
            return Err(TopLevel::Malformed(if &kind == b"moov" {
                format!("the `moov` box runs {} bytes past the end of the file (truncated?)", size - rest)
            } else {
                format!(
                    "the `{}` box at byte {offset} runs {} bytes past the end of the file, and no `moov` box comes before it (truncated?)",
                    fourcc(kind),
                    size - rest
                )
            }));
        }
        if &kind == b"moov" {
            let content_len = size - header_len;
            if content_len > MAX_MOOV_LEN {
                return Ok(None);
            }
            // `content_len` ≤ MAX_MOOV_LEN: it fits in memory and in a 32-bit box size.
            let content_len = content_len as usize;
            let mut moov = vec![0u8; 8 + content_len];
            moov[..4].copy_from_slice(&((8 + content_len) as u32).to_be_bytes());
            moov[4..8].copy_from_slice(b"moov");
            source.read_at(offset + header_len, &mut moov[8..])?;
            return Ok(Some(moov));
        }
        offset += size;
    }
    Err(TopLevel::Malformed("there is no `moov` box (the movie's header): the file is truncated or not a movie".into()))
}

/// A four-character code, readable in a message.
fn fourcc(kind: [u8; 4]) -> String {
    if kind.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        kind.iter().map(|&b| char::from(b)).collect()
    } else {
        format!("0x{:08x}", u32::from_be_bytes(kind))
    }
}

// ---------------------------------------------------------------------------------------------
// MP4 / QuickTime: inside `moov`

/// What the checks find out about one track, besides what `mp4parse` reads.
#[derive(Debug, Default)]
struct TrackBoxes {
    /// Each sample description's four-character code, and its width and height when it is
    /// laid out as a visual sample entry.
    entries: Vec<([u8; 4], u16, u16)>,
}

/// A child box: its four-character code and its content (the bytes after its header).
type Child<'a> = ([u8; 4], &'a [u8]);

/// Counts the boxes walked inside `moov`.
struct Walker {
    boxes: usize,
}

impl Walker {
    /// The children of a box (its content), each size checked. Fewer than 8 bytes left over at
    /// the end are padding (QuickTime ends some lists with a zero word).
    fn children<'a>(&mut self, content: &'a [u8], parent: &str) -> Result<Vec<Child<'a>>, String> {
        let mut out = Vec::new();
        let mut pos = 0usize;
        while content.len() - pos >= 8 {
            self.boxes += 1;
            if self.boxes > MAX_MOOV_BOXES {
                return Err(format!("the `moov` box holds more than {MAX_MOOV_BOXES} boxes"));
            }
            let rest = content.len() - pos;
            let size32 = be_u32(content, pos).unwrap_or(0);
            let kind = [content[pos + 4], content[pos + 5], content[pos + 6], content[pos + 7]];
            let (header_len, size) = match size32 {
                0 => {
                    return Err(format!(
                        "a `{}` box inside `{parent}` declares size 0 (only a top-level box may run to the end of the file)",
                        fourcc(kind)
                    ));
                }
                1 => {
                    let large = be_u64(content, pos + 8).ok_or_else(|| {
                        format!("a `{}` box inside `{parent}` is cut off in its 64-bit size", fourcc(kind))
                    })?;
                    if large < 16 {
                        return Err(format!(
                            "a `{}` box inside `{parent}` declares a 64-bit size of {large}, less than its 16-byte header",
                            fourcc(kind)
                        ));
                    }
                    (16usize, large)
                }
                n if n < 8 => {
                    return Err(format!(
                        "a `{}` box inside `{parent}` declares a size of {n}, less than its 8-byte header",
                        fourcc(kind)
                    ));
                }
                n => (8, u64::from(n)),
            };
            if size > rest as u64 {
                return Err(format!(
                    "a `{}` box inside `{parent}` runs {} bytes past the end of its parent",
                    fourcc(kind),
                    size - rest as u64
                ));
            }
            let size = size as usize; // ≤ rest
            out.push((kind, &content[pos + header_len..pos + size]));
            pos += size;
        }
        Ok(out)
    }

    /// The `moov` box's content: every box on the way to the sample tables checked.
    fn moov(&mut self, content: &[u8]) -> Result<Vec<TrackBoxes>, String> {
        let mut tracks = Vec::new();
        for (kind, body) in self.children(content, "moov")? {
            match &kind {
                b"trak" => {
                    if tracks.len() == MAX_TRACKS {
                        return Err(format!("the movie has more than {MAX_TRACKS} tracks"));
                    }
                    tracks.push(self.trak(body)?);
                }
                b"pssh" => pssh(body)?,
                _ => {}
            }
        }
        Ok(tracks)
    }

    fn trak(&mut self, content: &[u8]) -> Result<TrackBoxes, String> {
        let mut track = TrackBoxes::default();
        for (kind, body) in self.children(content, "trak")? {
            match &kind {
                b"edts" => {
                    for (kind, body) in self.children(body, "edts")? {
                        if &kind == b"elst" {
                            match body.first() {
                                Some(0) => table(body, "elst", 4, 12)?,
                                Some(1) => table(body, "elst", 4, 20)?,
                                _ => {} // refused by the parser
                            }
                        }
                    }
                }
                b"mdia" => {
                    let children = self.children(body, "mdia")?;
                    // The handler says how the sample descriptions are laid out.
                    let handler = children
                        .iter()
                        .find(|(kind, _)| kind == b"hdlr")
                        .and_then(|(_, body)| body.get(8..12)?.try_into().ok());
                    for (kind, body) in children {
                        if &kind == b"minf" {
                            for (kind, body) in self.children(body, "minf")? {
                                if &kind == b"stbl" {
                                    self.stbl(body, &mut track, handler)?;
                                }
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(track)
    }

    fn stbl(&mut self, content: &[u8], track: &mut TrackBoxes, handler: Option<[u8; 4]>) -> Result<(), String> {
        for (kind, body) in self.children(content, "stbl")? {
            match &kind {
                b"stsd" => {
                    track.entries.clear();
                    self.stsd(body, track, handler)?;
                }
                b"stts" => table(body, "stts", 4, 8)?,
                b"stsc" => table(body, "stsc", 4, 12)?,
                b"stco" => table(body, "stco", 4, 4)?,
                b"co64" => table(body, "co64", 4, 8)?,
                b"stss" => table(body, "stss", 4, 4)?,
                b"ctts" => table(body, "ctts", 4, 8)?,
                // A sample size of 0 means one size per sample follows.
                b"stsz" if be_u32(body, 4) == Some(0) => table(body, "stsz", 8, 4)?,
                _ => {}
            }
        }
        Ok(())
    }

    fn stsd(&mut self, content: &[u8], track: &mut TrackBoxes, handler: Option<[u8; 4]>) -> Result<(), String> {
        let Some(count) = be_u32(content, 4) else { return Ok(()) }; // refused by the parser
        if count > MAX_SAMPLE_DESCRIPTIONS {
            return Err(format!(
                "the `stsd` box declares {count} sample descriptions (at most {MAX_SAMPLE_DESCRIPTIONS} are read)"
            ));
        }
        for (kind, body) in self.children(&content[8..], "stsd")?.into_iter().take(count as usize) {
            let (width, height) = (be_u16(body, 24).unwrap_or(0), be_u16(body, 26).unwrap_or(0));
            track.entries.push((kind, width, height));
            audio_entry_descriptors(body)?;
            // The boxes after a sample entry's fixed fields (codec configuration…).
            let fixed = match (handler.as_ref(), be_u16(body, 8)) {
                (Some(b"vide"), _) => 78,
                (Some(b"soun"), Some(0)) => 28,
                (Some(b"soun"), Some(1)) => 44,
                (Some(b"soun"), Some(2)) => 64,
                _ => continue,
            };
            if let Some(rest) = body.get(fixed..) {
                let parent = fourcc(kind);
                for (kind, body) in self.children(rest, &parent)? {
                    if &kind == b"wave" {
                        self.children(body, "wave")?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Checks that a full box's entry count (a `u32` at `count_at`) fits in the bytes after it, so
/// that nothing is allocated for entries the file does not hold.
fn table(body: &[u8], name: &str, count_at: usize, entry_len: u64) -> Result<(), String> {
    let Some(count) = be_u32(body, count_at) else { return Ok(()) }; // too short: refused by the parser
    let room = (body.len() - (count_at + 4)) as u64;
    if u64::from(count) * entry_len > room {
        return Err(format!("the `{name}` box declares {count} entries of {entry_len} bytes but holds {room} bytes"));
    }
    Ok(())
}

/// A `pssh` box's key-id count against its size.
fn pssh(body: &[u8]) -> Result<(), String> {
    if body.first().is_some_and(|v| *v > 0)
        && let Some(count) = be_u32(body, 20)
    {
        let room = (body.len() - 24) as u64;
        if count > MAX_PSSH_KEY_IDS || u64::from(count) * 16 > room {
            return Err(format!("the `pssh` box declares {count} key ids but holds {room} bytes"));
        }
    }
    Ok(())
}

/// `mp4parse` reads the descriptors of an `esds` box recursively, with no limit on their depth:
/// a small box nesting thousands of them would overflow the stack, which aborts the process
/// (no panic to catch). This follows the parser's path to every `esds` box it may read: in an
/// audio sample entry (QuickTime versions 0–2), directly or inside a `wave` box. Any entry is
/// read as audio (a superset of what the parser does); boxes that do not parse end the search
/// there, as they end the parser.
fn audio_entry_descriptors(entry: &[u8]) -> Result<(), String> {
    let fixed = match be_u16(entry, 8) {
        Some(0) => 28,
        Some(1) => 44,
        Some(2) => 64,
        _ => return Ok(()),
    };
    let Some(children) = entry.get(fixed..) else { return Ok(()) };
    for (kind, body) in lenient_children(children) {
        match &kind {
            b"esds" => esds(body)?,
            b"wave" => {
                for (kind, body) in lenient_children(body) {
                    if &kind == b"esds" {
                        esds(body)?;
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// The children of a box as far as they parse (at most `content.len() / 8` of them).
fn lenient_children(content: &[u8]) -> Vec<Child<'_>> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while content.len() - pos >= 8 {
        let kind = [content[pos + 4], content[pos + 5], content[pos + 6], content[pos + 7]];
        let (header_len, size) = match be_u32(content, pos) {
            Some(1) => match be_u64(content, pos + 8) {
                Some(large) if large >= 16 => (16usize, large),
                _ => break,
            },
            Some(n) if n >= 8 => (8, u64::from(n)),
            _ => break,
        };
        if size > (content.len() - pos) as u64 {
            break;
        }
        let size = size as usize;
        out.push((kind, &content[pos + header_len..pos + size]));
        pos += size;
    }
    out
}

fn esds(body: &[u8]) -> Result<(), String> {
    // A full box: version and flags, then the descriptors.
    match body.get(4..) {
        Some(descriptors) if !descriptors_nest_within(descriptors, 0) => {
            Err(format!("the `esds` box nests its descriptors more than {MAX_DESCRIPTOR_DEPTH} deep"))
        }
        _ => Ok(()),
    }
}

/// Whether the descriptors in `data` nest at most [`MAX_DESCRIPTOR_DEPTH`] deep, read as
/// `mp4parse` reads them (ISO 14496-1 expandable sizes; an ES descriptor (tag 3) and a decoder
/// config descriptor (tag 4) hold further descriptors).
fn descriptors_nest_within(data: &[u8], depth: usize) -> bool {
    if depth > MAX_DESCRIPTOR_DEPTH {
        return false;
    }
    let mut remains = data;
    while remains.len() > 2 {
        let tag = remains[0];
        let mut pos = 1usize;
        let mut end = 0usize;
        for _ in 0..4 {
            if pos == remains.len() {
                end = pos;
                break;
            }
            let b = remains[pos];
            pos += 1;
            end = (end << 7) + usize::from(b & 0x7f);
            if b & 0x80 == 0 {
                end += pos;
                break;
            }
        }
        if end > remains.len() || end < pos {
            return true; // the parser stops here
        }
        let body = &remains[pos..end];
        let nested = match tag {
            3 => es_descriptor_rest(body),
            // Object type (1), then 12 bytes.
            4 if !body.is_empty() => body.get(body.len().min(13)..).filter(|rest| !rest.is_empty()),
            _ => None,
        };
        if let Some(inner) = nested
            && !descriptors_nest_within(inner, depth + 1)
        {
            return false;
        }
        remains = &remains[end..];
    }
    true
}

/// What follows the fields of an ES descriptor: ES_ID (2 bytes), flags (1), then the optional
/// fields the flags announce (a skip past the end stops at the end, as the parser's does).
fn es_descriptor_rest(body: &[u8]) -> Option<&[u8]> {
    let flags = *body.get(2.min(body.len()))?;
    let mut p = body.len().min(2) + 1;
    if flags & 0x80 != 0 {
        p = body.len().min(p + 2);
    }
    if flags & 0x40 != 0 {
        let url_len = usize::from(*body.get(p)?);
        p = body.len().min(p + 1 + url_len + 2);
    }
    body.get(p..).filter(|rest| !rest.is_empty())
}

fn be_u16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at.checked_add(2)?)?.try_into().ok()?))
}

fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at.checked_add(4)?)?.try_into().ok()?))
}

fn be_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at.checked_add(8)?)?.try_into().ok()?))
}

// ---------------------------------------------------------------------------------------------
// MP4 / QuickTime: the facts

/// What is read from a movie.
#[derive(Debug, Default)]
struct Movie {
    duration: Option<Duration>,
    width: Option<u32>,
    height: Option<u32>,
    video_codec: Option<String>,
    audio_codec: Option<String>,
    frame_rate: Option<f64>,
}

impl Movie {
    fn apply(self, facts: &mut Facts) {
        facts.duration = self.duration;
        facts.width = self.width;
        facts.height = self.height;
        facts.video_codec = self.video_codec;
        facts.audio_codec = self.audio_codec;
        facts.frame_rate = self.frame_rate;
    }
}

/// Reads a `moov` box (header included), checked first, then parsed by `mp4parse`.
fn read_movie(moov: &[u8]) -> Result<Movie, String> {
    let boxes = Walker { boxes: 0 }.moov(&moov[8..])?;
    let context = match catch_unwind(AssertUnwindSafe(|| mp4parse::read_mp4(&mut io::Cursor::new(moov)))) {
        Ok(Ok(context)) => context,
        Ok(Err(e)) => return Err(format!("the movie's header cannot be read ({e})")),
        Err(_) => return Err("the movie's header cannot be read (the parser failed on it)".into()),
    };
    let movie_timescale = context.timescale.map(|t| t.0).filter(|t| *t > 0);
    // The longest track: presentation time (tkhd, movie timescale), else media time (mdhd).
    let mut movie = Movie {
        duration: context.tracks.iter().filter_map(|t| track_duration(t, movie_timescale)).max(),
        ..Movie::default()
    };
    if movie.duration.is_none() {
        // A fragmented movie may give its whole duration in `mvex/mehd`.
        movie.duration =
            context.mvex.as_ref().and_then(|m| m.fragment_duration).and_then(|d| scaled(d.0, movie_timescale?));
    }

    // Tracks in `mp4parse` are the `trak` boxes, in order, as walked above.
    let described = |i: usize| boxes.get(i).and_then(|t| t.entries.first()).copied();
    if let Some((i, track)) =
        context.tracks.iter().enumerate().find(|(_, t)| t.track_type == mp4parse::TrackType::Video)
    {
        let description = track.stsd.as_ref().and_then(|s| s.descriptions.first());
        let entry = described(i);
        let (mut width, mut height) = match entry {
            Some((_, w, h)) if w > 0 && h > 0 => (u32::from(w), u32::from(h)),
            _ => track.tkhd.as_ref().map(|t| (t.width >> 16, t.height >> 16)).unwrap_or((0, 0)),
        };
        // A track rotated by a quarter turn (phones filming upright) is shown the other way.
        if let Some(m) = track.tkhd.as_ref().map(|t| &t.matrix)
            && m.a == 0
            && m.d == 0
            && m.b != 0
            && m.c != 0
        {
            std::mem::swap(&mut width, &mut height);
        }
        if width > 0 && height > 0 {
            movie.width = Some(width);
            movie.height = Some(height);
        }
        movie.video_codec = entry.map(|(kind, _, _)| {
            let protected = match description {
                Some(mp4parse::SampleEntry::Video(v)) => v.protection_info.first().map(|p| p.original_format.value),
                _ => None,
            };
            video_codec(if &kind == b"encv" { protected.unwrap_or(kind) } else { kind })
        });
        movie.frame_rate = frame_rate(track);
    }
    if let Some((i, track)) =
        context.tracks.iter().enumerate().find(|(_, t)| t.track_type == mp4parse::TrackType::Audio)
    {
        let description = track.stsd.as_ref().and_then(|s| s.descriptions.first());
        movie.audio_codec = described(i).map(|(kind, _, _)| {
            let (codec, protected) = match description {
                Some(mp4parse::SampleEntry::Audio(a)) => {
                    (Some(a.codec_type), a.protection_info.first().map(|p| p.original_format.value))
                }
                _ => (None, None),
            };
            let kind = if &kind == b"enca" { protected.unwrap_or(kind) } else { kind };
            audio_codec(kind, codec)
        });
    }
    Ok(movie)
}

/// `ticks` of `timescale` per second.
fn scaled(ticks: u64, timescale: u64) -> Option<Duration> {
    if timescale == 0 || ticks == 0 {
        return None;
    }
    let nanos = u128::from(ticks % timescale) * 1_000_000_000 / u128::from(timescale);
    Some(Duration::new(ticks / timescale, nanos as u32))
}

fn track_duration(track: &mp4parse::Track, movie_timescale: Option<u64>) -> Option<Duration> {
    // All ones means "unknown".
    let known = |d: u64| d != u64::MAX && d != u64::from(u32::MAX);
    let presented =
        track.tkhd.as_ref().map(|t| t.duration).filter(|d| known(*d)).and_then(|d| scaled(d, movie_timescale?));
    presented.or_else(|| {
        let ticks = track.duration.map(|d| d.0).filter(|d| known(*d))?;
        scaled(ticks, track.timescale?.0)
    })
}

/// Frames per second from the time-to-sample table (an average for a variable rate), to 1/1000.
fn frame_rate(track: &mp4parse::Track) -> Option<f64> {
    let timescale = track.timescale?.0;
    let (mut frames, mut ticks) = (0u128, 0u128);
    for s in track.stts.as_ref()?.samples.iter() {
        frames += u128::from(s.sample_count);
        ticks += u128::from(s.sample_count) * u128::from(s.sample_delta);
    }
    if frames == 0 || ticks == 0 || timescale == 0 {
        return None;
    }
    let fps = frames as f64 * timescale as f64 / ticks as f64;
    // Rounded so that it survives a JSON round trip exactly.
    let fps = (fps * 1000.0).round() / 1000.0;
    (fps.is_finite() && fps > 0.0).then_some(fps)
}

fn video_codec(kind: [u8; 4]) -> String {
    match &kind {
        b"avc1" | b"avc3" => "h264".into(),
        b"hvc1" | b"hev1" => "hevc".into(),
        b"av01" => "av1".into(),
        b"vp09" => "vp9".into(),
        b"vp08" => "vp8".into(),
        b"mp4v" => "mpeg4".into(),
        b"s263" | b"h263" => "h263".into(),
        b"apch" | b"apcn" | b"apcs" | b"apco" | b"ap4h" | b"ap4x" => "prores".into(),
        _ => fourcc(kind),
    }
}

fn audio_codec(kind: [u8; 4], codec: Option<mp4parse::CodecType>) -> String {
    match &kind {
        b"mp4a" => match codec {
            Some(mp4parse::CodecType::AAC) => "aac".into(),
            Some(mp4parse::CodecType::MP3) => "mp3".into(),
            _ => "mp4a".into(),
        },
        b".mp3" => "mp3".into(),
        b"Opus" => "opus".into(),
        b"fLaC" => "flac".into(),
        b"alac" => "alac".into(),
        b"ac-3" => "ac3".into(),
        b"ec-3" => "eac3".into(),
        b"lpcm" | b"sowt" | b"twos" | b"ipcm" | b"fpcm" | b"in24" | b"in32" | b"fl32" | b"fl64" => "pcm".into(),
        _ => fourcc(kind),
    }
}
