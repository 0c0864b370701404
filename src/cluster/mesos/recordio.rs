//! RecordIO framing of the SUBSCRIBE event stream: `<decimal length>\n<length bytes>`, repeated.
//!
//! The decoder is incremental: push bytes as they arrive (HTTP chunk boundaries carry no
//! meaning), then take complete records out. The encoder frames one record.

use bytes::{Buf, Bytes, BytesMut};

/// Default bound on one record's length (an OFFERS event with many agents can be several MB).
pub const DEFAULT_MAX_RECORD: usize = 16 * 1024 * 1024;

/// Digits a valid length header can have (u64::MAX has 20).
const MAX_HEADER_DIGITS: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordIoError {
    #[error(
        "recordio: byte {byte:#04x} at header position {position} is not a decimal digit or '\\n'"
    )]
    NonDigit { byte: u8, position: usize },
    #[error("recordio: empty length header (a '\\n' with no digits before it)")]
    EmptyLength,
    #[error("recordio: length header has more than {MAX_HEADER_DIGITS} digits and no '\\n'")]
    MissingNewline,
    #[error("recordio: length {0} does not fit in 64 bits")]
    LengthOverflow(String),
    #[error("recordio: record length is 0")]
    ZeroLength,
    #[error("recordio: record of {length} bytes exceeds the limit of {limit} bytes")]
    TooLarge { length: u64, limit: usize },
    #[error("recordio: stream ended inside a record ({have} of {want} bytes)")]
    TruncatedRecord { have: usize, want: usize },
    #[error("recordio: stream ended inside a length header ({0:?})")]
    TruncatedHeader(String),
}

/// Incremental RecordIO decoder.
#[derive(Debug)]
pub struct Decoder {
    buf: BytesMut,
    max_record: usize,
    /// Length of the record whose header has been consumed, awaiting its payload.
    pending: Option<usize>,
    /// A decoding error is sticky: the stream is broken, reconnect.
    failed: Option<RecordIoError>,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new()
    }
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder::with_max_record(DEFAULT_MAX_RECORD)
    }

    pub fn with_max_record(max_record: usize) -> Decoder {
        Decoder {
            buf: BytesMut::new(),
            max_record,
            pending: None,
            failed: None,
        }
    }

    /// Append received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes buffered but not yet returned as records.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete record, `None` if more bytes are needed.
    pub fn next_record(&mut self) -> Result<Option<Bytes>, RecordIoError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        match self.step() {
            Ok(r) => Ok(r),
            Err(e) => {
                self.failed = Some(e.clone());
                Err(e)
            }
        }
    }

    fn step(&mut self) -> Result<Option<Bytes>, RecordIoError> {
        let len = match self.pending {
            Some(len) => len,
            None => {
                let Some(len) = self.parse_header()? else {
                    return Ok(None);
                };
                self.pending = Some(len);
                len
            }
        };
        if self.buf.len() < len {
            return Ok(None);
        }
        self.pending = None;
        Ok(Some(self.buf.split_to(len).freeze()))
    }

    fn parse_header(&mut self) -> Result<Option<usize>, RecordIoError> {
        let mut value: u64 = 0;
        for (i, &b) in self.buf.iter().enumerate() {
            match b {
                b'\n' => {
                    if i == 0 {
                        return Err(RecordIoError::EmptyLength);
                    }
                    if value == 0 {
                        return Err(RecordIoError::ZeroLength);
                    }
                    if value > self.max_record as u64 {
                        return Err(RecordIoError::TooLarge {
                            length: value,
                            limit: self.max_record,
                        });
                    }
                    self.buf.advance(i + 1);
                    return Ok(Some(value as usize));
                }
                b'0'..=b'9' => {
                    if i >= MAX_HEADER_DIGITS {
                        return Err(RecordIoError::MissingNewline);
                    }
                    value = value
                        .checked_mul(10)
                        .and_then(|v| v.checked_add(u64::from(b - b'0')))
                        .ok_or_else(|| {
                            RecordIoError::LengthOverflow(
                                String::from_utf8_lossy(&self.buf[..=i]).into_owned(),
                            )
                        })?;
                    // Fail early on an oversized header, before its payload is buffered.
                    if value > self.max_record as u64 {
                        return Err(RecordIoError::TooLarge {
                            length: value,
                            limit: self.max_record,
                        });
                    }
                }
                _ => {
                    return Err(RecordIoError::NonDigit {
                        byte: b,
                        position: i,
                    })
                }
            }
        }
        Ok(None)
    }

    /// The stream ended: an error if it ended inside a header or a record.
    pub fn finish(&self) -> Result<(), RecordIoError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        match self.pending {
            Some(want) => Err(RecordIoError::TruncatedRecord {
                have: self.buf.len(),
                want,
            }),
            None if !self.buf.is_empty() => Err(RecordIoError::TruncatedHeader(
                String::from_utf8_lossy(&self.buf).into_owned(),
            )),
            None => Ok(()),
        }
    }
}

