//! A valid zip archive of the given (name, bytes) entries, stored
//! uncompressed: how the targets carry mutated pickles and code past the
//! archive's checksums. Empty when the zip writer refuses an entry.

use std::io::Write;

pub fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    let mut z = zip::ZipWriter::new(&mut buf);
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, bytes) in entries {
        if z.start_file(*name, opts).is_err() || z.write_all(bytes).is_err() {
            return Vec::new();
        }
    }
    if z.finish().is_err() {
        return Vec::new();
    }
    buf.into_inner()
}
