//! Byte-level encoding shared by the WAL records, the head snapshot and blocks: LEB128
//! varints (zig-zag for signed values), length-prefixed strings, and a bounds-checked reader
//! whose failures say what was being read.

/// Appends `v` as an unsigned LEB128 varint.
pub fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends `v` zig-zag encoded as a varint.
pub fn put_svarint(out: &mut Vec<u8>, v: i64) {
    put_uvarint(out, ((v << 1) ^ (v >> 63)) as u64);
}

/// Appends a length-prefixed byte string.
pub fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_uvarint(out, b.len() as u64);
    out.extend_from_slice(b);
}

pub fn put_str(out: &mut Vec<u8>, s: &str) {
    put_bytes(out, s.as_bytes());
}

/// A cursor over encoded bytes. Every read fails with a message naming the field.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

pub type DecodeResult<T> = Result<T, String>;

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub fn uvarint(&mut self, what: &str) -> DecodeResult<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(format!("{what}: varint cut short at byte {}", self.pos));
            };
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(format!("{what}: varint too long at byte {}", self.pos))
    }

    pub fn svarint(&mut self, what: &str) -> DecodeResult<i64> {
        let z = self.uvarint(what)?;
        Ok(((z >> 1) as i64) ^ -((z & 1) as i64))
    }

    /// A varint that must fit `usize` and stay below `limit` (lengths and counts: a huge
    /// value is corruption, not a reason to allocate).
    pub fn len(&mut self, what: &str, limit: usize) -> DecodeResult<usize> {
        let v = self.uvarint(what)?;
        if v > limit as u64 {
            return Err(format!("{what}: {v} exceeds the limit {limit}"));
        }
        Ok(v as usize)
    }

    pub fn u32_varint(&mut self, what: &str) -> DecodeResult<u32> {
        let v = self.uvarint(what)?;
        u32::try_from(v).map_err(|_| format!("{what}: {v} does not fit 32 bits"))
    }

    pub fn bytes(&mut self, n: usize, what: &str) -> DecodeResult<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| format!("{what}: {n} bytes needed at byte {}", self.pos))?;
        let b = &self.buf[self.pos..end];
        self.pos = end;
        Ok(b)
    }

    pub fn u64_le(&mut self, what: &str) -> DecodeResult<u64> {
        let b = self.bytes(8, what)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    pub fn u8(&mut self, what: &str) -> DecodeResult<u8> {
        Ok(self.bytes(1, what)?[0])
    }

    pub fn len_bytes(&mut self, what: &str) -> DecodeResult<&'a [u8]> {
        let n = self.len(what, self.buf.len() - self.pos.min(self.buf.len()))?;
        self.bytes(n, what)
    }

    pub fn str(&mut self, what: &str) -> DecodeResult<&'a str> {
        let b = self.len_bytes(what)?;
        std::str::from_utf8(b).map_err(|_| format!("{what}: not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_and_truncation_is_named() {
        let mut out = Vec::new();
        for v in [0u64, 1, 127, 128, 300, u64::MAX] {
            put_uvarint(&mut out, v);
        }
        for v in [0i64, -1, 1, i64::MIN, i64::MAX] {
            put_svarint(&mut out, v);
        }
        put_str(&mut out, "héllo");
        let mut r = Reader::new(&out);
        for v in [0u64, 1, 127, 128, 300, u64::MAX] {
            assert_eq!(r.uvarint("u").unwrap(), v);
        }
        for v in [0i64, -1, 1, i64::MIN, i64::MAX] {
            assert_eq!(r.svarint("s").unwrap(), v);
        }
        assert_eq!(r.str("s").unwrap(), "héllo");
        assert!(r.is_empty());
        let err = Reader::new(&[0x80]).uvarint("series id").unwrap_err();
        assert!(err.contains("series id"), "{err}");
        assert!(Reader::new(&[5, b'a']).str("name").is_err());
    }
}