/// Decode a complete stream (all bytes at hand) into its records.
pub fn decode_all(bytes: &[u8]) -> Result<Vec<Bytes>, RecordIoError> {
    let mut d = Decoder::new();
    d.push(bytes);
    let mut out = Vec::new();
    while let Some(r) = d.next_record()? {
        out.push(r);
    }
    d.finish()?;
    Ok(out)
}

/// Frame one record.
pub fn encode(record: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(record.len().to_string().as_bytes());
    out.push(b'\n');
    out.extend_from_slice(record);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(d: &mut Decoder) -> Result<Vec<Bytes>, RecordIoError> {
        let mut out = Vec::new();
        while let Some(r) = d.next_record()? {
            out.push(r);
        }
        Ok(out)
    }

    #[test]
    fn encode_decode_roundtrip() {
        let mut wire = Vec::new();
        encode(b"{\"type\":\"HEARTBEAT\"}", &mut wire);
        encode(b"x", &mut wire);
        assert_eq!(&wire[..4], b"20\n{");
        let recs = decode_all(&wire).unwrap();
        assert_eq!(recs.len(), 2);
        assert_eq!(&recs[1][..], b"x");
    }

    #[test]
    fn garbage_is_a_typed_error() {
        assert!(matches!(
            decode_all(b"1a\nx"),
            Err(RecordIoError::NonDigit {
                byte: b'a',
                position: 1
            })
        ));
        assert_eq!(decode_all(b"\nx"), Err(RecordIoError::EmptyLength));
        assert_eq!(decode_all(b"0\n"), Err(RecordIoError::ZeroLength));
        assert!(matches!(
            decode_all(b"3\r\nabc"),
            Err(RecordIoError::NonDigit { byte: b'\r', .. })
        ));
        assert_eq!(
            decode_all(b"000000000000000000001"),
            Err(RecordIoError::MissingNewline)
        );
        assert_eq!(
            decode_all(b"5\nab"),
            Err(RecordIoError::TruncatedRecord { have: 2, want: 5 })
        );
        assert_eq!(
            decode_all(b"2\nab12"),
            Err(RecordIoError::TruncatedHeader("12".into()))
        );
        let mut d = Decoder::with_max_record(10);
        d.push(b"11\n");
        assert_eq!(
            d.next_record(),
            Err(RecordIoError::TooLarge {
                length: 11,
                limit: 10
            })
        );
        // Sticky: the stream is broken.
        d.push(b"1\nx");
        assert!(d.next_record().is_err());
        let msg = RecordIoError::NonDigit {
            byte: b'a',
            position: 1,
        }
        .to_string();
        assert!(msg.contains("not a decimal digit"), "{msg}");
    }

    #[test]
    fn oversized_header_fails_before_payload_arrives() {
        let mut d = Decoder::with_max_record(1000);
        d.push(b"99999");
        assert!(matches!(
            d.next_record(),
            Err(RecordIoError::TooLarge { .. })
        ));
    }

    #[test]
    fn byte_by_byte() {
        let mut wire = Vec::new();
        for i in 1..50u8 {
            encode(&vec![i; i as usize], &mut wire);
        }
        let mut d = Decoder::new();
        let mut got = Vec::new();
        for b in &wire {
            d.push(std::slice::from_ref(b));
            got.extend(all(&mut d).unwrap());
        }
        d.finish().unwrap();
        assert_eq!(got.len(), 49);
        assert!(got.iter().enumerate().all(|(i, r)| r.len() == i + 1));
    }
}
