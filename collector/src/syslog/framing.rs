//! RFC 6587 framing: splits a syslog TCP byte stream into messages.
//!
//! Two framings exist in the wild and senders do not announce which one they use, so it is
//! detected per frame (as rsyslog does):
//!
//! - **octet counting** (RFC 6587 §3.4.1): `MSG-LEN SP SYSLOG-MSG`, recognised when a frame
//!   starts with a non-zero digit. A syslog message itself starts with `<`, so the two cannot
//!   be confused. If the digits are not followed by a space, the frame is read as
//!   newline-terminated instead (rsyslog's fallback), so a confused sender costs one message,
//!   not the connection.
//! - **non-transparent framing** (RFC 6587 §3.4.2): the message ends at a trailer, LF by
//!   convention; CRLF (the CR is dropped) and NUL are accepted too.
//!
//! Memory per connection is bounded by the message limit: an octet-counted frame announcing
//! more is skipped as its bytes arrive, and a line that grows past the limit without a trailer
//! is discarded up to its next trailer without being buffered. Either way one
//! [`Frame::Rejected`] is produced and decoding carries on with the next frame.
//!
//! The decoder has the shape of a `tokio_util::codec::Decoder` (without the dependency): feed
//! it the connection's read buffer after each read, take frames until it returns `None`.

use bytes::{Buf, Bytes, BytesMut};

use super::parser::SyslogError;

/// The default limit on one syslog message, in bytes (without framing).
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// Longest octet count accepted: 10 digits is more than any sane limit; longer digit runs
/// mean the frame is not octet-counted.
const MAX_COUNT_DIGITS: usize = 10;

/// What the decoder produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// One message, without octet count or trailer.
    Message(Bytes),
    /// A frame that was (or is being) skipped; the error says why and how large it was.
    Rejected(SyslogError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a frame (or inside a newline-terminated one still being buffered).
    FrameStart,
    /// Skipping this many more bytes of an oversized octet-counted frame.
    SkipOctets(usize),
    /// Discarding an oversized newline-terminated frame up to and including its trailer.
    SkipLine,
}

/// What the start of the buffer says about octet counting.
enum OctetCount {
    /// `MSG-LEN SP` read: the message length and the length of that header.
    Header { len: usize, header_len: usize },
    /// Only digits so far: wait for more bytes.
    Incomplete,
    /// Not an octet count: read the frame as newline-terminated.
    NotOctetCounted,
}

/// An incremental RFC 6587 frame decoder with a message size limit.
#[derive(Debug)]
pub struct FrameDecoder {
    max_message_bytes: usize,
    state: State,
    /// How far the current newline-terminated frame has been searched for a trailer, so that
    /// a long line arriving in small reads is scanned once, not once per read.
    scanned: usize,
}

impl FrameDecoder {
    /// A decoder that refuses messages longer than `max_message_bytes`.
    pub fn new(max_message_bytes: usize) -> Self {
        Self {
            max_message_bytes,
            state: State::FrameStart,
            scanned: 0,
        }
    }

