//! A cursor over an encoding being decoded: every read checks the bytes that remain, so
//! decoders never index past the end of untrusted input.

pub(crate) struct Reader<'a> {
    pub bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    pub fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        if len > self.bytes.len() {
            return None;
        }
        let (taken, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        Some(taken)
    }

    pub fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|bytes| bytes[0])
    }

    pub fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|bytes| u32::from_le_bytes(bytes.try_into().expect("4 bytes")))
    }

    pub fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .map(|bytes| u64::from_le_bytes(bytes.try_into().expect("8 bytes")))
    }

    /// A u32 length and that many bytes, copied only once the length is known to fit.
    pub fn bytes_with_len(&mut self) -> Option<Vec<u8>> {
        let len = self.u32()? as usize;
        self.take(len).map(<[u8]>::to_vec)
    }
}

/// The little-endian u32 at `at`; the caller checked the bounds.
pub(crate) fn read_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

/// The little-endian u64 at `at`; the caller checked the bounds.
pub(crate) fn read_u64(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

#[cfg(test)]
mod tests {
    use super::Reader;

    #[test]
    fn reads_stop_at_the_end_of_the_bytes() {
        // Proves every read past the remaining bytes is refused, not a panic.
        let mut reader = Reader::new(&[1, 2, 0, 0, 0, 9]);
        assert_eq!(reader.u8(), Some(1));
        assert_eq!(reader.u32(), Some(2));
        assert_eq!(reader.u64(), None);
        assert_eq!(reader.bytes_with_len(), None);
        assert_eq!(reader.take(1), Some(&[9][..]));
        assert_eq!(reader.u8(), None);
    }
}
