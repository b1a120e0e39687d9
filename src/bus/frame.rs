//! The wire unit: a 4-byte big-endian length `N` (1..=1 MiB), then `N` bytes of UTF-8 JSON.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// The largest frame either side accepts.
pub const MAX_FRAME: usize = 1_048_576;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    /// Framing is lost: the connection must close.
    #[error("frame too large: {0} bytes (the limit is {MAX_FRAME})")]
    TooLarge(usize),
    /// A zero length consumed nothing else, so the stream can go on.
    #[error("empty frame: a frame carries 1 to {MAX_FRAME} bytes")]
    Empty,
}

/// Takes one whole frame off the front of `buf`. `Ok(None)`: not all of it has arrived yet.
/// Checks the length before buffering the body, so a bogus length allocates nothing.
pub fn parse(buf: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if len == 0 {
        buf.advance(4);
        return Err(FrameError::Empty);
    }
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge(len));
    }
    if buf.len() < 4 + len {
        buf.reserve(4 + len - buf.len());
        return Ok(None);
    }
    buf.advance(4);
    Ok(Some(buf.split_to(len).freeze()))
}

/// Appends `body` as one frame.
pub fn encode(body: &[u8], out: &mut BytesMut) {
    out.reserve(4 + body.len());
    out.put_u32(body.len() as u32);
    out.put_slice(body);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_come_whole_and_in_order_whatever_the_chunking() {
        let mut wire = BytesMut::new();
        encode(b"{\"a\":1}", &mut wire);
        encode(b"{}", &mut wire);
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for byte in wire.iter() {
            buf.put_u8(*byte);
            while let Some(f) = parse(&mut buf).unwrap() {
                got.push(f);
            }
        }
        assert_eq!(got, [&b"{\"a\":1}"[..], b"{}"]);
        assert!(buf.is_empty());
    }

    #[test]
    fn too_large_is_refused_before_buffering() {
        let mut buf = BytesMut::from(&(MAX_FRAME as u32 + 1).to_be_bytes()[..]);
        assert_eq!(parse(&mut buf), Err(FrameError::TooLarge(MAX_FRAME + 1)));
        assert!(buf.capacity() < 1024);
        let mut buf = BytesMut::from(&(MAX_FRAME as u32).to_be_bytes()[..]);
        assert_eq!(parse(&mut buf), Ok(None), "exactly the limit is allowed");
    }

    #[test]
    fn an_empty_frame_is_an_error_that_keeps_framing() {
        let mut buf = BytesMut::from(&[0, 0, 0, 0, 0, 0, 0, 2, b'{', b'}'][..]);
        assert_eq!(parse(&mut buf), Err(FrameError::Empty));
        assert_eq!(parse(&mut buf).unwrap().unwrap(), &b"{}"[..]);
    }
}