    /// The next complete frame in `buf`, consuming its bytes; `None` when more input is
    /// needed. Call again until it returns `None`.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Option<Frame> {
        loop {
            match self.state {
                State::SkipOctets(remaining) => {
                    let n = remaining.min(buf.len());
                    buf.advance(n);
                    if n < remaining {
                        self.state = State::SkipOctets(remaining - n);
                        return None;
                    }
                    self.state = State::FrameStart;
                }
                State::SkipLine => match find_trailer(buf) {
                    Some(i) => {
                        buf.advance(i + 1);
                        self.state = State::FrameStart;
                    }
                    None => {
                        buf.clear();
                        return None;
                    }
                },
                State::FrameStart => {
                    if self.scanned == 0 {
                        // Stray trailers between frames (an LF after an octet-counted frame,
                        // blank lines) are not messages.
                        let blank = buf.iter().take_while(|b| is_trailer_byte(**b)).count();
                        buf.advance(blank);
                    }
                    if buf.is_empty() {
                        return None;
                    }
                    if self.scanned == 0 && matches!(buf[0], b'1'..=b'9') {
                        match octet_count(buf) {
                            OctetCount::Incomplete => return None,
                            OctetCount::Header { len, header_len } => {
                                return self.octet_counted(buf, len, header_len);
                            }
                            OctetCount::NotOctetCounted => {}
                        }
                    }
                    match self.newline_terminated(buf) {
                        Some(Some(frame)) => return Some(frame),
                        Some(None) => continue, // an empty line
                        None => return None,
                    }
                }
            }
        }
    }

    /// Like [`FrameDecoder::decode`], for when the connection has closed: a final
    /// newline-terminated message without its trailer is returned as a message (senders
    /// often omit the last LF), an incomplete octet-counted frame as
    /// [`SyslogError::TruncatedFrame`]. Call until it returns `None`; `buf` is empty then.
    pub fn decode_eof(&mut self, buf: &mut BytesMut) -> Option<Frame> {
        if let Some(frame) = self.decode(buf) {
            return Some(frame);
        }
        let state = std::mem::replace(&mut self.state, State::FrameStart);
        self.scanned = 0;
        if state != State::FrameStart || buf.is_empty() {
            buf.clear();
            return None;
        }
        let rest = buf.split().freeze();
        if matches!(rest[0], b'1'..=b'9')
            && let OctetCount::Header { len, header_len } = octet_count(&rest)
        {
            return Some(Frame::Rejected(SyslogError::TruncatedFrame {
                expected: len,
                received: rest.len() - header_len,
            }));
        }
        let message = rest.slice(..strip_cr(&rest));
        if message.len() > self.max_message_bytes {
            return Some(Frame::Rejected(SyslogError::MessageTooLong {
                len: message.len(),
                limit: self.max_message_bytes,
            }));
        }
        (!message.is_empty()).then_some(Frame::Message(message))
    }

    fn octet_counted(
        &mut self,
        buf: &mut BytesMut,
        len: usize,
        header_len: usize,
    ) -> Option<Frame> {
        if len > self.max_message_bytes {
            buf.advance(header_len);
            self.state = State::SkipOctets(len);
            return Some(Frame::Rejected(SyslogError::MessageTooLong {
                len,
                limit: self.max_message_bytes,
            }));
        }
        let frame_len = header_len + len;
        if buf.len() < frame_len {
            buf.reserve(frame_len - buf.len());
            return None;
        }
        buf.advance(header_len);
        Some(Frame::Message(buf.split_to(len).freeze()))
    }

    /// `Some(Some(frame))` for a frame, `Some(None)` for an empty line (consumed), `None` when
    /// the trailer has not arrived yet.
    fn newline_terminated(&mut self, buf: &mut BytesMut) -> Option<Option<Frame>> {
        let Some(i) = find_trailer(&buf[self.scanned..]).map(|i| self.scanned + i) else {
            // Room for the message, and a CR before the LF that has not arrived yet.
            if buf.len() > self.max_message_bytes + 1 {
                let seen = buf.len();
                buf.clear();
                self.scanned = 0;
                self.state = State::SkipLine;
                return Some(Some(Frame::Rejected(
                    SyslogError::UnterminatedMessageTooLong {
                        len: seen,
                        limit: self.max_message_bytes,
                    },
                )));
            }
            self.scanned = buf.len();
            return None;
        };
        self.scanned = 0;
        let line = buf.split_to(i + 1).freeze();
        let message = line.slice(..strip_cr(&line[..i]));
        if message.is_empty() {
            return Some(None);
        }
        if message.len() > self.max_message_bytes {
            return Some(Some(Frame::Rejected(SyslogError::MessageTooLong {
                len: message.len(),
                limit: self.max_message_bytes,
            })));
        }
        Some(Some(Frame::Message(message)))
    }
}

fn is_trailer_byte(b: u8) -> bool {
    matches!(b, b'\n' | b'\r' | b'\0')
}

/// RFC 6587 §3.4.2: the trailer is LF (or NUL, which some senders use).
fn find_trailer(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n' || b == b'\0')
}

/// The length of `line` without one trailing CR (CRLF trailers).
fn strip_cr(line: &[u8]) -> usize {
    if line.ends_with(b"\r") {
        line.len() - 1
    } else {
        line.len()
    }
}

/// RFC 6587 §3.4.1: MSG-LEN = NONZERO-DIGIT *DIGIT, followed by SP.
fn octet_count(bytes: &[u8]) -> OctetCount {
    let digits = bytes
        .iter()
        .take(MAX_COUNT_DIGITS + 1)
        .take_while(|b| b.is_ascii_digit())
        .count();
    if digits > MAX_COUNT_DIGITS {
        return OctetCount::NotOctetCounted;
    }
    match bytes.get(digits) {
        None => OctetCount::Incomplete,
        Some(b' ') => {
            let len = bytes[..digits].iter().fold(0usize, |acc, &b| {
                acc.saturating_mul(10).saturating_add(usize::from(b - b'0'))
            });
            OctetCount::Header {
                len,
                header_len: digits + 1,
            }
        }
        Some(_) => OctetCount::NotOctetCounted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in pieces of `chunk` bytes, then signals EOF; returns every frame.
    fn decode_all(max: usize, input: &[u8], chunk: usize) -> Vec<Frame> {
        let mut decoder = FrameDecoder::new(max);
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        let mut peak = 0;
        for piece in input.chunks(chunk.max(1)) {
            buf.extend_from_slice(piece);
            peak = peak.max(buf.len());
            while let Some(frame) = decoder.decode(&mut buf) {
                frames.push(frame);
            }
        }
        while let Some(frame) = decoder.decode_eof(&mut buf) {
            frames.push(frame);
        }
        assert!(buf.is_empty());
        // Bounded memory: never more than a message, its framing and one read.
        assert!(
            peak <= max + MAX_COUNT_DIGITS + 2 + chunk,
            "buffered {peak} bytes"
        );
        frames
    }

    fn msg(s: &str) -> Frame {
        Frame::Message(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn octet_counting_and_newlines_mixed_in_one_stream() {
        let input = b"11 <13>1 - - a<13>line one\n\r\n5 <1>x\n<13>crlf\r\n<13>nul\x00<13>last";
        let expected = vec![
            msg("<13>1 - - a"),
            msg("<13>line one"),
            msg("<1>x\n"),
            msg("<13>crlf"),
            msg("<13>nul"),
            msg("<13>last"),
        ];
        for chunk in [1, 2, 3, 7, input.len()] {
            assert_eq!(decode_all(1024, input, chunk), expected, "chunk {chunk}");
        }
    }

    #[test]
    fn octet_counted_message_may_contain_newlines_and_nuls() {
        let body = "<13>a\nb\0c";
        let input = format!("{} {body}{} {body}", body.len(), body.len());
        assert_eq!(
            decode_all(1024, input.as_bytes(), 1),
            vec![msg(body), msg(body)]
        );
    }

    #[test]
    fn oversized_line_is_skipped_and_the_next_one_received() {
        let mut input = vec![b'x'; 1 << 20];
        input.push(b'\n');
        input.extend_from_slice(b"<13>good line\n");
        for chunk in [1000, 65_536, 100_000] {
            let frames = decode_all(65_536, &input, chunk);
            assert_eq!(frames.len(), 2, "chunk {chunk}");
            assert!(
                matches!(&frames[0], Frame::Rejected(e @ SyslogError::UnterminatedMessageTooLong { limit: 65_536, .. }) if e.reason() == "message_too_long"),
                "{frames:?}"
            );
            assert_eq!(frames[1], msg("<13>good line"));
        }
    }

    #[test]
    fn oversized_octet_count_is_skipped_without_buffering() {
        let mut input = b"1048576 ".to_vec();
        input.extend(std::iter::repeat_n(b'y', 1 << 20));
        input.extend_from_slice(b"8 <13>good");
        let frames = decode_all(65_536, &input, 4096);
        assert_eq!(
            frames,
            vec![
                Frame::Rejected(SyslogError::MessageTooLong {
                    len: 1_048_576,
                    limit: 65_536
                }),
                msg("<13>good")
            ]
        );
    }

    #[test]
    fn limit_is_inclusive_and_a_complete_overlong_line_is_rejected() {
        let exact = format!("{}\r\n", "a".repeat(16));
        assert_eq!(
            decode_all(16, exact.as_bytes(), 5),
            vec![msg(&"a".repeat(16))]
        );
        // 17 bytes plus LF, all in one read: found complete, still too long.
        let over = format!("{}\n<1>ok\n", "a".repeat(17));
        let frames = decode_all(16, over.as_bytes(), 64);
        assert_eq!(
            frames,
            vec![
                Frame::Rejected(SyslogError::MessageTooLong { len: 17, limit: 16 }),
                msg("<1>ok")
            ]
        );
        // Last line without trailer over the limit at EOF.
        assert_eq!(
            decode_all(16, "b".repeat(17).as_bytes(), 64),
            vec![Frame::Rejected(SyslogError::MessageTooLong {
                len: 17,
                limit: 16
            })]
        );
    }

    #[test]
    fn digits_without_space_fall_back_to_newline_framing() {
        assert_eq!(
            decode_all(1024, b"123abc\n<1>x\n", 1),
            vec![msg("123abc"), msg("<1>x")]
        );
        assert_eq!(
            decode_all(1024, b"123456789012345\n", 3),
            vec![msg("123456789012345")]
        );
    }

    #[test]
    fn truncated_octet_counted_frame_at_eof() {
        assert_eq!(
            decode_all(1024, b"20 <13>short", 4),
            vec![Frame::Rejected(SyslogError::TruncatedFrame {
                expected: 20,
                received: 9
            })]
        );
        assert_eq!(decode_all(1024, b"\n\n\r\n", 1), vec![]);
        // Digits only at EOF: a (strange) one-line message.
        assert_eq!(decode_all(1024, b"42", 1), vec![msg("42")]);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn never_panics_and_stays_bounded(
                bytes in proptest::collection::vec(prop_oneof![any::<u8>(), Just(b'\n'), Just(b' '), Just(b'1')], 0..500),
                max in 1usize..64,
                chunk in 1usize..50,
            ) {
                let _ = decode_all(max, &bytes, chunk);
            }

            #[test]
            fn split_reads_do_not_change_the_frames(
                lines in proptest::collection::vec(("[ -~]{0,40}", any::<bool>()), 0..20),
                chunk in 1usize..30,
            ) {
                let mut input = Vec::new();
                for (line, octet) in &lines {
                    let line = format!("<1>{line}");
                    if *octet {
                        input.extend_from_slice(format!("{} {line}", line.len()).as_bytes());
                    } else {
                        input.extend_from_slice(line.as_bytes());
                        input.push(b'\n');
                    }
                }
                let expected: Vec<_> = lines.iter().map(|(l, _)| msg(&format!("<1>{l}"))).collect();
                prop_assert_eq!(decode_all(1024, &input, chunk), expected.clone());
                prop_assert_eq!(decode_all(1024, &input, input.len()), expected);
            }
        }
    }
}
